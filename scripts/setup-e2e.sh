#!/usr/bin/env bash
# Installs what the real-VS-Code tests need, offline except for npm and Debian packages:
# code-server 4.100.3 (VS Code 1.100.3) and playwright-core into .test-tools/, and Debian's
# chromium. Follows the recipe verified on this project's machines (shared/notes/environment.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.test-tools"
if [ -x "$TOOLS/node_modules/.bin/code-server" ] && command -v chromium >/dev/null; then exit 0; fi
if ! command -v chromium >/dev/null || ! command -v rg >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ripgrep libkrb5-dev >/dev/null
fi
# @vscode/ripgrep's postinstall downloads rg from GitHub: seed its cache with Debian's rg.
TMP="${TMPDIR:-/tmp}"
CACHE="$TMP/vscode-ripgrep-cache-1.15.11"
mkdir -p "$CACHE"
if [ ! -f "$CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" ]; then
  STAGE="$(mktemp -d)"; cp "$(command -v rg)" "$STAGE/rg"
  tar -C "$STAGE" -czf "$CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" rg
fi
mkdir -p "$TOOLS"
# code-server's postinstall and argon2's prebuilt binding are the two install scripts it needs.
echo '{"private":true,"allowScripts":{"code-server":true,"argon2":true}}' > "$TOOLS/package.json"
# code-server's postinstall refuses to run as root unless npm_config_unsafe_perm=true is in its
# environment; npm 11 warns once that it no longer knows that setting. That one line is expected.
npm_config_yes=true npm_config_nodedir=/usr npm_config_unsafe_perm=true \
  npm install --prefix "$TOOLS" --no-audit --no-fund code-server@4.100.3 playwright-core >/dev/null
echo "e2e tools ready in $TOOLS"
