#!/usr/bin/env bash
# run.sh (make demo) runs tenantgate's main job on its embedded default
# configuration: a real Thanos receive and query, a Prometheus agent of the
# demo tenant that remote-writes through tenantgate with a static token
# (and a forged tenant="someone-else" external label), and prints what
# Thanos stored. Receive labels each series with the THANOS-TENANT header's
# value as tenant_id (Thanos' default), a name other than tenantgate's
# tenant, so the output shows the label tenantgate stamped beside the header
# it sent (were the names equal, receive would overwrite the stamp, and the
# output would show the header whatever tenantgate wrote). Everything binds
# to 127.0.0.1 on the ports of the embedded default and stops when the
# script ends (KEEP=1 keeps it running).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=$root/test/e2e/tools
# The demo agents' tokens; config/default.yaml trusts only their SHA-256.
token=tenantgate-demo-token-0123456789abcdef0123456789
neighbour_token=tenantgate-demo-neighbour-token-0123456789abcdef

"$tools/apt.sh"
"$tools/build.sh" thanos
eval "$("$tools/env.sh")"
thanos=$TENANTGATE_E2E_THANOS
prometheus=$TENANTGATE_E2E_PROMETHEUS2
tenantgate=$root/bin/tenantgate
[[ -x $tenantgate ]] || (cd "$root" && go build -o bin/tenantgate ./cmd/tenantgate)

for port in 8080 8081 9090 9091 10901 10902 10903 10904 19291 19391; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "demo: port $port on 127.0.0.1 is in use; stop what holds it (the demo uses the embedded default's fixed ports)" >&2
		exit 1
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-demo.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "demo: stopped; logs were in $work"
}
trap cleanup EXIT

start() { # name cmd...
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	echo "demo: started $name (pid $!, log $work/$name.log)"
}

wait_for() { # url what
	for _ in $(seq 1 120); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
		sleep 0.5
	done
	echo "demo: $2 did not become ready at $1; its log:" >&2
	tail -n 30 "$work/$2.log" >&2 || true
	exit 1
}

start thanos-receive "$thanos" receive --tsdb.path="$work/receive" \
	--grpc-address=127.0.0.1:10901 --http-address=127.0.0.1:10902 --remote-write.address=127.0.0.1:19291 \
	--receive.capnproto-address=127.0.0.1:19391 \
	--label='receive_replica="r0"' --receive.tenant-header=THANOS-TENANT --receive.tenant-label-name=tenant_id \
	--receive.default-tenant-id=anonymous --tsdb.retention=2h
wait_for http://127.0.0.1:10902/-/ready thanos-receive
start thanos-query "$thanos" query --http-address=127.0.0.1:10904 --grpc-address=127.0.0.1:10903 --endpoint=127.0.0.1:10901
wait_for http://127.0.0.1:10904/-/ready thanos-query

start tenantgate "$tenantgate" serve
wait_for http://127.0.0.1:8081/-/ready tenantgate

agent() { # name port token forged-tenant extra-targets
	cat >"$work/$1.yml" <<YAML
global:
  scrape_interval: 2s
  external_labels:
    tenant: $4   # a forged tenant: tenantgate overwrites it with the token's tenant
scrape_configs:
  - job_name: $1
    static_configs: [{targets: ["127.0.0.1:$2"$5]}]
remote_write:
  - url: http://127.0.0.1:8080/api/v1/receive
    authorization: {credentials: $3}
    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms}
YAML
	start "$1" "$prometheus" --enable-feature=agent --config.file="$work/$1.yml" \
		--storage.agent.path="$work/$1" --web.listen-address="127.0.0.1:$2"
}
agent demo-agent 9090 "$token" someone-else ', "127.0.0.1:8081"'
agent neighbour-agent 9091 "$neighbour_token" demo ''

query='count by (tenant, tenant_id, job) ({__name__=~".+"})'
echo "demo: waiting for the agent's series to reach Thanos through tenantgate..."
for _ in $(seq 1 90); do
	out=$(curl -fsS --get http://127.0.0.1:10904/api/v1/query --data-urlencode 'query=count by (tenant) (up)' || true)
	if [[ $out == *'"tenant":"demo"'* && $out == *'"tenant":"neighbour"'* ]]; then
		break
	fi
	sleep 1
done
promql() { (cd "$root" && go run ./deploy/demo/promql "$@"); }
echo
echo "What Thanos stored (thanos query, directly): every series stamped tenant=<the tenant its token proves>"
echo "by tenantgate, whatever the agent forged; tenant_id is receive's label from the THANOS-TENANT header"
promql http://127.0.0.1:10904 "$query"
promql http://127.0.0.1:10904 'count({__name__=~".+", tenant!~"demo|neighbour"} or {__name__=~".+", tenant_id!~"demo|neighbour"}) or vector(0)'
echo
echo "What tenant demo reads through tenantgate (the Grafana datasource URL http://127.0.0.1:8080):"
TOKEN=$token promql http://127.0.0.1:8080 "$query"
TOKEN=$token promql http://127.0.0.1:8080 'up{job="neighbour-agent"}'
TOKEN=$token promql http://127.0.0.1:8080 'up{tenant="neighbour"}'
echo
echo "tenantgate's own counters:"
grep -E '^tenantgate_remote_write_(series_overwritten|samples)_total' <(curl -fsS http://127.0.0.1:8081/metrics) || true
if [[ ${KEEP:-} == 1 ]]; then
	echo "demo: KEEP=1, running until Ctrl-C (tenantgate :8080, thanos query http://127.0.0.1:10904)"
	wait
fi
