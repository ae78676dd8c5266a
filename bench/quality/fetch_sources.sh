#!/usr/bin/env bash
# Real source files for the real-code holes of bench/quality (not needed for
# the HumanEval splits). Python comes from the running interpreter's own
# site-packages; the rest from package registries, by name, into DIR:
#   DIR/npm       npm packages: JavaScript (axios, express) and TypeScript sources (rxjs, immer)
#   Debian        librust-*-dev crate sources (/usr/share/cargo/registry),
#                 golang-*-dev sources (/usr/share/gocode/src),
#                 openjdk-17-source (the JDK's own Java sources, src.zip)
# Usage: bash bench/quality/fetch_sources.sh DIR
set -euo pipefail
dir=${1:?usage: fetch_sources.sh DIR}
mkdir -p "$dir/npm"
(cd "$dir/npm" && npm init -y >/dev/null && npm install --no-audit --no-fund --ignore-scripts \
    axios@1 express@4 rxjs@7 immer@10 >/dev/null)
if command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        librust-serde-dev librust-anyhow-dev librust-semver-dev librust-log-dev \
        golang-github-google-uuid-dev golang-github-pkg-errors-dev \
        golang-github-spf13-pflag-dev golang-github-sirupsen-logrus-dev \
        openjdk-17-source >/dev/null
fi
mkdir -p "$dir/java"
src=$(ls /usr/lib/jvm/*/lib/src.zip 2>/dev/null | head -n1 || true)
if [ -n "$src" ]; then
    (cd "$dir/java" && unzip -qo "$src" 'java.base/java/util/*' 'java.base/java/lang/*')
fi
echo "sources in $dir"
