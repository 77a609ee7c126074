# deployctl: see README.md. `make demo` runs the story locally, `make check`
# installs what the tests need and runs them all, `make bench` measures.
SHELL   := /bin/bash
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/deployctl/deployctl/registrar/cli.Version=$(VERSION) -X github.com/deployctl/deployctl/cmd/deployctl/cli.Version=$(VERSION)
# grpcnotrace leaves out gRPC's x/net/trace (and the html/template it
# brings): a fifth of the registrar's binary and of the memory it maps.
# internal/imagebuild builds the tests' binaries with the same tags.
GO_TAGS ?= grpcnotrace
# Every build of ./cmd/ goes through GOBUILD: one set of flags and tags.
GOBUILD  = $(GO) build -trimpath -tags '$(GO_TAGS)' -ldflags '$(LDFLAGS)'
# Static binaries (CGO_ENABLED=0): the demo runs deployctl itself in
# FROM scratch images, and releases run anywhere.
STATIC  := CGO_ENABLED=0

.PHONY: all build deps check vet test demo bench release clean e2e cluster-bin

all: build

## build: the registrar for linux/amd64 (DigitalOcean's droplets; what
## infra ships) and deployctl for this machine, static
build:
	$(STATIC) GOOS=linux GOARCH=amd64 $(GOBUILD) -o $(BIN)/registrar ./cmd/registrar
	$(STATIC) $(GOBUILD) -o $(BIN)/deployctl ./cmd/deployctl

## release: static deployctl and registrar for linux/amd64 and linux/arm64,
## deployctl for darwin, version stamped, with SHA256SUMS, in bin/release
RELEASE := linux/amd64 linux/arm64
release:
	rm -rf $(BIN)/release && mkdir -p $(BIN)/release
	@set -e; for p in $(RELEASE); do os=$${p%/*}; arch=$${p#*/}; \
	  echo "release: $$os/$$arch"; \
	  $(STATIC) GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $(BIN)/release/registrar-$$os-$$arch ./cmd/registrar; \
	  $(STATIC) GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $(BIN)/release/deployctl-$$os-$$arch ./cmd/deployctl; \
	done
	@set -e; for arch in amd64 arm64; do echo "release: darwin/$$arch"; \
	  $(STATIC) GOOS=darwin GOARCH=$$arch $(GOBUILD) -o $(BIN)/release/deployctl-darwin-$$arch ./cmd/deployctl; done
	cd $(BIN)/release && sha256sum * > SHA256SUMS && cat SHA256SUMS

## deps: install nginx, systemd-analyze, iproute2 when missing; start Docker
deps:
	@./scripts/deps.sh

vet:
	$(GO) vet ./...

## check: install what the tests need, then vet and run every test (the
## registrar's with the race detector; compat/etcd35 is a module of its own
## on etcd 3.5, the v2 API the nodes use). Ends with "N passed, N failed,
## N skipped"; under .ci/run (DEPLOYCTL_REQUIRE_ALL=1) a missing Docker,
## nginx, systemd-analyze, curl or shellcheck fails its tests instead of
## skipping them.
check: deps vet
	./scripts/no-binaries.sh
	GO=$(GO) ./scripts/check.sh

test: check

## e2e: the whole story on a local cluster (deployctl cluster local): nodes
## are systemd containers booted from our own user data, running real
## fleetd 1.0.0, flannel v0.14.0, etcd 3.5 and the registrar; plain and TLS.
## Each cluster is provisioned by the Pulumi program (the real engine, the
## CLI built by scripts/pulumi-cli.sh, the real providers from
## ../shared/tools) against the DigitalOcean stand-in. Then the README's
## pulumi up for real (compat/pulumicli): the CLI's own path, with the Go
## language host, against deployctl cluster local api.
## Builds static deployctl, registrar and etcd 3.5 into bin/; the node image
## is built once with debootstrap and cached in ~/.cache/deployctl.
## Figures go to bench/out/e2e.json.
E2E_TOOLS ?= $(abspath ../shared/tools/linux-amd64)
E2E_PLUGINS ?= $(abspath ../shared/tools/pulumi-linux-amd64)
E2E_ENV   := DEPLOYCTL_BIN=$(abspath $(BIN)) DEPLOYCTL_TOOLS=$(E2E_TOOLS) DEPLOYCTL_PULUMI_PLUGINS=$(E2E_PLUGINS)
e2e: deps cluster-bin
	@mkdir -p bench/out
	rm -f bench/out/e2e.json
	cli=$$(GO=$(GO) ./scripts/pulumi-cli.sh) && $(E2E_ENV) DEPLOYCTL_PULUMI_CLI=$$cli DEPLOYCTL_E2E_REPORT=$(abspath bench/out/e2e.json) \
	  $(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestE2E' ./localcluster/ 2>&1 | tee bench/out/e2e.log | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok|\s+e2e_test)' ; exit $${PIPESTATUS[0]}
	cli=$$(GO=$(GO) ./scripts/pulumi-cli.sh) && cd compat/pulumicli && $(E2E_ENV) DEPLOYCTL_PULUMI_CLI=$$cli DEPLOYCTL_E2E_REPORT=$(abspath bench/out/e2e.json) \
	  $(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestE2EPulumiUp' . 2>&1 | tee $(abspath bench/out/e2e-pulumi.log) | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok|\s+\S+_test.go)' ; exit $${PIPESTATUS[0]}

## cluster-bin: what the local cluster runs from bin/: static linux/amd64
## deployctl, registrar and etcd 3.5 (compat/etcd35, from the module proxy)
cluster-bin:
	@mkdir -p $(BIN)
	$(STATIC) GOOS=linux GOARCH=amd64 $(GOBUILD) -o $(BIN)/registrar ./cmd/registrar
	$(STATIC) GOOS=linux GOARCH=amd64 $(GOBUILD) -o $(BIN)/deployctl ./cmd/deployctl
	cd compat/etcd35 && $(STATIC) GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w' -o $(abspath $(BIN))/etcd ./etcd

## demo: the whole story on this machine, no cloud account needed. It runs
## the built binary itself (not `go run`, which turns the Ctrl-C that ends
## the demo into exit status 1), so a stop the user asked for exits 0.
demo: deps
	$(STATIC) $(GOBUILD) -o $(BIN)/deployctl ./cmd/deployctl
	exec $(BIN)/deployctl demo $(DEMO_FLAGS)

## bench: every benchmark, one table, bench/results.json
## (with ../shared/tools beside the clone it also runs the plain story on a
## local cluster for the cluster rows; BENCH_FLAGS=-cluster=false skips it)
bench: deps cluster-bin
	cli=$$(GO=$(GO) ./scripts/pulumi-cli.sh) && $(if $(wildcard $(E2E_TOOLS)/SHA256SUMS),$(E2E_ENV) DEPLOYCTL_PULUMI_CLI=$$cli) $(GO) run ./bench $(BENCH_FLAGS)

clean:
	rm -rf $(BIN) bench/out
