# nomadscalerd build, test and run. Everything that is not a Go module is
# installed into .cache/ (git-ignored) on first use and reused afterwards.
SHELL := /bin/bash
CACHE       := $(CURDIR)/.cache
HIGHS       := $(CACHE)/highs
NOMAD_DIR   := $(CACHE)/nomad
NOMAD_BIN   := $(NOMAD_DIR)/nomad
export PKG_CONFIG_PATH := $(HIGHS)/lib/pkgconfig:$(PKG_CONFIG_PATH)
export CGO_LDFLAGS     := -Wl,-rpath,$(HIGHS)/lib
export LD_LIBRARY_PATH := $(HIGHS)/lib:$(LD_LIBRARY_PATH)
export NOMADSCALERD_NOMAD_BIN := $(NOMAD_BIN)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all deps build run test test-unit test-integration bench bench-model vet fmt clean
all: build

$(HIGHS)/lib/pkgconfig/highs.pc:
	bash scripts/install-highs.sh $(HIGHS)

$(NOMAD_BIN):
	bash scripts/install-nomad.sh $(NOMAD_DIR)

deps: $(HIGHS)/lib/pkgconfig/highs.pc $(NOMAD_BIN)

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

clean:
	rm -rf bin
