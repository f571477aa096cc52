#!/usr/bin/env bash
# Installs VersityGW, a real S3-compatible server (Apache-2.0, a single Go binary), into .cache/bin when it is
# missing. The S3 tests and `npm run bench` start it on a free port with a temporary root; `npm test`,
# `npm run test:e2e` and `npm run bench` call this script first, so a fresh clone needs only Go.
# Idempotent: the pinned version already there is kept. A failed download is tried again (scripts/retry.sh).
# Usage: scripts/install-versitygw.sh
set -euo pipefail
. "$(dirname "$0")/retry.sh"
VERSION="${VERSITYGW_VERSION:-v1.8.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="$ROOT/.cache/bin"
BIN="$BIN_DIR/versitygw"
STAMP="$BIN_DIR/versitygw.version"

if [[ -x "$BIN" && "$(cat "$STAMP" 2>/dev/null)" == "$VERSION" ]]; then
  echo "versitygw $VERSION already in $BIN"
  exit 0
fi
if ! command -v go >/dev/null; then
  # v1.8.0's go.mod asks for Go 1.25; an older Go 1.21+ fetches that toolchain by itself.
  echo "install-versitygw: Go is needed to install VersityGW $VERSION for the S3 tests; install Go 1.25 or newer (https://go.dev/dl/) and run this again" >&2
  exit 1
fi
mkdir -p "$BIN_DIR"
echo "install-versitygw: go install github.com/versity/versitygw/cmd/versitygw@$VERSION (a minute or two on a fresh machine)" >&2
export GOBIN="$BIN_DIR"
retry go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
echo "$VERSION" >"$STAMP"
echo "versitygw $VERSION installed in $BIN"
