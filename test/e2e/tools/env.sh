#!/usr/bin/env bash
# env.sh prints the variables that point the end-to-end tests at their
# binaries, one "export NAME=VALUE" line each:
#   eval "$(test/e2e/tools/env.sh)"             # in a shell or a make recipe
#   test/e2e/tools/env.sh --make > e2e.env.mk   # "export NAME := VALUE" for make's include
# It only prints paths; build.sh builds the binaries and apt.sh installs the
# Debian ones. It does not set TENANTGATE_E2E, which turns a missing binary
# from a skip into a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh"

fmt='export %s=%q\n'
if [[ ${1:-} == --make ]]; then
	fmt='export %s := %s\n'
fi

# shellcheck disable=SC2059 # the format is one of the two above.
emit() { printf "$fmt" "$1" "$2"; }

emit TENANTGATE_E2E_THANOS "$(e2e_tool_path thanos)"
emit TENANTGATE_E2E_HYDRA "$(e2e_tool_path hydra)"
emit TENANTGATE_E2E_PROMETHEUS3 "$(e2e_tool_path prometheus3)"
emit TENANTGATE_E2E_KUBE_APISERVER "$(e2e_tool_path kube-apiserver)"
emit TENANTGATE_E2E_KUBE_CONTROLLER_MANAGER "$(e2e_tool_path kube-controller-manager)"
emit TENANTGATE_E2E_KUBECTL "$(e2e_tool_path kubectl)"
emit TENANTGATE_E2E_ETCD "$(command -v etcd 2>/dev/null || echo /usr/bin/etcd)"
emit TENANTGATE_E2E_RSYSLOGD "$(command -v rsyslogd 2>/dev/null || echo /usr/sbin/rsyslogd)"
emit TENANTGATE_E2E_CERTTOOL "$(command -v certtool 2>/dev/null || echo /usr/bin/certtool)"
emit TENANTGATE_E2E_PROMETHEUS2 "$(command -v prometheus 2>/dev/null || echo /usr/bin/prometheus)"
emit TENANTGATE_E2E_NGINX "$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
