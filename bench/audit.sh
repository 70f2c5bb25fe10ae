#!/usr/bin/env bash
# audit.sh (make bench-audit) measures tenantgate's audit intake: it starts
# tenantgate with TLS, mTLS, the audit sink (durable queue on local disk,
# pseudonymization and every default redaction rule) shipping to a syslog
# receiver that counts and discards, then drives it with the real audit
# webhook client library (k8s.io/apiserver buffered+webhook backends, as
# kube-apiserver uses them) and prints events/s, acknowledgement latency,
# tenantgate's CPU and its memory over the run.
#
# MODE=replay posts batches that the webhook client's codec encoded once
# (fresh auditIDs each time) from plain HTTP clients instead, which measures
# the intake without the generator's own CPU on the same two cores.
#
# tenantgate runs with GOMEMLIMIT=512MiB (GOMEMLIMIT= to unset): with the
# webhook clients' unbounded concurrent batches, the garbage of the batches
# waiting and being processed otherwise lets Go's GC pace the heap well above
# what is live.
#
#   LEVEL=Metadata DURATION=5m APISERVERS=8 bench/audit.sh
#   MODE=replay LEVEL=RequestResponse CONCURRENCY=16 bench/audit.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
level=${LEVEL:-Metadata}
duration=${DURATION:-5m}
apiservers=${APISERVERS:-8}
rate=${RATE:-0}
mode=${MODE:-library}
concurrency=${CONCURRENCY:-16}
work=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-audit-bench.XXXXXX")
remove_work=1
# shellcheck source=lib.sh
source "$root/bench/lib.sh"

build_binaries
"$work/bench" audit-pki --dir "$work"

sink_port=$(free_port); tg_port=$(free_port); tg_int=$(free_port)
"$work/bench" syslog-sink --listen "127.0.0.1:$sink_port" 2>"$work/sink.log" &
pids+=($!)

head -c 48 /dev/urandom | base64 >"$work/pseudonym.key"
cat >"$work/tenantgate.yaml" <<YAML
server:
  listen: "127.0.0.1:$tg_port"
  internal_listen: "127.0.0.1:$tg_int"
  tls: {cert_file: $work/server.pem, key_file: $work/server-key.pem, client_ca_file: $work/ca.pem, client_auth: request}
access_log: false
logging: {level: warn}
authn:
  mtls: {}
tenants:
  - id: acme
    grants: [{principals: [subject:mtls/reader], signals: [audit], access: [read]}]
  - id: beta
    grants: [{principals: [subject:mtls/reader], signals: [audit], access: [read]}]
audit:
  writers: [subject:mtls/kube-apiserver]
  queue: {dir: $work/queue}
  pseudonymization:
    keys: [{id: k1, secret_file: $work/pseudonym.key}]
  sinks:
    - name: siem
      syslog: {address: "127.0.0.1:$sink_port", hostname: bench}
      max_batch_events: 2000
YAML
GOMEMLIMIT=${GOMEMLIMIT:-512MiB} "$work/tenantgate" serve --config "$work/tenantgate.yaml" 2>"$work/tenantgate.log" &
tg_pid=$!
pids+=($tg_pid)
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$tg_int/-/ready" >/dev/null 2>&1 && break
	sleep 0.1
done

cat >"$work/webhook.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: tg, cluster: {server: "https://127.0.0.1:$tg_port/audit/v1/events", certificate-authority: $work/ca.pem}}]
users: [{name: apiserver, user: {client-certificate: $work/client.pem, client-key: $work/client-key.pem}}]
contexts: [{name: audit, context: {cluster: tg, user: apiserver}}]
current-context: audit
YAML

echo "--- tenantgate audit intake, $level events, mode $mode, $duration"
extra=()
if [[ $mode == replay ]]; then
	extra=(--replay --concurrency "$concurrency" --url "https://127.0.0.1:$tg_port/audit/v1/events"
		--ca "$work/ca.pem" --cert "$work/client.pem" --key "$work/client-key.pem")
fi
if [[ -n ${PROFILE:-} ]]; then (sleep 10; curl -fsS -o "$PROFILE" "http://127.0.0.1:$tg_int/debug/pprof/profile?seconds=15") & fi
"$work/bench" audit --kubeconfig "$work/webhook.kubeconfig" --level "$level" --duration "$duration" \
	--apiservers "$apiservers" --rate "$rate" --cpu-pids "$tg_pid" --metrics-url "http://127.0.0.1:$tg_int/metrics" ${CLIENT_PROFILE:+--cpuprofile "$CLIENT_PROFILE"} "${extra[@]}" 2> >(grep -v -E '^[EWI][0-9]{4} ' >&2)
if [[ -n ${HEAP:-} ]]; then
	curl -fsS -o "$HEAP" "http://127.0.0.1:$tg_int/debug/pprof/heap"
	curl -fsS "http://127.0.0.1:$tg_int/metrics" | grep -E '^(go_goroutines|go_memstats_heap_inuse_bytes|go_memstats_next_gc_bytes) '
fi
curl -fsS "http://127.0.0.1:$tg_int/metrics" | grep -E "^tenantgate_audit_(batches_total|events_total|queue_refused|sink_delivered|queue_group_batches_(sum|count)|queue_write_seconds_(sum|count|bucket)|ack_seconds_(sum|count))" || true
