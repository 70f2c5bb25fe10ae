#!/usr/bin/env bash
# apt.sh installs the Debian packages that the end-to-end tests run, quietly
# and idempotently: a second run with everything present touches nothing.
# Packages that would start a system service on install (prometheus, nginx)
# are kept from doing so, and any such daemon that is running afterwards is
# stopped, since the tests start their own copies on free loopback ports.
# Needs root (CI and the dev machines run as root) or sudo.
set -euo pipefail

# One list: add a package here (for example etcd-server, rsyslog,
# rsyslog-gnutls, gnutls-bin) and every test machine gets it.
packages=(
	prometheus # Prometheus 2.42: prometheus and promtool
	nginx      # pass-through baseline proxy for benchmarks
	curl       # make demo and the benchmark scripts
	etcd-server # etcd 3.4 behind the kube-apiserver of the audit and provisioning tests
	etcd-client
	rsyslog        # the SIEM of the audit tests (imtcp, plain and TLS)
	rsyslog-gnutls
	gnutls-bin     # certtool, for rsyslog's TLS certificates
)

# Services that the packages above ship; stopped if they are running.
services=(prometheus nginx etcd rsyslog)

export DEBIAN_FRONTEND=noninteractive
sudo=
if [[ $(id -u) != 0 ]]; then
	sudo=sudo
fi

missing=()
for p in "${packages[@]}"; do
	if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
		missing+=("$p")
	fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
	echo "e2e-apt: already installed: ${packages[*]}"
	exit 0
fi

# A policy-rc.d that exits 101 tells invoke-rc.d (and so every maintainer
# script) not to start services. Put one in place only if there is none, and
# remove only the one we put there.
policy=/usr/sbin/policy-rc.d
ours=
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\n# written by tenantgate test/e2e/tools/apt.sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	ours=1
fi
cleanup() {
	if [[ -n $ours ]]; then
		$sudo rm -f "$policy"
	fi
}
trap cleanup EXIT

log=$(mktemp)
run() {
	if ! $sudo env DEBIAN_FRONTEND=noninteractive "$@" >>"$log" 2>&1; then
		echo "e2e-apt: '$*' failed:" >&2
		tail -n 50 "$log" >&2
		return 1
	fi
}

echo "e2e-apt: installing ${missing[*]}"
run apt-get update -qq
run apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${missing[@]}"
rm -f "$log"

# Belt and braces: if a service started anyway (a machine whose init ignores
# policy-rc.d), stop it so that nothing holds its default port (9090, 80).
for s in "${services[@]}"; do
	if [[ -x /etc/init.d/$s ]] && $sudo /etc/init.d/"$s" status >/dev/null 2>&1; then
		echo "e2e-apt: stopping the $s service that the package started"
		$sudo /etc/init.d/"$s" stop >/dev/null 2>&1 || true
	fi
done
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
	for s in "${services[@]}"; do
		$sudo systemctl disable --now "$s" >/dev/null 2>&1 || true
	done
fi
echo "e2e-apt: installed ${missing[*]}"
