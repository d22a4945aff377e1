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

.PHONY: all deps prometheus moto build run test test-unit bench bench-optimize bench-reaction bench-model bench-sweep bench-live vet clean
all: build

$(HIGHS)/lib/pkgconfig/highs.pc:
	bash scripts/install-highs.sh $(HIGHS)

$(NOMAD_BIN):
	bash scripts/install-nomad.sh $(NOMAD_DIR)

# HashiCorp's nomad-autoscaler, only for make bench-live (not part of deps).
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

vet: $(HIGHS)/lib/pkgconfig/highs.pc
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Quick inner loop: no Nomad agents, no race detector.
test-unit: $(HIGHS)/lib/pkgconfig/highs.pc
	go test -short ./...

test: deps
	bash scripts/test.sh

run: build $(NOMAD_BIN)
	bash scripts/run-dev.sh bin/nomadscalerd

# Benchmarks: optimizer DP vs HiGHS table, reaction time on a real agent.
bench: bench-optimize bench-reaction

bench-optimize: $(HIGHS)/lib/pkgconfig/highs.pc
	bash scripts/bench-optimize.sh

bench-reaction: deps
	go test -run '^$$' -bench BenchmarkReactionFromJobEventToReconcile -benchtime 1x ./cmd/nomadscalerd/

# The predictive policy at the daemon's defaults across 81 settings on the
# NASA week, against target-value (about 45 minutes on 2 cores).
bench-sweep: $(HIGHS)/lib/pkgconfig/highs.pc
	go test -run '^$$' -bench PredictiveSweep -benchtime 1x -timeout 3h ./backtest/

# nomadscalerd against HashiCorp's nomad-autoscaler v0.4.7 on two copies of
# the demo job, live on one Nomad dev agent (BENCH_LIVE_DURATION, default
# 20m); not part of make test.
bench-live: build $(NOMAD_BIN) prometheus $(AUTOSCALER_BIN)
	NOMAD_AUTOSCALER_BIN=$(AUTOSCALER_BIN) bash scripts/bench-live.sh bin/nomadscalerd

# SARIMAX fit+forecast: Go vs statsmodels on the same data, ratio printed
# (installs Debian's python3-statsmodels; the tests never need it).
bench-model: $(HIGHS)/lib/pkgconfig/highs.pc
	bash scripts/bench-model.sh

clean:
	rm -rf bin
