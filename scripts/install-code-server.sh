#!/usr/bin/env bash
# Installs code-server (a real VS Code served to a browser) from the npm registry into .cache/code-server, in its
# own folder with its own package.json, so the project's `npm ci` stays lean. The e2e test (test/e2e/) runs it.
# Installs the Debian packages it needs when they are missing (as root). Idempotent: an install of the pinned
# version that already works is kept. A failed download (apt, npm's registry, node-gyp's headers) is tried again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/retry.sh

# Pinned: the e2e leans on VS Code's DOM, and 4.100.x is the last line that runs on the machines' Node 20.
VERSION=4.100.3
DIR=.cache/code-server
BIN="$DIR/node_modules/code-server/out/node/entry.js"

# Debian's packages: Chromium for the browser, ripgrep for VS Code's search, headers for code-server's native modules.
need=()
for p in chromium ripgrep libkrb5-dev libxkbfile-dev libsecret-1-dev pkg-config; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-code-server: apt-get install ${need[*]}"
    retry apt-get update -qq
    DEBIAN_FRONTEND=noninteractive retry apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "install-code-server: missing Debian packages: ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

if [ -f "$DIR/.installed" ] && [ "$(cat "$DIR/.installed")" = "$VERSION" ] && [ -f "$BIN" ]; then
  echo "code-server $VERSION already in $DIR"
  exit 0
fi

rm -rf "$DIR"
mkdir -p "$DIR/tmp"
cat >"$DIR/package.json" <<EOF
{
  "name": "druid-backup-e2e-code-server",
  "private": true,
  "description": "code-server for druid-backup's end-to-end test; installed by scripts/install-code-server.sh",
  "dependencies": { "code-server": "$VERSION" },
  "allowScripts": { "code-server": true, "argon2": true }
}
EOF

# code-server's postinstall refuses root without unsafe_perm; node-pty's asks `npx node-gyp` for a yes.
export npm_config_unsafe_perm=true npm_config_yes=true npm_config_fund=false npm_config_audit=false
# @vscode/ripgrep's postinstall downloads rg from a host these machines cannot reach; it first looks for the
# archive in {tmpdir}/vscode-ripgrep-cache-{its version}/, so Debian's rg is put there, under the install's own TMPDIR.
export TMPDIR="$PWD/$DIR/tmp"
# node-gyp builds the native modules against Node's headers, which it downloads from a host these machines cannot
# reach unless told where Node's own are (a packaged Node ships them in {prefix}/include/node).
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_version.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi

(cd "$DIR" && retry npm install --ignore-scripts --no-package-lock)
# The versions of @vscode/ripgrep that VS Code's own install will fetch, from its shrinkwrap.
RG_VERSIONS=$(node -e '
  const fs = require("fs"), seen = new Set();
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) continue;
    for (const [k, v] of Object.entries(JSON.parse(fs.readFileSync(f, "utf8")).packages ?? {})) if (k.endsWith("node_modules/@vscode/ripgrep")) seen.add(v.version);
  }
  console.log([...seen].join(" "));' "$DIR"/node_modules/code-server/lib/vscode/npm-shrinkwrap.json "$DIR"/node_modules/code-server/lib/vscode/extensions/npm-shrinkwrap.json)
staging="$TMPDIR/rg-staging"
mkdir -p "$staging"
cp "$(command -v rg)" "$staging/rg"
for v in $RG_VERSIONS; do
  mkdir -p "$TMPDIR/vscode-ripgrep-cache-$v"
  for arch in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    for rgv in v13.0.0-10 v13.0.0-13; do
      tar -C "$staging" -czf "$TMPDIR/vscode-ripgrep-cache-$v/ripgrep-$rgv-$arch.tar.gz" rg
    done
  done
done
(cd "$DIR" && retry npm rebuild code-server argon2)
[ -f "$BIN" ] || { echo "install-code-server: $BIN missing after install" >&2; exit 1; }
echo "$VERSION" >"$DIR/.installed"
rm -rf "$TMPDIR"
echo "code-server $VERSION installed in $DIR"
