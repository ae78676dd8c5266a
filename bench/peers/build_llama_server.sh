#!/usr/bin/env bash
# Build llama.cpp's own llama-server, llama-batched-bench and ggml-rpc-server from the
# source that the installed llama-cpp-python vendors (same llama.cpp version as
# the engine), once, into a cache outside the clone. Nothing is downloaded but
# llama-cpp-python's sdist from the package index.
#
#   bench/peers/build_llama_server.sh [PYTHON]   -> prints the bin directory
#
# The cache is keyed by the llama-cpp-python version:
#   ${AI_IDE_PEER_CACHE:-~/.cache/ai-ide/peers}/llama.cpp-<version>/bin
set -euo pipefail
python=${1:-python3}
# AI_IDE_LLAMA_CPP_VERSION names the version when PYTHON has no llama-cpp-python
# installed (CI builds this before the project's virtual environment exists).
version=${AI_IDE_LLAMA_CPP_VERSION:-$("$python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')}
cache=${AI_IDE_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-ide/peers}
target="$cache/llama.cpp-$version"
if [ -x "$target/bin/llama-server" ] && [ -x "$target/bin/ggml-rpc-server" ]; then
  echo "$target/bin"
  exit 0
fi
command -v cmake >/dev/null || { echo "cmake is needed (apt-get install cmake)" >&2; exit 1; }
# The work folder lives in the cache too: an interrupted build resumes where
# it stopped instead of starting over (it is removed once the build is done).
work="$cache/build-llama.cpp-$version"
mkdir -p "$work"
if ! ls "$work"/llama_cpp_python-*/vendor/llama.cpp/CMakeLists.txt >/dev/null 2>&1; then
  "$python" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" \
    "llama-cpp-python==$version" >&2
  tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
fi
src=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DGGML_RPC=ON -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON >&2
cmake --build "$work/build" --target llama-server llama-batched-bench ggml-rpc-server \
  -j "$(nproc)" >&2
rm -rf "$target.tmp" && mkdir -p "$target.tmp/bin"
cp "$work/build/bin/llama-server" "$work/build/bin/llama-batched-bench" \
  "$work/build/bin/ggml-rpc-server" "$target.tmp/bin/"
rm -rf "$target" && mv "$target.tmp" "$target"
rm -rf "$work"
echo "$target/bin"
