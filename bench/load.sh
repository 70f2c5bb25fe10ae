#!/usr/bin/env bash
# load.sh (make bench-load) drives the same remote-write load through
# tenantgate, through nginx as a pass-through proxy and through the bench
# tool's roundtrip proxy (snappy decode, re-encode and forward, nothing
# else: the floor under any proxy that rewrites the body), in one run, into
# a sink that discards what it gets, and prints each one's throughput,
# latency and CPU-seconds per million samples, and tenantgate's ratios.
#
#   SPS=400000 DURATION=30s VERSION=1 bench/load.sh
#
# UPSTREAM_V2=1 declares the sink a Remote-Write 2.0 receiver, so that 2.0
# requests are stamped as 2.0 rather than translated to 1.0.
#
# Results: what the run prints (summary.txt) and one JSON line per target
# (results.jsonl, appended to) go to a directory of their own, by default
# ${TMPDIR:-/tmp}/tenantgate-bench-results/load-<date>-<time>-XXXX, or
# RESULTS=dir; the script prints where. The work directory (binaries, configuration,
# logs: about 100 MB) is deleted on exit; KEEP=1 keeps it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sps=${SPS:-300000}
duration=${DURATION:-30s}
version=${VERSION:-1}
conc=${CONCURRENCY:-8}
if [[ -n ${RESULTS:-} ]]; then
	results=$RESULTS
	mkdir -p "$results"
else
	mkdir -p "${TMPDIR:-/tmp}/tenantgate-bench-results"
	results=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-bench-results/load-$(date +%Y%m%d-%H%M%S)-XXXX")
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-bench.XXXXXX")
remove_work=1 # only this run's own directory: lib.sh's cleanup removes $work
token=bench-token-0123456789abcdef0123456789abcdef
# shellcheck source=lib.sh
source "$root/bench/lib.sh"

"$root/test/e2e/tools/apt.sh" >/dev/null
nginx=$(command -v nginx || echo /usr/sbin/nginx)
build_binaries

sink_port=$(free_port); tg_port=$(free_port); tg_int=$(free_port); ngx_port=$(free_port); rt_port=$(free_port)

"$work/bench" sink --listen "127.0.0.1:$sink_port" 2>"$work/sink.log" &
pids+=($!)
"$work/bench" roundtrip --listen "127.0.0.1:$rt_port" --upstream "http://127.0.0.1:$sink_port/api/v1/receive" 2>"$work/roundtrip.log" &
rt_pid=$!
pids+=($rt_pid)

hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
messages=
if [[ -n ${UPSTREAM_V2:-} ]]; then
	messages=", upstream_messages: [prometheus.WriteRequest, io.prometheus.write.v2.Request]"
fi
cat >"$work/tenantgate.yaml" <<YAML
server: {listen: "127.0.0.1:$tg_port", internal_listen: "127.0.0.1:$tg_int"}
access_log: false
logging: {level: warn}
upstreams:
  - {name: sink, url: "http://127.0.0.1:$sink_port", health_url: /-/ready}
metrics:
  write: {upstream: sink$messages}
authn:
  static_tokens: [{name: bench, token_sha256: $hash}]
tenants:
  - id: bench
    grants: [{principals: [subject:static/bench], signals: [metrics], access: [write]}]
YAML
"$work/tenantgate" serve --config "$work/tenantgate.yaml" 2>"$work/tenantgate.log" &
tg_pid=$!
pids+=($tg_pid)

cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx-body;
  proxy_temp_path $work/nginx-proxy;
  fastcgi_temp_path $work/nginx-fcgi; uwsgi_temp_path $work/nginx-uwsgi; scgi_temp_path $work/nginx-scgi;
  upstream sink { server 127.0.0.1:$sink_port; keepalive 64; }
  server {
    listen 127.0.0.1:$ngx_port;
    client_max_body_size 16m;
    client_body_buffer_size 16m;
    location / {
      proxy_pass http://sink;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
"$nginx" -c "$work/nginx.conf" -g 'daemon off;' 2>"$work/nginx.log" &
ngx_master=$!
pids+=($ngx_master)

for _ in $(seq 1 50); do
	curl -fsS -o /dev/null "http://127.0.0.1:$tg_int/-/ready" 2>/dev/null && break
	sleep 0.2
done
sleep 1
ngx_pids=$(echo "$ngx_master" $(pgrep -P "$ngx_master") | tr ' ' ',')

# What the run prints goes to summary.txt too. (A group in a pipe, not
# exec > >(tee): cleanup's wait would wait for that tee, which waits for us.)
{
	echo "load: $sps samples/s target, ${duration}, RW $version, 2000 series/request, concurrency $conc"
	common=(--samples-per-second "$sps" --duration "$duration" --version "$version" --concurrency "$conc" --json "$results/results.jsonl")
	"$work/bench" load "${common[@]}" --label nginx --url "http://127.0.0.1:$ngx_port/api/v1/receive" --cpu-pids "$ngx_pids"
	"$work/bench" load "${common[@]}" --label roundtrip --url "http://127.0.0.1:$rt_port/api/v1/receive" --cpu-pids "$rt_pid"
	[[ -n ${PROFILE:-} ]] && (sleep 5; curl -fsS -o "$PROFILE" "http://127.0.0.1:$tg_int/debug/pprof/profile?seconds=10") &
	"$work/bench" load "${common[@]}" --label tenantgate --url "http://127.0.0.1:$tg_port/api/v1/receive" --token "$token" --cpu-pids "$tg_pid"

	# The ratios, from this run's three JSON lines (nginx, roundtrip, tenantgate).
	tail -n 3 "$results/results.jsonl" | awk -F'"cpu_seconds_per_million_samples":' '{split($2,a,","); v[NR]=a[1]} END {
		if (v[1] > 0) printf "tenantgate / nginx CPU per million samples: %.3f / %.3f = %.2fx\n", v[3], v[1], v[3]/v[1]
		if (v[2] > 0) printf "tenantgate / snappy round-trip proxy: %.3f / %.3f = %.2fx (round trip / nginx %.2fx)\n", v[3], v[2], v[3]/v[2], v[2]/v[1] }'
} | tee -a "$results/summary.txt"
echo "results: $results (summary.txt, results.jsonl)"
