#!/usr/bin/env bash
# build.sh NAME... builds the pinned real components that the end-to-end tests
# run (thanos, hydra, prometheus3; "all" for every one) from the tools modules
# beside this script into
#   ${TENANTGATE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantgate-e2e}/NAME-VERSION/
# A cached binary that exists and reports the pinned version (and, for thanos,
# the mandatory build tags) is reused, so a warm run takes well under a
# second. Needs only Go, and gcc for hydra.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh"

usage() {
	echo "usage: $0 NAME... (one or more of: $(e2e_tools | tr '\n' ' ')or all)" >&2
	exit 2
}

# usable BIN VERSION_CMD VERSION_RE: BIN exists, runs, and reports the pinned
# version (and build tags).
usable() {
	local out
	local -a args
	read -ra args <<<"$2" # a version command may be several words (kubectl version --client)
	[[ -x $1 ]] && out=$("$1" "${args[@]}" 2>&1) && [[ ${out//$'\n'/ } =~ $3 ]]
}

build_one() {
	local name=$1 module version pkg bin tags ldflags cgo version_cmd version_re moddir
	e2e_tool_spec "$name"
	local dir out
	out=$(e2e_tool_path "$name")
	dir=$(dirname "$out")

	if usable "$out" "$version_cmd" "$version_re"; then
		echo "e2e-tools: $name $version cached at $out"
		return 0
	fi

	local mod=$here/${moddir:-$name}
	if ! grep -Eq "^(require)?[[:space:]]*${module//./\\.}[[:space:]]+${version//./\\.}([[:space:]]|\$)" "$mod/go.mod"; then
		echo "e2e-tools: $mod/go.mod does not require $module $version; change lib.sh and go.mod together" >&2
		return 1
	fi
	if [[ $cgo == 1 ]] && ! command -v "${CC:-gcc}" >/dev/null; then
		echo "e2e-tools: $name needs a C compiler (apt-get install gcc)" >&2
		return 1
	fi

	mkdir -p "$dir"
	# One build per tool at a time, even with make -j or two checkouts.
	exec {lock}>"$dir/.lock"
	flock "$lock"
	if usable "$out" "$version_cmd" "$version_re"; then
		echo "e2e-tools: $name $version built by another process at $out"
		exec {lock}>&-
		return 0
	fi

	echo "e2e-tools: building $name $version (a cold build takes minutes)"
	local start=$SECONDS tmp=$dir/.$bin.tmp.$$
	# GOWORK=off keeps the build inside the tools module and -mod=readonly makes
	# its go.sum authoritative; GOTOOLCHAIN=local makes a too-old Go fail loudly
	# instead of fetching another toolchain.
	if ! (cd "$mod" && GOWORK=off GOTOOLCHAIN=local GOFLAGS='-mod=readonly -buildvcs=false' CGO_ENABLED=$cgo \
		go build -tags "$tags" -ldflags "$ldflags" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		exec {lock}>&-
		echo "e2e-tools: building $name failed" >&2
		return 1
	fi
	mv -f "$tmp" "$out"
	exec {lock}>&-
	if ! usable "$out" "$version_cmd" "$version_re"; then
		echo "e2e-tools: $out was built but '$bin $version_cmd' fails or does not match /$version_re/:" >&2
		"$out" "$version_cmd" >&2 || true
		return 1
	fi
	echo "e2e-tools: built $name $version in $((SECONDS - start))s at $out"
}

[[ $# -gt 0 ]] || usage
names=()
for arg in "$@"; do
	if [[ $arg == all ]]; then
		mapfile -t -O "${#names[@]}" names < <(e2e_tools)
	else
		names+=("$arg")
	fi
done
command -v go >/dev/null || { echo "e2e-tools: go is not on PATH" >&2; exit 1; }
for name in "${names[@]}"; do
	build_one "$name"
done
