"""Rendering a model's own chat template (from its GGUF) in a Jinja sandbox.

Templates come only from model files, never from clients. They still run in
an immutable sandbox: a template cannot reach Python internals or mutate the
messages it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import InferenceFailedError


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation."""

    role: str
    content: str


def _raise_exception(message: str) -> None:
    # Hugging Face templates call raise_exception() to reject bad conversations.
    raise TemplateError(message)


def render_chat(
    template: str,
    messages: Sequence[ChatMessage],
    *,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """The prompt text for ``messages``, ending where the assistant's reply starts."""
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now(UTC).strftime(fmt)
    try:
        compiled = environment.from_string(template)
        return compiled.render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except TemplateError as exc:
        raise InferenceFailedError(f"the model's chat template failed: {exc}") from exc
