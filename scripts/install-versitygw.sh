#!/usr/bin/env bash
# Installs VersityGW, a real S3-compatible server (Apache-2.0, a single Go binary), into .cache/bin when it is
# missing. The S3 tests and `npm run bench` start it on a free port with a temporary root; nothing else needs it.
# Usage: scripts/install-versitygw.sh   (prints the binary's path)
set -euo pipefail
VERSION="${VERSITYGW_VERSION:-v1.8.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="$ROOT/.cache/bin"
BIN="$BIN_DIR/versitygw"
STAMP="$BIN_DIR/versitygw.version"

if [[ -x "$BIN" && "$(cat "$STAMP" 2>/dev/null)" == "$VERSION" ]]; then
  echo "$BIN"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "install-versitygw: Go is needed to install VersityGW ($VERSION); install Go 1.24 or newer (https://go.dev/dl/) and run this again" >&2
  exit 1
fi
mkdir -p "$BIN_DIR"
echo "install-versitygw: go install github.com/versity/versitygw/cmd/versitygw@$VERSION (about a minute on a fresh machine)" >&2
GOBIN="$BIN_DIR" go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
echo "$VERSION" > "$STAMP"
echo "$BIN"
