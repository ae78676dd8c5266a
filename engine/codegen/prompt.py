"""Code generation from a natural-language prompt.

Chat models get their own chat template (from the GGUF, rendered in a
sandbox); completion (base) models get the request as a code comment after
the existing code, the way a programmer would write it. Markdown fences that
chat models like to add are stripped from the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.codegen.chat_template import ChatMessage, render_chat
from engine.completion.prompts import TextPrompt
from engine.runtime.messages import GenerationResult, Priority, SamplingParams
from engine.runtime.worker import ModelInfo
from engine.syntax import line_comment

_FENCE = re.compile(r"```[A-Za-z0-9_+\-.]*[ \t]*\n(.*?)(?:\n```|$)", re.DOTALL)


@dataclass(frozen=True)
class CodeGenRequest:
    """Generate code for ``prompt`` in ``language``, after ``existing_code``."""

    prompt: str
    language: str | None = None
    existing_code: str = ""
    model_id: str | None = None
    params: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=256))
    priority: Priority = Priority.NORMAL
    caller: str | None = None
    timeout_seconds: float | None = None
    wait_for_load: bool = True


@dataclass(frozen=True)
class CodeGenResult:
    """Generated code, with how it was prompted and measured figures."""

    model_id: str
    text: str
    confidence: float
    prompt_style: str  # "chat" or "comment"
    generation: GenerationResult
    processing_time_ms: float


def comment_block(text: str, language: str | None) -> str:
    """``text`` as line comments of ``language``."""
    marker = line_comment(language)
    return "\n".join(f"{marker} {line}".rstrip() for line in text.strip().splitlines())


def build_codegen_prompt(
    request: CodeGenRequest, info: ModelInfo, chat_model: bool
) -> tuple[TextPrompt, str]:
    """The prompt for a generation request and its style (``chat`` or ``comment``)."""
    if chat_model and info.chat_template:
        language = request.language or "the requested language"
        user = request.prompt.strip()
        if request.existing_code.strip():
            user += f"\n\nExisting code:\n```{request.language or ''}\n{request.existing_code}\n```"
        user = user.strip()  # as templates that trim their contents write it
        text = render_chat(
            info.chat_template,
            [
                ChatMessage(
                    "system",
                    f"You are a coding assistant. Answer with {language} code only, "
                    "in one fenced code block, without explanations.",
                ),
                ChatMessage("user", user),
            ],
            bos_token=info.bos_text,
            eos_token=info.eos_text,
        )
        # The template writes BOS itself when the model wants one. Its turn
        # markers are special tokens; the user's words are not, even where
        # they spell one (`<|im_start|>system` in a prompt or in a file).
        return TextPrompt(
            text, add_bos=False, parse_special=True, literal=_literal_span(text, user)
        ), "chat"
    head = request.existing_code.rstrip()
    comment = comment_block(request.prompt, request.language)
    text = f"{head}\n\n{comment}\n" if head else f"{comment}\n"
    return TextPrompt(text), "comment"


def _literal_span(rendered: str, content: str) -> tuple[tuple[int, int], ...]:
    """Where ``content`` stands in the rendered chat (the last place: after the system turn).

    A template that rewrote the content (none of the common ones do, beyond
    trimming it) leaves it nowhere to be found. Then, if the content spells
    something like a special token, the whole prompt is plain text: the turn
    markers are lost, which degrades the answer, but nothing the user wrote
    is read as a token. Otherwise nothing is marked.
    """
    start = rendered.rfind(content) if content else -1
    if start >= 0:
        return ((start, start + len(content)),)
    return ((0, len(rendered)),) if _looks_special(content) else ()


_SPECIAL_SPELLING = re.compile(r"<[|｜]?[A-Za-z_/][\w./-]*[|｜]?>|\[/?INST\]|<<SYS>>")


def _looks_special(text: str) -> bool:
    return _SPECIAL_SPELLING.search(text) is not None


def strip_fences(text: str) -> str:
    """The code inside the first fenced block, or the text itself without stray fences."""
    match = _FENCE.search(text)
    if match is not None:
        return match.group(1).strip("\n")
    return text.replace("```", "").strip("\n")
