"""Typed wrappers over llama-cpp-python's low-level API.

Only the model worker thread touches these objects. They own native memory
and free it explicitly (``close``): a model swap must return every byte.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from engine.completion.prompts import FimTokens
from engine.errors import InferenceFailedError, ModelLoadFailedError
from engine.runtime.ggml import gpu_device_present
from engine.runtime.messages import SamplingParams
from engine.runtime.rpc import rpc_devices

ProgressCallback = Callable[[float], bool]

_NATIVE_LOG = logging.getLogger("llama.cpp")
# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation. Its info
# chatter (tensor lists, buffer sizes) is debug material for us.
_NATIVE_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}


def _route_native_log(level: int, text: bytes | None, _user: ctypes.c_void_p) -> None:
    if not text:
        return
    python_level = _NATIVE_LEVELS.get(level, logging.DEBUG)
    if _NATIVE_LOG.isEnabledFor(python_level):
        _NATIVE_LOG.log(python_level, text.decode("utf-8", "replace").rstrip())


# A constant ctypes thunk: it must outlive every native call that may log.
_NATIVE_LOG_CALLBACK = llama_cpp.llama_log_callback(_route_native_log)


def route_native_logs() -> None:
    """Send llama.cpp's log lines to Python logging (logger ``llama.cpp``)."""
    llama_cpp.llama_log_set(_NATIVE_LOG_CALLBACK, ctypes.c_void_p(0))


def built_with_amx() -> bool:
    """True when this llama.cpp's CPU backend uses Intel AMX (it says so in its system info)."""
    info = llama_cpp.llama_print_system_info()
    return b"AMX_INT8 = 1" in (info if isinstance(info, bytes) else str(info).encode())


def repack_weights(setting: str) -> bool:
    """Whether to let llama.cpp repack weights into its extra buffer types.

    "auto" is yes except where the CPU backend uses AMX: its matrix multiply
    segfaults on the first decode of K-quant models (Gemma 3's Q4_K_M among
    them) on Sapphire Rapids CPUs (ggml-org/llama.cpp#20824, unfixed), and
    the AMX layout is one of those buffer types. Without them, weights stay
    in llama.cpp's plain CPU layout.
    """
    if setting == "auto":
        return not built_with_amx()
    return setting == "on"


def flash_attention(setting: str, n_gpu_layers: int) -> str:
    """The flash-attention setting to give llama.cpp: "auto" is off unless layers run on a GPU.

    llama.cpp's CPU flash-attention kernel sums the attention-weighted values
    in half precision when the V cache is F16. Against a reference decode
    with an F32 KV cache, Gemma 3 270M's next-token distributions on 60
    HumanEval prefixes are 2.2 times further off with it (mean KL 1.0e-3
    against 4.5e-4), for a decode about 8% faster at 1,500 tokens of
    context. Greedy completions are fragile to such noise (a flipped token
    breaks a passing line far more often than it mends a failing one), so
    the CPU gets the exact path. GPU kernels sum in single precision: there
    "auto" stays llama.cpp's own choice.
    """
    if setting != "auto":
        return setting
    return "auto" if n_gpu_layers != 0 and gpu_device_present() else "off"


class LlamaModel:
    """A loaded GGUF model (weights and vocabulary)."""

    def __init__(
        self,
        path: Path,
        *,
        n_gpu_layers: int = -1,
        use_mmap: bool = False,
        repack: bool = True,
        progress: ProgressCallback | None = None,
        rpc_servers: Sequence[str] = (),
    ) -> None:
        params = model_params(n_gpu_layers, use_mmap)
        params.use_extra_bufts = repack
        devices = None
        if rpc_servers:
            devices = rpc_devices(rpc_servers)  # kept alive until the load returns
            params.devices = ctypes.cast(devices, ctypes.c_void_p)
        callback: Any = None
        if progress is not None:
            report = progress

            def _on_progress(value: float, _user: ctypes.c_void_p) -> bool:
                # Returning False aborts the load (used for load timeouts).
                try:
                    return bool(report(float(value)))
                except Exception:  # a callback must never raise into C
                    return True

            callback = llama_cpp.llama_progress_callback(_on_progress)
            params.progress_callback = callback
        model = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
        del callback, devices  # only needed during the call above
        if not model:
            raise ModelLoadFailedError(
                f"llama.cpp could not load '{path.name}' (corrupt, unsupported or too large)",
                {"file": path.name},
            )
        self.ptr = model
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.size_bytes = int(llama_cpp.llama_model_size(model))
        self.n_params = int(llama_cpp.llama_model_n_params(model))
        self.description = self._describe()
        self.bos = self._token_or_none(llama_cpp.llama_vocab_bos(self.vocab))
        self.eos = self._token_or_none(llama_cpp.llama_vocab_eos(self.vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.fim = FimTokens(
            prefix=self._token_or_none(llama_cpp.llama_vocab_fim_pre(self.vocab)),
            suffix=self._token_or_none(llama_cpp.llama_vocab_fim_suf(self.vocab)),
            middle=self._token_or_none(llama_cpp.llama_vocab_fim_mid(self.vocab)),
            pad=self._token_or_none(llama_cpp.llama_vocab_fim_pad(self.vocab)),
            repo=self._token_or_none(llama_cpp.llama_vocab_fim_rep(self.vocab)),
            file_sep=self._token_or_none(llama_cpp.llama_vocab_fim_sep(self.vocab)),
            eot=self._token_or_none(llama_cpp.llama_vocab_eot(self.vocab)),
        )
        template = llama_cpp.llama_model_chat_template(model, None)
        self.chat_template: str | None = template.decode("utf-8", "replace") if template else None
        self._pieces: dict[int, bytes] = {}
        self._eog: list[int] | None = None

    @staticmethod
    def _token_or_none(token: int) -> int | None:
        return None if token < 0 else int(token)

    def _describe(self) -> str:
        buf = ctypes.create_string_buffer(256)
        llama_cpp.llama_model_desc(self.ptr, buf, ctypes.sizeof(buf))
        return buf.value.decode("utf-8", "replace")

    def metadata(self, key: str) -> str | None:
        """A GGUF metadata value as text, or None."""
        buf = ctypes.create_string_buffer(4096)
        n = llama_cpp.llama_model_meta_val_str(self.ptr, key.encode(), buf, ctypes.sizeof(buf))
        return None if n < 0 else buf.value.decode("utf-8", "replace")

    def tokenize(
        self, text: str, *, add_bos: bool = False, parse_special: bool = False
    ) -> list[int]:
        """Token ids of ``text`` (invalid UTF-16 surrogates become U+FFFD)."""
        data = text.encode("utf-8", "replace")
        capacity = len(data) + 8
        while True:
            buf = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), buf, capacity, add_bos, parse_special
            )
            if n >= 0:
                return list(buf[:n])
            if n == -(2**31):
                raise InferenceFailedError("text too long to tokenize")
            capacity = -n

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (special tokens render as nothing)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        value = buf.raw[:n]
        self._pieces[token] = value
        return value

    def token_text(self, token: int) -> str:
        """The vocabulary's text for a token (as stored, special tokens included)."""
        raw = llama_cpp.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", "replace") if raw else ""

    def is_eog(self, token: int) -> bool:
        """True for end-of-generation tokens (EOS, EOT, ...)."""
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def end_of_generation_tokens(self) -> list[int]:
        """Every token llama.cpp treats as end of generation (computed once)."""
        if self._eog is None:
            self._eog = [t for t in range(self.n_vocab) if self.is_eog(t)]
        return self._eog

    def is_text(self, token: int) -> bool:
        """True for tokens of ordinary text or raw bytes (not control, unused or user-defined)."""
        attr = int(llama_cpp.llama_vocab_get_attr(self.vocab, token))
        return bool(attr & (llama_cpp.LLAMA_TOKEN_ATTR_NORMAL | llama_cpp.LLAMA_TOKEN_ATTR_BYTE))

    def is_control(self, token: int) -> bool:
        """True for control tokens (never part of a completion's text)."""
        return bool(llama_cpp.llama_vocab_is_control(self.vocab, token))

    def close(self) -> None:
        """Free the weights."""
        if self.ptr is not None:
            llama_cpp.llama_model_free(self.ptr)
            self.ptr = None


@dataclass(frozen=True)
class ContextConfig:
    """Context settings chosen for interactive code completion."""

    n_ctx: int  # KV cells in all; with "per_slot", n_ctx / n_seq_max for each slot
    n_batch: int = 512
    n_ubatch: int = 512
    n_seq_max: int = 4
    n_threads: int | None = None
    flash_attn: str = "auto"
    # "per_slot": a stream of n_ctx / n_seq_max cells for each slot, so a
    # decode attends over its own slot's cells only; "shared": one KV cache for
    # every slot (a slot may use all of it and share another's cells).
    kv_cache: str = "per_slot"
    # Sliding-window layers (Gemma 3's): True keeps a cache as large as the
    # slot's, so any cached prefix survives and cells can be shifted; False
    # keeps the window plus a micro-batch (llama-server's default), cheaper to
    # attend over, but the cells before the window are overwritten.
    swa_full: bool = True


def context_params(config: ContextConfig) -> Any:
    """llama.cpp context parameters for interactive code completion.

    Explicit context size; a physical batch (n_ubatch) of at least 512 so
    prompts are read in large chunks; flash attention as configured (the
    worker resolves "auto" with :func:`flash_attention`); one KV stream of
    ``n_ctx / n_seq_max`` cells per sequence (``kv_cache = "per_slot"``, as
    llama-server's ``-c`` and ``-np``), or one unified cache that any sequence
    can fill (``"shared"``); full-size sliding-window caches so a prompt prefix can be
    kept while its tail changes (otherwise SWA models such as Gemma 3 re-read
    every prompt); and logits for at most one row per sequence.

    Why a stream per sequence by default: llama.cpp attends over every used
    cell of a stream, masked, so in a unified cache each decode pays for the
    other slots' prompts, and on some models (Gemma 3 here) their mere
    presence changes a sequence's logits far beyond rounding (greedy tokens
    differ; a stream of its own gives bit-identical logits).
    """
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = config.n_ctx
    params.n_batch = config.n_batch
    params.n_ubatch = min(config.n_ubatch, config.n_batch)
    params.n_seq_max = config.n_seq_max
    params.n_outputs_max = config.n_seq_max
    threads = config.n_threads or os.cpu_count() or 1
    params.n_threads = threads
    params.n_threads_batch = threads
    params.flash_attn_type = {
        "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
        "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
        "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
    }[config.flash_attn]
    params.kv_unified = config.kv_cache == "shared"
    params.swa_full = config.swa_full
    params.no_perf = True
    return params


def model_params(n_gpu_layers: int, use_mmap: bool) -> Any:
    """llama.cpp model parameters: -1 offloads every layer when a GPU backend exists."""
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = n_gpu_layers if n_gpu_layers >= 0 else 2**31 - 1
    params.load_mode = (
        llama_cpp.LLAMA_LOAD_MODE_MMAP if use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
    )
    return params


class LlamaContext:
    """A llama.cpp context: the KV cache shared by up to ``n_seq_max`` sequences."""

    def __init__(self, model: LlamaModel, config: ContextConfig) -> None:
        params = context_params(config)
        ctx = llama_cpp.llama_init_from_model(model.ptr, params)
        if not ctx:
            raise ModelLoadFailedError(
                "llama.cpp could not create a context (not enough memory for the KV cache?)",
                {"n_ctx": config.n_ctx},
            )
        self.ptr = ctx
        self.model = model
        self.config = config
        self.n_ctx = int(llama_cpp.llama_n_ctx(ctx))
        # The cells one sequence can hold: all of them in a unified cache.
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(ctx))
        self.unified = bool(params.kv_unified)
        self.n_batch = int(llama_cpp.llama_n_batch(ctx))
        self.memory = llama_cpp.llama_get_memory(ctx)
        # Whether cached cells can move to other positions (llama.cpp re-rotates
        # their keys): not for recurrent state, some architectures, or
        # sliding-window caches smaller than the context (hence swa_full).
        self.can_shift = bool(llama_cpp.llama_memory_can_shift(self.memory))
        # The window of the sliding-window layers where their cache is smaller
        # than the context (0: every cached cell stays until it is removed).
        n_swa = int(llama_cpp.llama_model_n_swa(model.ptr))
        self.n_swa = 0 if params.swa_full else n_swa
        self.batch = TokenBatch(self.n_batch)

    def decode(self) -> None:
        """Run the filled batch; raise on failure."""
        status = llama_cpp.llama_decode(self.ptr, self.batch.struct)
        if status != 0:
            raise InferenceFailedError(
                f"llama_decode failed with status {status}", {"status": int(status)}
            )

    def logits(self, index: int) -> npt.NDArray[np.float32]:
        """Logits of the batch row ``index`` (a view, valid until the next decode)."""
        ptr = llama_cpp.llama_get_logits_ith(self.ptr, index)
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,))

    def seq_remove(self, seq_id: int, start: int, end: int = -1) -> bool:
        """Drop cached positions [start, end) of a sequence; False if impossible."""
        return bool(llama_cpp.llama_memory_seq_rm(self.memory, seq_id, start, end))

    def holds_prefix(self, seq_id: int, length: int) -> bool:
        """Whether the sequence's cache can serve its first ``length`` positions.

        A small sliding-window cache overwrites cells older than its window as
        the sequence grows, so a prefix is usable only where the cells the next
        position attends to are still there (llama-server's test, before it
        reads a prompt again).
        """
        if length <= 0 or self.n_swa <= 0:
            return True
        oldest = int(llama_cpp.llama_memory_seq_pos_min(self.memory, seq_id))
        return 0 <= oldest <= max(0, length - self.n_swa - 1)

    def seq_shift(self, seq_id: int, start: int, end: int, delta: int) -> None:
        """Move cached positions [start, end) of a sequence by ``delta`` (needs can_shift)."""
        llama_cpp.llama_memory_seq_add(self.memory, seq_id, start, end, delta)

    def seq_copy(self, src: int, dst: int, end: int) -> None:
        """Give ``dst`` the cached positions [0, end) of ``src`` (no recompute).

        In a unified cache the cells are shared. Across streams llama.cpp
        copies only whole streams, so ``src``'s stream is copied and the
        positions from ``end`` on are dropped again.
        """
        if self.unified:
            llama_cpp.llama_memory_seq_cp(self.memory, src, dst, 0, end)
            return
        llama_cpp.llama_memory_seq_cp(self.memory, src, dst, -1, -1)
        llama_cpp.llama_memory_seq_rm(self.memory, dst, end, -1)

    def close(self) -> None:
        """Free the context and its KV cache."""
        if self.ptr is not None:
            llama_cpp.llama_free(self.ptr)
            self.ptr = None


class TokenBatch:
    """A ``llama_batch`` backed by numpy arrays, filled without per-field ctypes calls."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.tokens = np.zeros(capacity, dtype=np.int32)
        self.positions = np.zeros(capacity, dtype=np.int32)
        self.n_seq_ids = np.ones(capacity, dtype=np.int32)
        self.seq_ids = np.zeros(capacity, dtype=np.int32)
        self.want_logits = np.zeros(capacity, dtype=np.int8)
        int32_p = ctypes.POINTER(ctypes.c_int32)
        base = self.seq_ids.ctypes.data
        self._seq_rows = (int32_p * capacity)(
            *[ctypes.cast(base + 4 * i, int32_p) for i in range(capacity)]
        )
        self.struct = llama_cpp.llama_batch()
        # The struct only borrows these arrays (this object keeps them alive);
        # llama_batch_init/free are not used, so nothing is freed twice.
        fields = {
            "token": self.tokens.ctypes.data_as(int32_p),
            "embd": ctypes.POINTER(ctypes.c_float)(),
            "pos": self.positions.ctypes.data_as(int32_p),
            "n_seq_id": self.n_seq_ids.ctypes.data_as(int32_p),
            "seq_id": ctypes.cast(self._seq_rows, ctypes.POINTER(int32_p)),
            "logits": self.want_logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        }
        for name, value in fields.items():
            setattr(self.struct, name, value)
        self.size = 0

    def clear(self) -> None:
        """Empty the batch."""
        self.size = 0
        self.struct.n_tokens = 0

    def add(self, tokens: list[int], start_pos: int, seq_id: int, logits_last: bool) -> int:
        """Append tokens of one sequence; returns the row of the last one."""
        n = len(tokens)
        end = self.size + n
        self.tokens[self.size : end] = tokens
        self.positions[self.size : end] = np.arange(start_pos, start_pos + n, dtype=np.int32)
        self.seq_ids[self.size : end] = seq_id
        self.want_logits[self.size : end] = 0
        if logits_last:
            self.want_logits[end - 1] = 1
        self.size = end
        self.struct.n_tokens = end
        return end - 1

    @property
    def free(self) -> int:
        """Rows still available."""
        return self.capacity - self.size


class Sampler:
    """Picks each next token of one sequence: a llama.cpp sampler chain, or argmax.

    Greedy decoding without penalties is an argmax over the row's logits, done
    here with numpy: ``llama_sampler_sample`` first copies the whole row into
    a candidate array (id, logit, probability for every token), which with
    Gemma's 262,144-token vocabulary costs more than the argmax itself, on
    every generated token. Ties go to the lowest token id, as llama.cpp's
    greedy sampler breaks them.
    """

    def __init__(
        self,
        params: SamplingParams,
        seed: int,
        n_vocab: int,
        banned: Sequence[int] = (),
    ) -> None:
        self.ptr: Any = None
        penalties = (
            params.frequency_penalty != 0.0
            or params.presence_penalty != 0.0
            or params.repeat_penalty != 1.0
        )
        # argmax: the banned ids (or None), masked out for the pick only.
        self._argmax = params.temperature <= 0.0 and not penalties
        self._banned = np.array(sorted(set(banned)), dtype=np.int64) if banned else None
        if self._argmax:
            return
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if banned:
            biases = (llama_cpp.llama_logit_bias * len(banned))(
                *[llama_cpp.llama_logit_bias(token, float("-inf")) for token in banned]
            )
            add(chain, llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(banned), biases))
        if penalties:
            add(
                chain,
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab,
                    max(params.max_tokens, 64),
                    params.repeat_penalty,
                    params.frequency_penalty,
                    params.presence_penalty,
                ),
            )
        if params.temperature <= 0.0:
            add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                add(chain, llama_cpp.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0.0:
                add(chain, llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
            add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
            add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        self.ptr = chain

    @property
    def picks_the_raw_argmax(self) -> bool:
        """True when every pick is the argmax of the unmodified row (its logit is the max)."""
        return self._argmax and self._banned is None

    def sample(self, ctx: LlamaContext, row: int) -> int:
        """Pick the next token from batch row ``row`` (and record it for penalties)."""
        if not self._argmax:
            return int(llama_cpp.llama_sampler_sample(self.ptr, ctx.ptr, row))
        return self.argmax(ctx.logits(row))

    def sample_among(self, ctx: LlamaContext, row: int, allowed: npt.NDArray[np.int64]) -> int:
        """Pick the next token from batch row ``row``, among the ``allowed`` ids only.

        Token healing's first pick. Greedy takes the best allowed logit; a
        sampler chain sees the row with every other token at -inf (the row
        is put back afterwards: the log-probability reads it).
        """
        logits = ctx.logits(row)
        if self._argmax:
            among = logits[allowed]
            if self._banned is not None:
                among[np.isin(allowed, self._banned)] = -np.inf
            return int(allowed[int(among.argmax())])
        saved = logits.copy()
        logits.fill(-np.inf)
        logits[allowed] = saved[allowed]
        try:
            return int(llama_cpp.llama_sampler_sample(self.ptr, ctx.ptr, row))
        finally:
            logits[:] = saved

    def argmax(self, logits: npt.NDArray[np.float32]) -> int:
        """The greedy pick from one row of logits, banned tokens left out."""
        banned = self._banned
        if banned is None:
            return int(logits.argmax())
        # The row is llama.cpp's buffer: mask in place for the pick, then put
        # the logits back (the log-probability reads the raw row).
        saved = logits[banned]
        logits[banned] = -np.inf
        try:
            return int(logits.argmax())
        finally:
            logits[banned] = saved

    def close(self) -> None:
        """Free the chain (and the samplers it owns)."""
        if self.ptr is not None:
            llama_cpp.llama_sampler_free(self.ptr)
            self.ptr = None


class LogprobMeter:
    """log p(token) under the model's raw distribution (temperature 1).

    The softmax normalizer is summed over the logits within ``CUTOFF`` nats
    of the largest only. Each token left out weighs less than e^-20 of the
    top one, so with Gemma's 262,144 tokens the log-probability is off by
    at most 262,144 * e^-20 = 5.4e-4 nats (measured on Gemma's own rows:
    2.3e-5), and the exponentials, the costly part, are taken over a few
    thousand tokens instead of the whole vocabulary: 0.32 ms a token
    instead of 0.79 on Gemma, once per generated token.
    """

    CUTOFF = 20.0

    def __init__(self, n_vocab: int) -> None:
        self._mask = np.empty(n_vocab, dtype=np.bool_)

    def __call__(
        self, logits: npt.NDArray[np.float32], token: int, is_argmax: bool = False
    ) -> float:
        """Log-probability of ``token`` given the logits of one row.

        ``is_argmax``: the token is known to have the row's largest logit,
        which saves a pass over the vocabulary.
        """
        peak = float(logits[token]) if is_argmax else float(logits.max())
        np.greater_equal(logits, peak - self.CUTOFF, out=self._mask)
        near = logits[self._mask]  # a copy: the row itself stays untouched
        near -= peak
        np.exp(near, out=near)
        total = float(near.sum(dtype=np.float64))
        if not total > 0.0:  # NaN logits leave nothing to sum
            return -1e9
        value = float(logits[token]) - peak - math.log(total)
        return value if math.isfinite(value) else -1e9
