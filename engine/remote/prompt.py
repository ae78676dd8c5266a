"""Completion prompts for a remote engine, as text.

Here there is no tokenizer of the model's own, so the windows are measured in
characters (a conservative :data:`CHARS_PER_TOKEN` per token of the prompt
budget); otherwise they follow the local rules of
:func:`engine.completion.prompts.build_fim_prompt`: the cursor line has a
fixed reserve, the suffix up to a quarter of the rest, and the prefix window
starts on an anchor line (a multiple of ``WINDOW_STEP_LINES`` from the top
that starts at column 0), so typing changes only the prompt's tail and the
engine's prompt cache (llama-server ``cache_prompt`` with ``--cache-reuse``,
vLLM prefix caching) serves the rest.

:func:`fim_text` is the whole prompt for an OpenAI-compatible engine, built
from the family's FIM markers (never ``suffix``: llama-server rejects it,
vLLM answers 400, llama-cpp-python's server builds a broken prompt);
llama-server gets the windows as ``/infill`` fields instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.completion.prompts import (
    FAMILY_MARKERS,
    FAMILY_ORDER,
    WINDOW_STEP_LINES,
    ContextBlock,
    FimPrompt,
    check_cursor_line,
)

# Code runs about 3-4 characters per token in the common tokenizers: 3 keeps
# a window inside its token budget for all but the densest text.
CHARS_PER_TOKEN = 3


@dataclass(frozen=True)
class TextWindows:
    """The parts of a completion prompt that fit the budget."""

    prefix: str  # up to the start of the cursor line
    line_prefix: str  # the cursor line up to the cursor
    suffix: str
    snippets: tuple[ContextBlock, ...]


def _head(text: str, limit: int) -> str:
    """The longest line-aligned head of ``text`` of at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut + 1] if cut >= 0 else ""


def _anchored_tail(text: str, limit: int) -> str:
    """A line-aligned tail of at most ``limit`` characters that starts on an anchor line."""
    if len(text) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    total = starts[-1]

    def fits(index: int) -> bool:
        return total - starts[index] <= limit

    first = next((i for i in range(len(lines) + 1) if fits(i)), len(lines))
    step = -(-first // WINDOW_STEP_LINES) * WINDOW_STEP_LINES
    for candidate in range(step, min(step + WINDOW_STEP_LINES, len(lines))):
        if lines[candidate][:1] not in ("", " ", "\t", "\n", "\r"):
            return text[starts[candidate] :]
    if step < len(lines):
        return text[starts[step] :]
    return text[starts[first] :]  # the last step alone is too long: line by line


def fit_windows(prompt: FimPrompt, *, use_suffix: bool) -> TextWindows:
    """Choose the prefix, suffix and snippets that fit the prompt's budget."""
    check_cursor_line(prompt.line_prefix, prompt.budget_tokens)
    budget = prompt.budget_tokens * CHARS_PER_TOKEN
    reserve = max(budget // 8, len(prompt.line_prefix))
    window = max(0, budget - reserve)
    suffix = _head(prompt.suffix, window // 4) if use_suffix else ""
    prefix_budget = window - len(suffix)
    prefix = _anchored_tail(prompt.prefix, prefix_budget)
    spare = max(prefix_budget // 4, prefix_budget - len(prefix))
    chosen: list[ContextBlock] = []
    for snippet in prompt.snippets:
        if snippet.code and (snippet.code in prefix or snippet.code in suffix):
            continue
        if len(snippet.rendered) > spare:
            break
        chosen.append(snippet)
        spare -= len(snippet.rendered)
    used = sum(len(s.rendered) for s in chosen)
    if len(prefix) + used > prefix_budget:
        prefix = _anchored_tail(prompt.prefix, prefix_budget - used)
    return TextWindows(prefix, prompt.line_prefix, suffix, tuple(chosen))


def fim_text(prompt: FimPrompt, family: str) -> tuple[str, int, bool]:
    """The prompt text for ``family`` (prefix only for ``none``).

    Returns the text, the number of snippets in it and whether it is a FIM
    prompt. The order is the local one: snippets and the prefix window, the
    suffix, then the middle marker followed by the cursor line, which is the
    only part that typing changes.
    """
    markers = FAMILY_MARKERS.get(family)
    windows = fit_windows(prompt, use_suffix=markers is not None)
    context = "".join(s.rendered for s in windows.snippets)
    if markers is None:
        return context + windows.prefix + windows.line_prefix, len(windows.snippets), False
    pre, suf, mid = markers
    if FAMILY_ORDER.get(family, "psm") == "spm":
        body = f"{suf}{windows.suffix}{pre}{context}{windows.prefix}"
    else:
        body = f"{pre}{context}{windows.prefix}{suf}{windows.suffix}"
    return f"{body}{mid}{windows.line_prefix}", len(windows.snippets), True
