#!/usr/bin/env bash
# Prints the path of the real Pulumi CLI (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
# at the SDK's version, pinned by compat/pulumicli's go.mod and go.sum), building
# it once per machine from the Go module proxy (about 5 minutes on 2 cores). The
# build is cached outside the clone, keyed by the content of that go.mod and go.sum:
# ${DEPLOYCTL_CACHE:-$HOME/.cache/deployctl}/pulumi-cli/<key>/pulumi
set -euo pipefail
GO=${GO:-go}
cd "$(dirname "$0")/../compat/pulumicli"
version=$(sed -n 's/^\tgithub.com\/pulumi\/pulumi\/pkg\/v3 \(v[^ ]*\).*/\1/p' go.mod)
[ -n "$version" ] || { echo "pulumi-cli: no github.com/pulumi/pulumi/pkg/v3 version in compat/pulumicli/go.mod" >&2; exit 1; }
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
dir=${DEPLOYCTL_CACHE:-$HOME/.cache/deployctl}/pulumi-cli/$version-$key
if [ ! -x "$dir/pulumi" ]; then
  echo "pulumi-cli: building the Pulumi CLI $version (once per machine, cached in $dir)" >&2
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
    -o "$tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2
  mv "$tmp/pulumi" "$dir/pulumi"
fi
echo "$dir/pulumi"
