"""The code-completion pipeline: request -> prompt -> generation -> clean text.

Context comes from tree-sitter (imports, the enclosing scope's signature,
definitions of nearby identifiers), the prompt from :mod:`engine.completion.prompts`,
the generation from a model worker, and the final text from
:mod:`engine.completion.postprocess`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from engine.completion.postprocess import postprocess_completion
from engine.completion.prompts import ContextBlock, FimPrompt, check_cursor_line, split_at_cursor
from engine.completion.scaffolding import THIS_FILE, header_start, snippet_header
from engine.errors import InvalidRequestError
from engine.runtime.messages import BlockStop, GenerationResult, Priority, SamplingParams
from engine.syntax import CompletionContext


@dataclass(frozen=True)
class CompletionRequest:
    """A completion at a cursor; offsets are Python string indexes."""

    code: str
    cursor: int
    language: str | None = None
    file_path: str | None = None
    model_id: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    priority: Priority = Priority.NORMAL
    # Requests sharing a key supersede each other (one editor document).
    document_key: str | None = None
    stream: bool = False
    alternatives: int = 0
    timeout_seconds: float | None = None
    use_cache: bool = False
    # False: answer MODEL_LOADING while another request's load is under way.
    wait_for_load: bool = True
    # Who asked (for events and ownership); None for the local editor.
    caller: str | None = None


@dataclass(frozen=True)
class Completion:
    """A post-processed completion and the range of the document it replaces."""

    text: str
    raw_text: str
    replace_start: int
    replace_end: int
    confidence: float
    generation: GenerationResult
    temperature: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class CompletionResult:
    """The answer to a completion request."""

    model_id: str
    completion: Completion
    alternatives: list[Completion]
    processing_time_ms: float
    context_snippets: int
    cached: bool = False


def clamp_cursor(code: str, cursor: int | None) -> int:
    """Validate a cursor offset: negative is an error, past the end is clamped."""
    if cursor is None:
        return len(code)
    if cursor < 0:
        raise InvalidRequestError(
            "context.cursor_position", "cursor_position must be >= 0", value=cursor
        )
    return min(cursor, len(code))


def format_snippets(context: CompletionContext | None, language: str | None) -> list[ContextBlock]:
    """Render context snippets as comment-headed code blocks, most useful first."""
    if context is None:
        return []
    blocks: list[ContextBlock] = []
    if context.imports:
        code = "\n".join(s.text for s in context.imports)
        blocks.append(ContextBlock(code + "\n", code))
    # Definitions, then recently viewed or edited chunks: the ring comes last
    # and in a stable order, so a new chunk only changes the end of the context.
    for snippet in (*context.definitions, *context.chunks):
        here = snippet.source == "this"
        header = snippet_header(language, THIS_FILE if here else snippet.source)
        body = snippet.text.rstrip()
        path = None if here else snippet.source
        blocks.append(ContextBlock(f"{header}\n{body}\n", body, path))
    return blocks


def drop_context_headers(text: str, language: str | None) -> str:
    """``text`` up to the first line that is a snippet header of :func:`format_snippets`.

    A model that continues the prompt's scaffolding (``// from this file:``
    above a short prefix, where the snippets are most of what it sees) is
    writing context, not the user's code: nothing from that line on is kept.
    """
    start = header_start(text, language)
    return text if start is None else text[:start]


def build_prompt(
    request: CompletionRequest,
    context: CompletionContext | None,
    budget_tokens: int,
) -> FimPrompt:
    """The FIM prompt for a completion request, context snippets included.

    Snippets from *this* document are already in the prefix window whenever
    the prefix fits; they matter when the window is cut, and for definitions
    that live in other open documents.
    """
    prefix, line_prefix, suffix = split_at_cursor(request.code, request.cursor)
    check_cursor_line(line_prefix, budget_tokens)  # here, before the worker tokenizes it
    return FimPrompt(
        prefix=prefix,
        line_prefix=line_prefix,
        suffix=suffix,
        snippets=tuple(format_snippets(context, request.language)),
        budget_tokens=budget_tokens,
        file_path=(context.file_label if context is not None else None) or request.file_path,
        repo_name=context.repo_name if context is not None else None,
    )


def block_stop(request: CompletionRequest) -> BlockStop:
    """The end-of-block stop rule for a request."""
    return BlockStop(request.code, request.cursor, request.language)


def finish_completion(
    request: CompletionRequest,
    generation: GenerationResult,
    params: SamplingParams | None = None,
) -> Completion:
    """Post-process a raw generation into the text to insert and its range."""
    used = params or request.params
    # A prompt without the suffix leaves the model blind to where the
    # document goes on: postprocessing then judges where its answer ends.
    processed = postprocess_completion(
        request.code,
        request.cursor,
        drop_context_headers(generation.text, request.language),
        request.language,
        suffix_aware=generation.used_fim,
    )
    return Completion(
        text=processed.text,
        raw_text=generation.text,
        replace_start=processed.replace_start,
        replace_end=processed.replace_end,
        confidence=generation.confidence,
        generation=generation,
        temperature=used.temperature,
        seed=used.seed,
    )


def distinct(completions: Sequence[Completion], primary: Completion) -> list[Completion]:
    """Alternatives that differ from the primary completion and from each other."""
    seen = {primary.text.strip()}
    kept: list[Completion] = []
    for item in completions:
        key = item.text.strip()
        if key and key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


@dataclass(frozen=True)
class _Shown:
    """The last suggestion shown for a document, and where."""

    before: str  # the document up to the cursor when it was shown
    after: str  # the document from the cursor on
    result: CompletionResult


class TypeThroughCache:
    """Serves the rest of the last suggestion while the user types its first characters.

    When the document is the old one with exactly the suggestion's first
    characters inserted at the old cursor, the remainder is still the model's
    answer: it is returned at once, without a new inference.
    """

    def __init__(self, max_documents: int = 64) -> None:
        self._shown: dict[str, _Shown] = {}
        self._max = max_documents

    def remember(self, key: str, request: CompletionRequest, result: CompletionResult) -> None:
        """Record what was shown for a document."""
        if not result.completion.text:
            self._shown.pop(key, None)
            return
        self._shown.pop(key, None)
        self._shown[key] = _Shown(
            request.code[: request.cursor], request.code[request.cursor :], result
        )
        while len(self._shown) > self._max:
            del self._shown[next(iter(self._shown))]

    def forget(self, key: str) -> None:
        """Drop a document's entry (closed, or the suggestion was rejected)."""
        self._shown.pop(key, None)

    def lookup(self, key: str, request: CompletionRequest) -> CompletionResult | None:
        """The rest of the shown suggestion if the user typed into it, else None."""
        shown = self._shown.get(key)
        if shown is None:
            return None
        before, after = request.code[: request.cursor], request.code[request.cursor :]
        if after != shown.after or not before.startswith(shown.before):
            return None
        typed = before[len(shown.before) :]
        old = shown.result.completion
        if not typed or not old.text.startswith(typed) or len(typed) >= len(old.text):
            return None
        shift = len(typed)
        rest = replace(
            old,
            text=old.text[shift:],
            raw_text=old.raw_text[shift:] if old.raw_text.startswith(typed) else old.raw_text,
            replace_start=old.replace_start + shift,
            replace_end=old.replace_end + shift,
        )
        return replace(shown.result, completion=rest, alternatives=[], cached=True)
