"""llama.cpp RPC servers as devices: one model split across machines.

A catalog entry's ``rpc_servers`` (``host:port`` of ``ggml-rpc-server``
processes, built from the same llama.cpp sources) become the devices the
model's layers are offloaded to, as llama-server's ``--rpc`` does: llama.cpp's
RPC backend is asked for each server's devices
(``ggml_backend_rpc_add_server``), and the model is loaded with exactly
those devices (``llama_model_params.devices``). They are not added to
ggml's global device list, so another model in the same process (thread
isolation) does not start offloading to them.

This needs a llama-cpp-python built with ``CMAKE_ARGS="-DGGML_RPC=ON"``;
without it the load fails with ``MODEL_LOAD_FAILED`` saying so.
"""

from __future__ import annotations

import ctypes
import socket
from collections.abc import Sequence

import llama_cpp

from engine.errors import ModelLoadFailedError
from engine.runtime.ggml import ggml_library

_AddServer = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)


def rpc_devices(servers: Sequence[str]) -> ctypes.Array[ctypes.c_void_p]:
    """The devices of ``servers``, as the NULL-terminated array llama.cpp takes."""
    if not llama_cpp.llama_supports_rpc():
        raise ModelLoadFailedError(
            "this llama-cpp-python has no RPC backend (rpc_servers needs it built with "
            'CMAKE_ARGS="-DGGML_RPC=ON")',
            {"reason": "rpc_unsupported"},
        )
    lib = ggml_library()
    registry = lib.ggml_backend_reg_by_name(b"RPC")
    address = lib.ggml_backend_reg_get_proc_address(registry, b"ggml_backend_rpc_add_server")
    if not registry or not address:
        raise ModelLoadFailedError("llama.cpp's RPC backend is missing", {"reason": "rpc_missing"})
    add_server = _AddServer(address)
    devices: list[int] = []
    for endpoint in servers:
        _check_reachable(endpoint)
        # Idempotent in llama.cpp: the same endpoint gives the same devices.
        server = add_server(endpoint.encode("utf-8"))
        if not server:
            raise ModelLoadFailedError(
                f"the RPC server {endpoint} did not answer (or has no devices)",
                {"reason": "rpc_unreachable", "rpc_server": endpoint},
            )
        for index in range(lib.ggml_backend_reg_dev_count(server)):
            devices.append(lib.ggml_backend_reg_dev_get(server, index))
    return (ctypes.c_void_p * (len(devices) + 1))(*devices, None)


def _check_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Refuse an RPC server that does not accept connections.

    llama.cpp's RPC client aborts the process when it cannot connect; asking
    first turns that into a load error (a server that dies later still ends
    the runner process, which the registry restarts).
    """
    host, _, port = endpoint.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ModelLoadFailedError(
            f"the RPC server {endpoint} does not accept connections ({exc.strerror or exc})",
            {"reason": "rpc_unreachable", "rpc_server": endpoint},
        ) from exc
