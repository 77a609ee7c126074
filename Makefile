# deployctl: see README.md. `make demo` runs the story locally, `make check`
# installs what the tests need and runs them all, `make bench` measures.
SHELL   := /bin/bash
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/deployctl/deployctl/internal/registrarcli.Version=$(VERSION)

.PHONY: all build deps check vet test demo bench clean

all: build

## build: the registrar for linux/amd64 (what infra ships) and deployctl
build:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/registrar ./cmd/registrar
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/deployctl ./cmd/deployctl

## deps: install nginx, systemd-analyze, iproute2 when missing; start Docker
deps:
	@./scripts/deps.sh

vet:
	$(GO) vet ./...

## check: install what the tests need, then vet and run every test (the
## registrar's with the race detector; compat/etcd35 is a module of its own
## on etcd 3.5, the v2 API the nodes use). Ends with "N passed, N failed,
## N skipped"; under .ci/run (DEPLOYCTL_REQUIRE_ALL=1) a missing Docker,
## nginx, systemd-analyze or curl fails its tests instead of skipping them.
check: deps vet
	GO=$(GO) ./scripts/check.sh

test: check

## demo: the whole story on this machine, no cloud account needed
demo: deps
	$(GO) run ./cmd/deployctl demo $(DEMO_FLAGS)

## bench: every benchmark, one table, bench/results.json
bench: deps
	$(GO) run ./bench $(BENCH_FLAGS)

clean:
	rm -rf $(BIN) bench/out
