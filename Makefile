# nomadscalerd build, test and run. Everything that is not a Go module is
# installed into .cache/ (git-ignored) on first use and reused afterwards.
SHELL := /bin/bash
CACHE       := $(CURDIR)/.cache
HIGHS       := $(CACHE)/highs
NOMAD_DIR   := $(CACHE)/nomad
NOMAD_BIN   := $(NOMAD_DIR)/nomad
AUTOSCALER_DIR := $(CACHE)/nomad-autoscaler
AUTOSCALER_BIN := $(AUTOSCALER_DIR)/nomad-autoscaler
MOTO_DIR    := $(CACHE)/moto
export PKG_CONFIG_PATH := $(HIGHS)/lib/pkgconfig:$(PKG_CONFIG_PATH)
export CGO_LDFLAGS     := -Wl,-rpath,$(HIGHS)/lib
export LD_LIBRARY_PATH := $(HIGHS)/lib:$(LD_LIBRARY_PATH)
export NOMADSCALERD_NOMAD_BIN := $(NOMAD_BIN)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all deps prometheus moto build plugin run test test-unit bench bench-optimize bench-reaction bench-model bench-sweep bench-live bench-demo-phases bench-scale bench-store vet clean
all: build

$(HIGHS)/lib/pkgconfig/highs.pc:
	bash scripts/install-highs.sh $(HIGHS)

$(NOMAD_BIN):
	bash scripts/install-nomad.sh $(NOMAD_DIR)

# HashiCorp's nomad-autoscaler: make test runs it beside nomadscalerd in one
# namespace, and make bench-live against it (not part of deps).
$(AUTOSCALER_BIN):
	bash scripts/install-nomad-autoscaler.sh $(AUTOSCALER_DIR)

# Prometheus (Debian's package) is what the end-to-end tests and make run
# scrape with; the daemon itself does not need it.
prometheus:
	@bash scripts/install-apt.sh prometheus

# moto, the AWS API emulator the AWS provider's tests run against (trixie's
# packages on Debian 12; fast when already installed).
moto:
	@bash scripts/install-moto.sh $(MOTO_DIR)

deps: $(HIGHS)/lib/pkgconfig/highs.pc $(NOMAD_BIN) prometheus moto

build: $(HIGHS)/lib/pkgconfig/highs.pc
	go build -ldflags "$(LDFLAGS)" -o bin/nomadscalerd ./cmd/nomadscalerd

# The seed's Nomadscaler target plugin for nomad-autoscaler: its own module
# (cmd/nomadscaler/go.mod), so nomad-autoscaler's dependencies stay out of
# nomadscalerd's. Copy bin/nomadscaler into nomad-autoscaler's plugin_dir.
plugin:
	cd cmd/nomadscaler && go build -o $(CURDIR)/bin/nomadscaler .

vet: $(HIGHS)/lib/pkgconfig/highs.pc
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Quick inner loop: no Nomad agents, no race detector.
test-unit: $(HIGHS)/lib/pkgconfig/highs.pc
	go test -short ./...

test: deps $(AUTOSCALER_BIN)
	NOMAD_AUTOSCALER_BIN=$(AUTOSCALER_BIN) bash scripts/test.sh

run: build $(NOMAD_BIN)
	bash scripts/run-dev.sh bin/nomadscalerd

# Benchmarks: optimizer DP vs HiGHS table, reaction time on a real agent.
bench: bench-optimize bench-reaction

bench-optimize: $(HIGHS)/lib/pkgconfig/highs.pc
	bash scripts/bench-optimize.sh

bench-reaction: deps
	go test -run '^$$' -bench BenchmarkReactionFromJobEventToReconcile -benchtime 1x ./cmd/nomadscalerd/

# History store: 5,000 series written at 1 s ticks through store.WritePoints
# (BENCH_STORE_SERIES, BENCH_STORE_TICKS, BENCH_STORE_VALUES change it);
# prints the write cost per tick and bytes per stored point. A few minutes.
bench-store: $(HIGHS)/lib/pkgconfig/highs.pc
	go test -run '^$$' -bench BenchmarkStoreWrite -benchtime 1x -timeout 1h ./store/

# The predictive policy at the daemon's defaults across 81 settings on the
# NASA week, against target-value (about 9 to 45 minutes on 2 cores).
bench-sweep: $(HIGHS)/lib/pkgconfig/highs.pc
	go test -run '^$$' -bench PredictiveSweep -benchtime 1x -timeout 3h ./backtest/

# nomadscalerd against HashiCorp's nomad-autoscaler v0.4.7 on two copies of
# the demo job, live on one Nomad dev agent (BENCH_LIVE_DURATION, default
# 20m); not part of make test.
bench-live: build $(NOMAD_BIN) prometheus $(AUTOSCALER_BIN)
	NOMAD_AUTOSCALER_BIN=$(AUTOSCALER_BIN) bash scripts/bench-live.sh bin/nomadscalerd

# bench-live's comparison in replay, from ten phases of the demo's day
# (seconds; no Nomad): the sum does not depend on the phase a run starts at.
bench-demo-phases: build
	bash scripts/bench-demo-phases.sh bin/nomadscalerd

# 1,000 policies (one Prometheus check each, dry run, groups of count 0,
# 1 s sampling) on a real Nomad dev agent and a real Prometheus, the daemon
# in its own process, measured for BENCH_SCALE_DURATION (default 3m) once
# all are active; POLICIES (or BENCH_SCALE_POLICIES) changes the count,
# SHARDS=N runs N replicas with --shards N (make bench-scale
# POLICIES=10000 SHARDS=2). Prints policies active, samples stored, CPU,
# RSS, bytes per sealed point and the file's breakdown (store.Footprint),
# 429s and the event-to-reconcile p99.
# Each replica's database first gets HISTORY (BENCH_SCALE_HISTORY, default
# 24h less 15m, 0 for an empty file) of 1 s synthetic request counts for
# its series, cached in .cache/bench-scale/ and copied and topped up by
# later runs (about 5 minutes to make at 1,000 policies).
# TRAFFIC (BENCH_SCALE_TRAFFIC) is the live load: history (the default
# with a prefill) grows each policy's counter at its prefilled series'
# level, from 75 s before launch, so rate() continues the day (the groups
# then have max 0 and self_tune off: no dry-run scale-ups, no tuning
# backlog); idle (the default with HISTORY=0) leaves the counters at 0.
# BENCH_SCALE_PPROF=dir has each replica write cpu-<pid>.pprof and
# heap-<pid>.pprof there (go tool pprof them with the test binary).
# BENCH_SCALE_TRACE=file writes each second of the window's resident set
# (total, anonymous, file-backed, the database's mapped pages) as TSV.
# ROLLUPS (BENCH_SCALE_ROLLUPS, e.g. 720h) also writes that much of
# 1-minute rollups before the raw history when the file is made (up to the
# 30-day rollup retention): a daemon that has recorded its series a month
# (cached under its own name; 27 minutes to make at 1,000, against 10).
bench-scale: deps
	$(if $(POLICIES),BENCH_SCALE_POLICIES=$(POLICIES)) $(if $(SHARDS),BENCH_SCALE_SHARDS=$(SHARDS)) $(if $(HISTORY),BENCH_SCALE_HISTORY=$(HISTORY)) $(if $(ROLLUPS),BENCH_SCALE_ROLLUPS=$(ROLLUPS)) $(if $(TRAFFIC),BENCH_SCALE_TRAFFIC=$(TRAFFIC)) \
	go test -run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x -timeout 90m ./cmd/nomadscalerd/

# SARIMAX fit+forecast: Go vs statsmodels on the same data, ratio printed
# (installs Debian's python3-statsmodels; the tests never need it).
bench-model: $(HIGHS)/lib/pkgconfig/highs.pc
	bash scripts/bench-model.sh

clean:
	rm -rf bin
