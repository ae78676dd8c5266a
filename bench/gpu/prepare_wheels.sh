#!/usr/bin/env bash
# Download the wheels the GPU machine lacks (its image has Python 3.12, PyTorch,
# numpy, httpx, jinja2, psutil, but not the server's own dependencies) into
# .gpu/wheels, for an offline install there. Run from the repository root.
set -euo pipefail
OUT=.gpu/wheels
mkdir -p "$OUT"
pip download --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d "$OUT" \
  "fastapi>=0.115" "uvicorn>=0.30" "pydantic>=2.7" "pydantic-settings>=2.4" \
  "pygls>=2.0,<3" "lsprotocol>=2025.0.0" "tree-sitter>=0.25" tree-sitter-python \
  tree-sitter-rust tree-sitter-typescript tree-sitter-javascript tree-sitter-go \
  tree-sitter-java "pyjwt[crypto]>=2.8" "gguf>=0.10"
du -sh "$OUT"
