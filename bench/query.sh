#!/usr/bin/env bash
# query.sh (make bench-query) measures the latency tenantgate adds to
# instant queries: a real Thanos receive + query holding generated data
# written through tenantgate, then the same dashboard queries sent through
# tenantgate and straight to thanos query, interleaved in one run, with
# p50/p90/p99 for each and the difference.
#
#   RATE=100 DURATION=30s bench/query.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rate=${RATE:-100}
duration=${DURATION:-30s}
conc=${CONCURRENCY:-2}
mix=${MIX:-selectors}
work=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-bench-query.XXXXXX")
token=bench-query-token-0123456789abcdef0123456789ab
# shellcheck source=lib.sh
source "$root/bench/lib.sh"

"$root/test/e2e/tools/build.sh" thanos >/dev/null
eval "$("$root/test/e2e/tools/env.sh")"
thanos=$TENANTGATE_E2E_THANOS
build_binaries

rgrpc=$(free_port); rhttp=$(free_port); rw=$(free_port); rcap=$(free_port)
qhttp=$(free_port); qgrpc=$(free_port); tg=$(free_port); tgint=$(free_port)

"$thanos" receive --tsdb.path="$work/receive" --grpc-address=127.0.0.1:$rgrpc --http-address=127.0.0.1:$rhttp \
	--remote-write.address=127.0.0.1:$rw --receive.capnproto-address=127.0.0.1:$rcap --label='receive_replica="r0"' \
	--receive.tenant-header=THANOS-TENANT --receive.tenant-label-name=tenant --receive.default-tenant-id=anonymous \
	--tsdb.retention=2h >"$work/receive.log" 2>&1 &
pids+=($!)
"$thanos" query --http-address=127.0.0.1:$qhttp --grpc-address=127.0.0.1:$qgrpc --endpoint=127.0.0.1:$rgrpc \
	--query.replica-label=receive_replica >"$work/query.log" 2>&1 &
pids+=($!)

hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat >"$work/tenantgate.yaml" <<YAML
server: {listen: "127.0.0.1:$tg", internal_listen: "127.0.0.1:$tgint"}
access_log: false
logging: {level: warn}
upstreams:
  - {name: thanos-receive, url: "http://127.0.0.1:$rw", health_url: "http://127.0.0.1:$rhttp/-/ready"}
  - {name: thanos-query, url: "http://127.0.0.1:$qhttp", health_url: /-/ready}
metrics:
  write: {upstream: thanos-receive}
  read: {upstream: thanos-query}
authn:
  static_tokens: [{name: bench, token_sha256: $hash}]
tenants:
  - id: bench
    grants: [{principals: [subject:static/bench], signals: [metrics], access: [read, write]}]
YAML
"$work/tenantgate" serve --config "$work/tenantgate.yaml" 2>"$work/tenantgate.log" &
pids+=($!)

for _ in $(seq 1 120); do
	curl -fsS -o /dev/null "http://127.0.0.1:$tgint/-/ready" 2>/dev/null && break
	sleep 0.5
done
# Query answers nothing until it has found receive.
for _ in $(seq 1 120); do
	curl -fsS "http://127.0.0.1:$qhttp/api/v1/stores" 2>/dev/null | grep -q "127.0.0.1:$rgrpc" && break
	sleep 0.5
done

echo "query bench: $mix, $rate pairs/s, $duration, concurrency $conc; seeding 10 minutes of data through tenantgate"
[[ -n ${PROFILE:-} ]] && (sleep 15; curl -fsS -o "$PROFILE" "http://127.0.0.1:$tgint/debug/pprof/profile?seconds=15") &
"$work/bench" query --gateway "http://127.0.0.1:$tg" --token "$token" --direct "http://127.0.0.1:$qhttp" \
	--tenant bench --write-url "http://127.0.0.1:$tg/api/v1/receive" --write-token "$token" \
	--mix "$mix" --rate "$rate" --duration "$duration" --concurrency "$conc" --json "$work/results.jsonl"
echo "raw results: $work/results.jsonl"
