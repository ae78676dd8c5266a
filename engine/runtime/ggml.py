"""The ggml library llama-cpp-python loaded, for the few calls its bindings lack.

Opened by path from llama-cpp-python's own ``lib`` folder, so the handle is
the same library and sees the same registered backends and devices. Used for
llama.cpp's RPC devices (``engine.runtime.rpc``) and to tell whether a real
GPU is there.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp

# enum ggml_backend_dev_type (ggml-backend.h)
_DEVICE_GPU = 1
_DEVICE_IGPU = 2


def ggml_library() -> ctypes.CDLL:
    """libggml, with the signatures of the functions used here declared."""
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    lib = ctypes.CDLL(str(lib_dir / "libggml.so"))
    lib.ggml_backend_reg_by_name.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_reg_by_name.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    lib.ggml_backend_reg_dev_count.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_reg_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_dev_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.ggml_backend_reg_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    lib.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    return lib


def gpu_device_present() -> bool:
    """True when ggml has a GPU (dedicated or integrated) among its devices.

    ``llama_supports_gpu_offload`` is no such test: it is also true for a
    CPU-only build with the RPC backend, which can offload to RPC servers.
    """
    lib = ggml_library()
    return any(lib.ggml_backend_dev_by_type(kind) for kind in (_DEVICE_GPU, _DEVICE_IGPU))
