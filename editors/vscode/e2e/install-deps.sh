#!/usr/bin/env bash
# What the editor end-to-end tests need, installed on a clean Debian machine:
# tmux (Neovim tests), Chromium (drives VS Code), and code-server (VS Code in
# the browser) from npm. Prints the path of the code-server binary on stdout;
# everything else goes to stderr.
#
# code-server is cached in ~/.cache/ai-ide-ci/code-server-VERSION-nodeMAJOR
# (its native modules are built for that Node) and rebuilt when missing. Its
# npm postinstall downloads ripgrep from GitHub, so it is skipped and done by
# hand (see /work/shared/EDITOR_TESTING.md): VS Code's dependencies, the native
# modules, Debian's rg, and the links postinstall.sh would make.
set -euo pipefail

CODE_SERVER_VERSION=4.100.3

log() { echo "[editors-e2e] $*" >&2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

# apt packages: update and install only when one is missing.
missing=()
for package in tmux chromium ripgrep libkrb5-dev build-essential python3; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $sudo apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" != "20" ]; then
  log "code-server $CODE_SERVER_VERSION needs Node 20 (found $(node --version))"
  exit 1
fi

cache="$HOME/.cache/ai-ide-ci/code-server-$CODE_SERVER_VERSION-node$node_major"
if [ ! -f "$cache/.complete" ]; then
  log "installing code-server $CODE_SERVER_VERSION into $cache"
  work="$cache.partial"
  rm -rf "$work"
  mkdir -p "$work"
  (
    cd "$work"
    echo '{"name": "ai-ide-ci-code-server", "private": true}' >package.json
    npm install --no-audit --no-fund --ignore-scripts "code-server@$CODE_SERVER_VERSION" >&2
    npm rebuild argon2 >&2
    cd node_modules/code-server/lib/vscode
    npm install --no-audit --no-fund --ignore-scripts --omit=dev >&2
    # node-pty's post-install step ends with an `npx node-gyp` call that only
    # writes a compile database and fails offline: its module is built by then.
    npm rebuild kerberos @parcel/watcher @vscode/spdlog @vscode/deviceid native-watchdog node-pty >&2 || true
    for built in node-pty/build/Release/pty.node @vscode/spdlog/build/Release/spdlog.node \
      native-watchdog/build/Release/watchdog.node kerberos/build/Release/kerberos.node; do
      if [ ! -f "node_modules/$built" ]; then
        log "native module not built: $built"
        exit 1
      fi
    done
    mkdir -p node_modules/@vscode/ripgrep/bin
    cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
    # What postinstall.sh does in symlink_asar and symlink_bin_script.
    ln -sfn node_modules node_modules.asar
    ln -sfn code-linux.sh bin/remote-cli/code-server
    ln -sfn browser-linux.sh bin/helpers/browser.sh
    cd extensions
    npm install --no-audit --no-fund --ignore-scripts --omit=dev >&2
  )
  touch "$work/.complete"
  rm -rf "$cache"
  mv "$work" "$cache"
fi

binary="$cache/node_modules/.bin/code-server"
"$binary" --version >&2
echo "$binary"
