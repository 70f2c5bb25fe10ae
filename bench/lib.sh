# lib.sh: what the benchmark scripts share. Source it once root and work are
# set; set remove_work=1 first to delete $work on exit (unless KEEP is set).
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ -n ${remove_work:-} && -z ${KEEP:-} ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# free_port prints a random loopback port that nothing answers on.
free_port() {
	local p
	while :; do
		p=$(shuf -i 20000-60000 -n 1)
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# build_binaries builds tenantgate and tenantgate-bench into $work.
build_binaries() {
	(cd "$root" && go build -o "$work/tenantgate" ./cmd/tenantgate && go build -o "$work/bench" ./bench/cmd/tenantgate-bench)
}
