#!/usr/bin/env bash
# On the GPU machine (no internet): install the carried wheels and the CUDA
# build of llama-cpp-python into /tmp/site, then run the measurement.
# Carry .gpu (llama_cpp_cuda.tar.xz and wheels/) with the working tree.
set -euo pipefail
SITE=/tmp/site
mkdir -p "$SITE"
tar xJf .gpu/llama_cpp_cuda.tar.xz -C "$SITE"
python3 -m pip install -q --no-index --find-links .gpu/wheels --target "$SITE" \
  fastapi uvicorn pydantic pydantic-settings pygls lsprotocol tree-sitter \
  tree-sitter-python tree-sitter-rust tree-sitter-typescript tree-sitter-javascript \
  tree-sitter-go tree-sitter-java "pyjwt[crypto]" gguf
NV=$(python3 -c "import nvidia; print(list(nvidia.__path__)[0])")
export LD_LIBRARY_PATH="$NV/cu13/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export PYTHONPATH="$SITE:$PWD"
python3 -c "import llama_cpp; assert llama_cpp.llama_supports_gpu_offload(), 'no GPU backend'"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 bench/gpu/run.py --out "${OUT:-/tmp/out}" "$@"
