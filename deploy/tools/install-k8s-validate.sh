#!/usr/bin/env bash
# Build deploy/tools/k8s-validate (a Go program: Kubernetes API types of k8s.io/api,
# KEDA and Prometheus Operator types, the PromQL parser) into <repo>/.local/bin, from the
# Go module proxy. Rebuilt only when its sources change. Prints the binary's path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/deploy/tools/k8s-validate"
BIN="$ROOT/.local/bin"
HASH="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-12)"
TARGET="$BIN/k8s-validate-$HASH"

if [[ ! -x "$TARGET" ]]; then
    command -v go >/dev/null || { echo "install-k8s-validate: Go is required" >&2; exit 1; }
    mkdir -p "$BIN" "$ROOT/.local/cache/go/mod" "$ROOT/.local/cache/go/build"
    echo "install-k8s-validate: building (first time: several minutes)" >&2
    (
        cd "$SRC"
        GOMODCACHE="$ROOT/.local/cache/go/mod" \
        GOCACHE="$ROOT/.local/cache/go/build" \
        GOFLAGS="-buildvcs=false -mod=readonly" \
        CGO_ENABLED=0 \
            go build -trimpath -o "$TARGET.tmp" . >&2
    )
    mv "$TARGET.tmp" "$TARGET"
    find "$BIN" -maxdepth 1 -name 'k8s-validate-*' ! -name "k8s-validate-$HASH" -delete
fi
ln -sfn "k8s-validate-$HASH" "$BIN/k8s-validate"
echo "$TARGET"
