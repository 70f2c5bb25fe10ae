# shellcheck shell=bash
# lib.sh is sourced by build.sh and env.sh. It is the one place that pins the
# version of every end-to-end tool and says where its cached binary lives.

# e2e_cache prints the cache root that build.sh fills.
e2e_cache() {
	printf '%s\n' "${TENANTGATE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantgate-e2e}"
}

# e2e_tools lists the tools that build.sh knows how to build.
e2e_tools() {
	printf '%s\n' thanos hydra prometheus3 kube-apiserver kube-controller-manager kubectl
}

# e2e_tool_spec NAME sets, for one tool: moddir (the tools module folder,
# default NAME), module and version (which must match
# the require line in tools/NAME/go.mod), pkg (the main package), bin (binary name),
# tags, ldflags, cgo (CGO_ENABLED), version_cmd (the arguments that make the
# binary print its version) and version_re (what that output must match for a
# cached binary to be reused: the version, and for thanos the build tags).
e2e_tool_spec() {
	case $1 in
	thanos)
		version=v0.42.4
		module=github.com/thanos-io/thanos
		pkg=github.com/thanos-io/thanos/cmd/thanos
		bin=thanos
		# slicelabels is mandatory: without it "thanos receive" panics
		# (makeslice: len out of range) when "thanos query" connects.
		tags=netgo,slicelabels
		ldflags="-s -w -X github.com/prometheus/common/version.Version=${version#v}"
		cgo=0
		version_cmd=--version
		version_re='version 0\.42\.4 .*tags: *netgo,slicelabels'
		;;
	hydra)
		version=v2.3.0
		module=github.com/ory/hydra/v2
		pkg=github.com/ory/hydra/v2
		bin=hydra
		tags=sqlite,sqlite_omit_load_extension
		ldflags="-s -w -X github.com/ory/hydra/v2/driver/config.Version=${version}"
		cgo=1 # sqlite needs gcc
		version_cmd=version
		version_re='Version: *v2\.3\.0'
		;;
	prometheus3)
		version=v0.316.0
		module=github.com/prometheus/prometheus
		pkg=github.com/prometheus/prometheus/cmd/prometheus
		bin=prometheus
		tags=
		# Module v0.316.0 is Prometheus 3.16.0.
		ldflags="-s -w -X github.com/prometheus/common/version.Version=3.16.0"
		cgo=0
		version_cmd=--version
		version_re='version 3\.16\.0 '
		;;
	kube-apiserver | kube-controller-manager | kubectl)
		# All from one tools module: k8s.io/kubernetes with its staging
		# modules replaced by their published v0.37.2 copies.
		moddir=kubernetes
		version=v1.37.2
		module=k8s.io/kubernetes
		pkg=k8s.io/kubernetes/cmd/$1
		bin=$1
		tags=
		ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
		cgo=0
		version_cmd=--version
		version_re='v1\.37\.2'
		if [[ $1 == kubectl ]]; then
			version_cmd='version --client'
		fi
		;;
	*)
		echo "unknown e2e tool: $1 (known: $(e2e_tools | tr '\n' ' '))" >&2
		return 1
		;;
	esac
}

# e2e_tool_path NAME prints the path of NAME's cached binary (which may not
# exist yet).
e2e_tool_path() {
	# shellcheck disable=SC2034 # e2e_tool_spec sets them all; only some are used here.
	local module version pkg bin tags ldflags cgo version_cmd version_re moddir
	e2e_tool_spec "$1" || return 1
	printf '%s/%s-%s/%s\n' "$(e2e_cache)" "$1" "$version" "$bin"
}
