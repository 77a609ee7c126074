#!/usr/bin/env bash
# make check's test run: every package, the registrar's with the race
# detector, compat/etcd35 (a module of its own), and compat/pulumicli: the
# program under the real Pulumi engine (the CLI is built once per machine by
# scripts/pulumi-cli.sh and cached outside the clone). Results stream per
# package; failures print their output; the last line counts every test:
# "N passed, N failed, N skipped". Skipped tests are listed by name.
set -uo pipefail
GO=${GO:-go}
cd "$(dirname "$0")/.."
out=${TEST_OUT:-bin/test}
mkdir -p "$out"
rm -f "$out"/*.json
summary() { "$out/testsummary" "$@"; }
$GO build -o "$out/testsummary" ./scripts/testsummary || exit 1
status=0
race_pkgs=$($GO list ./registrar/... ./internal/docker/... ./units/rollout/... ./units/fleet/... ./cmd/deployctl/cli/...)
rest_pkgs=$($GO list ./... | grep -vxF "$race_pkgs")
$GO test -json -race -count=1 -timeout 15m $race_pkgs | summary -append "$out/race.json" || status=1
$GO test -json -count=1 -timeout 15m $rest_pkgs | summary -append "$out/rest.json" || status=1
(cd compat/etcd35 && $GO vet ./... && $GO test -json -count=1 -timeout 5m ./...) | summary -append "$out/compat.json" || status=1
if cli=$(GO=$GO ./scripts/pulumi-cli.sh); then
  export DEPLOYCTL_PULUMI_CLI=$cli
else
  echo "check: the Pulumi CLI did not build; the real-engine tests will say so" >&2
fi
(cd compat/pulumicli && $GO vet . && $GO test -json -count=1 -timeout 10m .) | summary -append "$out/pulumi.json" || status=1
summary -total "$out"/race.json "$out"/rest.json "$out"/compat.json "$out"/pulumi.json || status=1
exit $status
