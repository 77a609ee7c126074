// Package pulumicli runs deployctl's Pulumi program under the real Pulumi
// engine: the CLI built from the Go module proxy at the SDK's version (the
// tool this module pins in go.mod), the real provider plugins and Go
// language host from ../shared/tools/pulumi-linux-amd64, a private
// PULUMI_HOME, a file backend and no network.
//
// It is a module of its own so that the CLI's many dependencies never enter
// the main module's graph. scripts/pulumi-cli.sh builds the CLI once per
// machine (cached outside the clone, keyed by this go.mod and go.sum) and
// `make check` passes its path in DEPLOYCTL_PULUMI_CLI.
//
// The mocks in package infra never run the engine; these tests catch what
// only the engine checks (design §11): secrets in triggers, config keys the
// CLI stops on, keys that change between runs.
package pulumicli
