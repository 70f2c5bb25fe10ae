# tenantgate: the two commands of the quick start are `make demo` and `make test`.
SHELL := /bin/bash
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   ?= $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BIN         := $(CURDIR)/bin
UNIT_PKGS    = $(shell $(GO) list ./... | grep -v /test/e2e)

.PHONY: all build test lint unit e2e e2e-tools demo bench bench-load bench-tenants fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/tenantgate ./cmd/tenantgate

## test: everything CI runs: lint, unit/golden/fuzz-seed tests with -race, end-to-end tests with real programs.
test: lint unit e2e

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## unit: unit, golden and fuzz seed-corpus tests (go test runs testdata/fuzz seeds without -fuzz),
## once as built for production (allocation checks hold) and once with the race detector.
unit:
	$(GO) test -count=1 -timeout 20m $(UNIT_PKGS)
	$(GO) test -race -count=1 -timeout 20m $(UNIT_PKGS)

## e2e-tools: install the Debian packages the tests run (Prometheus 2, etcd, rsyslog, nginx; a
## no-op when present) and build (or reuse from the cache) Thanos, Hydra, Prometheus 3 and Kubernetes.
e2e-tools:
	test/e2e/tools/apt.sh
	test/e2e/tools/build.sh all

## e2e: end-to-end tests against real Thanos, Hydra and Prometheus 2 and 3 agents.
e2e: e2e-tools build
	eval "$$(test/e2e/tools/env.sh)" && TENANTGATE_E2E=1 TENANTGATE_E2E_TENANTGATE=$(BIN)/tenantgate \
		$(GO) test -count=1 -timeout 45m -v ./test/e2e/... 2>&1 | tee $(BIN)/e2e.log | grep -E '^(=== RUN|--- |    --- |PASS|FAIL|ok|panic)|SKIP'; \
		exit $${PIPESTATUS[0]}

## demo: Thanos receive + query, a Prometheus agent of the demo tenant, tenantgate between them.
demo: build
	deploy/demo/run.sh

## bench: the stamping benchmarks against the snappy round-trip baseline, then the whole gateway's
## remote-write path in process against the same baseline, compared with benchstat.
bench:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem -count=6 ./proxy/ingest/promrw/stamp/ | tee $(BIN)/stamp.bench
	$(GO) test -run '^$$' -bench GatewayRemoteWrite -benchmem -count=6 ./proxy/ | tee -a $(BIN)/stamp.bench
	$(BENCHSTAT) $(BIN)/stamp.bench

## bench-tenants: render and plan 1,000 and 10,000 tenants; reload 10,000 tenants beside lookups (baseline: no reload).
bench-tenants:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench 'Render|Plan' -benchmem -benchtime=3x -count=6 ./tenancy/provision/ | tee $(BIN)/tenants.bench
	$(GO) test -run '^$$' -bench 'NewRegistry|Permissions' -benchmem -count=6 ./tenancy/ | tee -a $(BIN)/tenants.bench
	$(GO) test -run '^$$' -bench 'SetDynamicTenants' -benchmem -count=6 ./proxy/ | tee -a $(BIN)/tenants.bench
	$(BENCHSTAT) $(BIN)/tenants.bench

## bench-load: the remote-write load generator through tenantgate, nginx and a snappy round-trip proxy, same run.
bench-load: build
	bench/load.sh

## bench-promql: PromQL enforcement against the parse+print baseline (ratio in process CPU time) and the gateway's added cost per instant query, -count=6.
.PHONY: bench-promql bench-query
bench-promql:
	mkdir -p $(BIN) && $(GO) test -run '^$$' -bench 'BenchmarkEnforce|BenchmarkGatewayInstantQuery' -benchmem -count=6 ./proxy/query/promql/ | tee $(BIN)/promql.bench
	$(BENCHSTAT) $(BIN)/promql.bench

## bench-query: instant query latency through tenantgate and straight to a real thanos query, same run.
bench-query: build
	bench/query.sh

.PHONY: bench-audit e2e-audit-soak

## bench-audit: the audit intake under the real webhook client library (LEVEL, DURATION, MODE=replay; see bench/audit.sh).
bench-audit: build
	bench/audit.sh

## e2e-audit-soak: the audit fault test for SOAK (default 3m): rsyslog restarts and tenantgate SIGKILLs under load, nothing acknowledged lost.
SOAK ?= 3m
e2e-audit-soak: e2e-tools build
	eval "$$(test/e2e/tools/env.sh)" && TENANTGATE_E2E=1 TENANTGATE_E2E_TENANTGATE=$(BIN)/tenantgate TENANTGATE_E2E_SOAK=$(SOAK) \
		$(GO) test -count=1 -timeout 30m -v -run '^TestAuditSoak$$' ./test/e2e/ 2>&1 | tee $(BIN)/e2e-audit-soak.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|SKIP|audit (faults|soak):'; \
		exit $${PIPESTATUS[0]}

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf $(BIN)
