# deployctl: see README.md. `make demo` runs the story locally, `make check`
# installs what the tests need and runs them all, `make bench` measures.
SHELL   := /bin/bash
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/deployctl/deployctl/internal/registrarcli.Version=$(VERSION)

# The registrar's packages run with the race detector.
RACE_PKGS = $(shell $(GO) list ./registrar/... ./internal/registrarcli/... ./internal/docker/...)
ALL_PKGS  = $(shell $(GO) list ./...)
REST_PKGS = $(filter-out $(RACE_PKGS),$(ALL_PKGS))

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

## check: install what the tests need, then vet and run every test
check: deps vet
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 15m $(REST_PKGS)
	@# compat/etcd35 is its own module (etcd 3.5 has the v2 API the nodes use; ours is 3.7)
	cd compat/etcd35 && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...

test: check

## demo: the whole story on this machine, no cloud account needed
demo: deps
	$(GO) run ./cmd/deployctl demo $(DEMO_FLAGS)

## bench: every benchmark, one table, bench/results.json
bench: deps
	$(GO) run ./bench $(BENCH_FLAGS)

clean:
	rm -rf $(BIN) bench/out
