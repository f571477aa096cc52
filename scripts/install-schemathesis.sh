#!/usr/bin/env bash
# Installs Schemathesis (MIT, from PyPI) into its own Python venv at .cache/schemathesis when it is missing. The
# reliability suite's fuzz test (test/reliability/fuzz.test.ts) runs its `st` against the API's /openapi.json;
# `npm test` calls this script first, so a fresh clone needs only Python 3.11+ with its venv module. Idempotent: a
# venv whose `st` reports the pinned version is kept. A failed download is tried again (scripts/retry.sh).
# Usage: scripts/install-schemathesis.sh
set -euo pipefail
. "$(dirname "$0")/retry.sh"
VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/.cache/schemathesis"
ST="$DIR/bin/st"
PYTHON="${PYTHON:-python3}"

# The installed tool is asked for its version, so a venv left half-made by an interrupted install is made again.
if [[ -x "$ST" && "$("$ST" --version 2>/dev/null)" == *" $VERSION" ]]; then
  echo "schemathesis $VERSION already in $DIR"
  exit 0
fi
if ! command -v "$PYTHON" >/dev/null; then
  echo "install-schemathesis: Python 3.11 or newer ($PYTHON) is needed to install Schemathesis $VERSION for the fuzz test; install it (Debian: apt-get install python3 python3-venv) and run this again" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install-schemathesis: Schemathesis $VERSION needs Python 3.11 or newer, $PYTHON is $("$PYTHON" --version 2>&1); install a newer one (or set PYTHON) and run this again" >&2
  exit 1
fi
# Debian's python3 has the venv module but not ensurepip, which venv needs to put pip in; python3-venv brings it.
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "install-schemathesis: Python's venv module is missing in $PYTHON ($("$PYTHON" --version 2>&1)); install it (Debian: apt-get install python3-venv) and run this again" >&2
  exit 1
fi
echo "install-schemathesis: pip install schemathesis==$VERSION into $DIR (a minute on a fresh machine)" >&2
rm -rf "$DIR"
mkdir -p "$(dirname "$DIR")"
"$PYTHON" -m venv "$DIR"
retry "$DIR/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
"$ST" --version >/dev/null
echo "schemathesis $VERSION installed in $DIR"
