#!/usr/bin/env bash
# Install kustomize into <repo>/.local/bin from the Go module proxy (no GitHub download).
# Idempotent: does nothing when the pinned version is already there.
# Needs Go >= 1.26 on PATH (kustomize v5.8.3 already wants 1.27). Prints the binary path.
set -euo pipefail

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/.local/bin"
TARGET="$BIN/kustomize-$KUSTOMIZE_VERSION"

if [[ ! -x "$TARGET" ]]; then
    command -v go >/dev/null || { echo "install-kustomize: Go is required (apt-get install golang-go or go.dev)" >&2; exit 1; }
    mkdir -p "$BIN" "$ROOT/.local/cache/go/mod" "$ROOT/.local/cache/go/build"
    tmp="$(mktemp -d "$ROOT/.local/cache/go/kustomize.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "install-kustomize: building kustomize $KUSTOMIZE_VERSION (one time, a few minutes)" >&2
    GOBIN="$tmp" \
    GOMODCACHE="$ROOT/.local/cache/go/mod" \
    GOCACHE="$ROOT/.local/cache/go/build" \
    GOFLAGS="-buildvcs=false -trimpath" \
    CGO_ENABLED=0 \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
    mv "$tmp/kustomize" "$TARGET"
fi
ln -sfn "kustomize-$KUSTOMIZE_VERSION" "$BIN/kustomize"
echo "$TARGET"
