# Numéribus Sync — `make` alone lists the targets.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X numeribus/agent/cli.Version=$(VERSION) -X numeribus/hub/cli.Version=$(VERSION)
BENCH_OUT ?= .bench/results.json
BENCH_SYNC_OUT ?= .bench/sync.json
BENCH_REPORT_OUT ?= .bench/report.json
DEMO_DIR  ?= demo-data
# Packages with storage, sync or ordering code: always run with -race.
# The end-to-end sync tests (internal/e2e) run here only, under the race
# detector: they exercise the sync client and server concurrently.
RACE_PKGS := ./agent/store/... ./agent/importer/... ./internal/jsonl/... ./agent/syncclient/... ./hub/... ./internal/hlc/... ./internal/merge/... \
             ./internal/seal/... ./internal/sqlitex/... ./internal/wire/... ./internal/e2e/...
# An execution count, not a duration: with a duration Go 1.26's fuzz
# coordinator can fail a clean run with "context deadline exceeded" at the
# deadline (golang/go#75804, fixed in Go 1.27). About 10 s each here.
FUZZTIME  ?= 200000x
# How long `make soak` runs rounds of the convergence test.
SOAK      ?= 10m
# `make load`: simulated agents against a real `hub serve` (tools/load).
LOAD_AGENTS   ?= 1000
LOAD_CHANGES  ?= 200
LOAD_TEAMS    ?= 20
LOAD_BACKEND  ?= sqlite
LOAD_SCENARIO ?= burst
LOAD_SPREAD   ?= 60s
LOAD_OUT      ?= .bench/load.json
# `make release`: the platforms of the static binaries in $(DIST).
RELEASE_PLATFORMS ?= windows/amd64 windows/386 linux/amd64 linux/arm64 darwin/arm64
DIST      ?= dist

.DEFAULT_GOAL := help
.PHONY: help build test test-race test-unit fuzz lint soak bench load demo run clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/agent and bin/hub, CGO_ENABLED=0
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/agent ./agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/hub ./hub

release: ## static binaries of agent and hub for RELEASE_PLATFORMS in dist/, version embedded, with SHA256SUMS
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; if [ "$$os" = windows ]; then ext=.exe; fi; \
	  for cmd in agent hub; do \
	    echo "  $(DIST)/$$cmd-$$os-$$arch$$ext"; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/$$cmd-$$os-$$arch$$ext ./$$cmd; \
	  done; \
	done
	echo $(VERSION) > $(DIST)/VERSION
	cd $(DIST) && LC_ALL=C sha256sum -- * > SHA256SUMS
	@cat $(DIST)/SHA256SUMS
.PHONY: release

test: lint test-unit test-race fuzz ## the whole suite, what CI runs
	@echo "make test: all checks passed"

test-unit: ## unit and integration tests (real SQLite files, real processes), e2e aside
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /internal/e2e)

test-race: ## the race detector on storage, sync and clock code, and the end-to-end sync tests
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)

fuzz: ## short fuzz runs of every decoder of untrusted input
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeLine$$' -fuzztime $(FUZZTIME) ./internal/jsonl
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) ./internal/bundle

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	 if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

soak: ## the convergence test (random edits, cuts, kills, restores, clock offsets), rounds with fresh seeds for $(SOAK)
	NUMERIBUS_SOAK=$(SOAK) $(GO) test -race -run '^TestJepsenConverge$$' -v -timeout 0 ./internal/e2e/

bench: ## benchmarks: prints tables, writes $(BENCH_OUT) (agent), $(BENCH_SYNC_OUT) (sync), $(BENCH_REPORT_OUT) (dashboard)
	@mkdir -p $(dir $(BENCH_OUT)) $(dir $(BENCH_SYNC_OUT)) $(dir $(BENCH_REPORT_OUT))
	$(GO) run ./agent/agentbench -out $(BENCH_OUT)
	NUMERIBUS_BENCH_SYNC_OUT=$(abspath $(BENCH_SYNC_OUT)) $(GO) test ./internal/e2e -run '^$$' -bench '^BenchmarkSync$$' -benchtime 1x -timeout 20m
	NUMERIBUS_BENCH_REPORT_OUT=$(abspath $(BENCH_REPORT_OUT)) $(GO) test ./hub/store/sqlite -run '^$$' -bench '^BenchmarkOverview1M$$' -benchtime 1x -timeout 20m
	NUMERIBUS_BENCH_EXPORT_OUT=$(abspath .bench/export.json) $(GO) test ./hub/store/sqlite -run '^$$' -bench '^BenchmarkExport1M$$' -benchtime 1x -timeout 20m

load: build ## the hub under load: LOAD_AGENTS agents × LOAD_CHANGES changes in LOAD_TEAMS teams, LOAD_SCENARIO (burst|morning|idle|two) on LOAD_BACKEND (sqlite|postgres); writes LOAD_OUT
	@mkdir -p $(dir $(LOAD_OUT))
	$(GO) run ./tools/load -hub $(BIN)/hub -agents $(LOAD_AGENTS) -changes $(LOAD_CHANGES) -teams $(LOAD_TEAMS) \
		-backend $(LOAD_BACKEND) -scenario $(LOAD_SCENARIO) -spread $(LOAD_SPREAD) -out $(LOAD_OUT)

demo: build ## a hub on loopback, an enrolled agent, seeded and synced, the hub's stats (Ctrl-C stops)
	BIN=$(BIN) DEMO_DIR=$(DEMO_DIR) bash .ci/demo.sh

run: demo ## same as demo

clean: ## remove binaries, demo data and benchmark output
	rm -rf $(BIN) $(DIST) $(DEMO_DIR) .bench
