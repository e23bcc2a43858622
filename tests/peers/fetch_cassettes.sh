#!/usr/bin/env bash
# Fetch the Mastodon.py 2.3.3 sdist and unpack its vcrpy cassettes (responses recorded from a
# real Mastodon 4.7.3) into tests/peers/.cache/mastodon-cassettes, for the contract tests in
# tests/platforms/test_mastodon.py. Not committed; skipped when already there.
set -euo pipefail
cd "$(dirname "$0")"
dest=.cache/mastodon-cassettes
if [ -s "$dest/test_instance.yaml" ]; then
    exit 0
fi
pip=../../.venv/bin/pip
[ -x "$pip" ] || pip="python3 -m pip"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
    mastodon-py==2.3.3 -d "$tmp"
mkdir -p "$tmp/unpacked" .cache
tar -xzf "$tmp"/mastodon_py-2.3.3.tar.gz -C "$tmp/unpacked" \
    --wildcards 'mastodon_py-2.3.3/tests/cassettes/*'
rm -rf "$dest.new"
mv "$tmp/unpacked/mastodon_py-2.3.3/tests/cassettes" "$dest.new"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "cassettes in tests/peers/$dest ($(ls "$dest" | wc -l) files)"
