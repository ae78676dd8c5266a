"""Fill-in-the-middle prompt construction from a model's own FIM token ids.

llama-cpp-python's ``create_completion(suffix=...)`` hard-codes FIM ids to 0,
so prompts are assembled here at the token level: special tokens are inserted
by id and only user text goes through the tokenizer.

Prompt order is chosen for KV-cache reuse. While the user types, only the text
between the start of the cursor line and the cursor changes, so that part goes
last (after the "middle" token, as the beginning of the middle, the way
llama.vim does it). Everything before it — snippets, the prefix up to the
cursor line, the suffix — stays byte-identical between keystrokes and is served
from the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from engine.errors import ContextLengthExceededError

FimOrder = Literal["psm", "spm"]
Tokenize = Callable[[str], list[int]]

# Token texts that identify a FIM family in a vocabulary; used when the
# catalog says ``fim = "auto"`` and to sanity-check an explicit family.
FAMILY_MARKERS: dict[str, tuple[str, str, str]] = {
    "starcoder": ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    "codellama": ("<PRE>", "<SUF>", "<MID>"),
    "deepseek": ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    "qwen": ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    "codestral": ("[PREFIX]", "[SUFFIX]", "[MIDDLE]"),
}

# Codestral puts the suffix first (SPM); the others use prefix-suffix-middle.
FAMILY_ORDER: dict[str, FimOrder] = {"codestral": "spm"}


@dataclass(frozen=True)
class FimTokens:
    """The FIM special-token ids of one model (``None`` where absent)."""

    prefix: int | None
    suffix: int | None
    middle: int | None
    pad: int | None = None
    repo: int | None = None
    file_sep: int | None = None
    eot: int | None = None

    @property
    def supports_fim(self) -> bool:
        """True when the model has the three tokens a FIM prompt needs."""
        return self.prefix is not None and self.suffix is not None and self.middle is not None


def detect_family(token_text: Callable[[int], str], fim: FimTokens) -> str:
    """Name the FIM family from the text of the model's FIM prefix token."""
    if fim.prefix is None:
        return "none"
    text = token_text(fim.prefix)
    for family, markers in FAMILY_MARKERS.items():
        if text == markers[0]:
            return family
    # An unknown spelling still has working ids; PSM is the common order.
    return "generic"


@dataclass(frozen=True)
class ContextBlock:
    """A context snippet: ``rendered`` goes into the prompt; ``code`` is the raw source.

    A block whose code is already inside the prompt's prefix or suffix window
    is left out: repeating it would only spend budget.
    """

    rendered: str
    code: str
    # The file the code comes from; None for this file's own code. Models with
    # repository-level FIM tokens see such blocks as files of the repository.
    path: str | None = None


@dataclass(frozen=True)
class FimPrompt:
    """Text parts of a completion prompt; the worker turns them into tokens.

    ``prefix`` ends at the start of the cursor line; ``line_prefix`` is the cursor
    line up to the cursor. ``snippets`` are context blocks (imports, definitions)
    placed first, most important first; they are dropped from the end when the
    token budget is tight.
    """

    prefix: str
    line_prefix: str
    suffix: str
    snippets: Sequence[ContextBlock] = field(default_factory=tuple)
    budget_tokens: int = 1536
    file_path: str | None = None
    repo_name: str | None = None


@dataclass(frozen=True)
class TextPrompt:
    """A plain prompt (generation, chat after templating, naming prompts).

    With ``parse_special`` the text of special tokens (a chat template's turn
    markers) is read as those tokens, except inside the ``literal`` spans
    (``(start, end)`` offsets into ``text``, in order): what a user wrote is
    plain text there, so it cannot forge a turn or a control token.
    """

    text: str
    add_bos: bool = True
    parse_special: bool = False
    literal: tuple[tuple[int, int], ...] = ()

    def pieces(self) -> list[tuple[str, bool]]:
        """The text in order, each piece with whether special tokens are parsed in it."""
        if not self.parse_special or not self.literal:
            return [(self.text, self.parse_special)]
        pieces: list[tuple[str, bool]] = []
        at = 0
        for start, end in self.literal:
            if start > at:
                pieces.append((self.text[at:start], True))
            if end > start:
                pieces.append((self.text[start:end], False))
            at = max(at, end)
        if at < len(self.text):
            pieces.append((self.text[at:], True))
        return pieces


@dataclass(frozen=True)
class BuiltPrompt:
    """Token ids ready for decoding, with what was kept and dropped."""

    tokens: list[int]
    used_fim: bool
    snippets_used: int
    prefix_tokens: int
    suffix_tokens: int
    # Token healing: the bytes of the last prompt token, taken out of
    # ``tokens``; the first generated token must start with them, and they
    # are cut from what it writes (the document already holds them).
    healed: bytes = b""


# Few tokens are longer than this many characters: text longer than its
# token budget times this is refused (or cut) before it is tokenized at all,
# since llama.cpp's tokenizer can be quadratic on long runs of some inputs.
MAX_CHARS_PER_TOKEN = 8

# The prefix window starts on a line whose number is a multiple of this, so
# that it stays put while the user types and moves in large steps (one chunk
# at a time) when the cursor outgrows it: a moved window invalidates the
# whole cached prompt, a keystroke only its tail.
WINDOW_STEP_LINES = 32


def _head_lines(tokenize: Tokenize, text: str, budget: int) -> tuple[str, list[int]]:
    """The longest line-aligned head of ``text`` whose tokens fit ``budget``."""
    tokens = tokenize(text)
    if len(tokens) <= budget:
        return text, tokens
    lines = text.splitlines(keepends=True)
    # Binary search on the number of lines kept: tokenization is the
    # expensive part, so keep the number of calls logarithmic.
    low, high = 0, len(lines)
    best: tuple[str, list[int]] = ("", [])
    while low <= high:
        mid = (low + high) // 2
        candidate = "".join(lines[:mid])
        cand_tokens = tokenize(candidate) if candidate else []
        if len(cand_tokens) <= budget:
            best = (candidate, cand_tokens)
            low = mid + 1
        else:
            high = mid - 1
    return best


def _anchor_line(lines: list[str], index: int) -> int:
    """The first line from ``index`` on, within its step, that starts at column 0 with code.

    When the window moves down, the lines that stay in it keep their cached
    KV (shifted into place), but only if they tokenize as they did inside
    the longer text: a window that began on a blank or indented line would
    start with a whitespace token that the old prompt had merged with the
    newline before it, and that one differing token would cost the whole
    window. No tokenizer merges a newline into the letter after it.
    """
    for candidate in range(index, min(index + WINDOW_STEP_LINES, len(lines))):
        line = lines[candidate]
        if line[:1] not in ("", " ", "\t", "\n", "\r"):
            return candidate
    return index


def _anchored_tail(
    tokenize: Tokenize, text: str, budget: int, char_cap: int
) -> tuple[str, list[int]]:
    """A line-aligned tail of ``text`` that fits ``budget``, starting on an anchor line.

    The start is the first line numbered a multiple of WINDOW_STEP_LINES (from
    the top of the file, so it does not depend on where the cursor is) whose
    tail fits: a function of the text before the cursor line only, which
    typing on that line does not change. When a whole step of lines does not
    fit (very long lines), the start falls back to single lines inside the
    last step, which is still a function of the same text.
    """
    lines = text.splitlines(keepends=True)
    # Few tokens are longer than 8 characters: the character cap bounds the
    # text tokenized for a huge document, and it is rounded to a step too.
    chars = 0
    lowest = len(lines)
    while lowest > 0 and chars + len(lines[lowest - 1]) <= char_cap:
        lowest -= 1
        chars += len(lines[lowest])

    def tail(start: int) -> tuple[str, list[int]]:
        candidate = "".join(lines[start:])
        return candidate, (tokenize(candidate) if candidate else [])

    first_step = -(-lowest // WINDOW_STEP_LINES)
    last_step = len(lines) // WINDOW_STEP_LINES
    step_start = len(lines)  # the anchor line of the best start found
    best: tuple[str, list[int]] = ("", [])
    low, high = first_step, last_step
    while low <= high:  # the smallest anchored start that fits
        mid = (low + high) // 2
        start = _anchor_line(lines, mid * WINDOW_STEP_LINES)
        candidate = tail(start)
        if len(candidate[1]) <= budget:
            step_start, best = start, candidate
            high = mid - 1
        else:
            low = mid + 1
    if len(best[1]) * 2 >= budget or step_start == lowest:
        return best
    # Less than half the budget used: one step of lines is too big, so refine
    # line by line inside the step before the anchor.
    low, high = max(lowest, step_start - WINDOW_STEP_LINES), step_start
    while low <= high:
        mid = (low + high) // 2
        candidate = tail(mid)
        if len(candidate[1]) <= budget:
            best = candidate
            high = mid - 1
        else:
            low = mid + 1
    return best


def build_fim_prompt(
    prompt: FimPrompt,
    fim: FimTokens,
    tokenize: Tokenize,
    *,
    bos: int | None,
    order: FimOrder = "psm",
) -> BuiltPrompt:
    """Assemble FIM token ids, or a prefix-only prompt when the model has no FIM.

    The budget is split so that typing does not move the windows: the cursor
    line has a fixed reserve (an eighth of the budget; a longer line takes
    the excess from the prefix), the suffix up to a quarter of the rest, then
    snippets and the prefix share what the suffix leaves (snippets up to a
    quarter of it, or more where the prefix is short).
    The prefix window starts on an anchor line (see :func:`_anchored_tail`).
    """
    check_cursor_line(prompt.line_prefix, prompt.budget_tokens)
    line_tokens = tokenize(prompt.line_prefix) if prompt.line_prefix else []
    budget = prompt.budget_tokens - 4
    if len(line_tokens) > budget:
        raise ContextLengthExceededError(
            "context.code",
            "the line at the cursor alone exceeds the prompt budget",
            budget_tokens=prompt.budget_tokens,
        )
    line_reserve = prompt.budget_tokens // 8
    window_budget = budget - max(line_reserve, len(line_tokens))
    char_cap = max(256, prompt.budget_tokens * MAX_CHARS_PER_TOKEN)
    use_fim = fim.supports_fim
    suffix_text, suffix_tokens = (
        _head_lines(tokenize, prompt.suffix[:char_cap], window_budget // 4) if use_fim else ("", [])
    )
    prefix_budget = window_budget - len(suffix_tokens)
    prefix_text, prefix_tokens = _anchored_tail(tokenize, prompt.prefix, prefix_budget, char_cap)
    # Snippets may take what the prefix leaves, and at least a quarter of its
    # budget: in a long file the prefix alone would fill it, and definitions
    # from other files would never be seen. They are chosen against the
    # window the prefix would have alone, and the prefix then gets the rest,
    # so that neither depends on how far the window has grown since it last
    # moved: typing new lines changes the snippets only when the window
    # moves a step, and the cached prompt keeps its head (snippets come
    # first) while the window's lines are shifted into place.
    spare = max(prefix_budget // 4, prefix_budget - len(prefix_tokens))
    # Repository-level FIM (Qwen2.5-Coder style): other files' code goes
    # before the current file as `<|file_sep|>path\ncode` sections, under a
    # `<|repo_name|>` header, instead of comment-headed snippets in the prefix.
    # Only when there are other files to show: a prompt without them keeps the plain form.
    repo_form = (
        use_fim
        and order == "psm"
        and fim.repo is not None
        and fim.file_sep is not None
        and any(s.path is not None for s in prompt.snippets)
    )
    repo_header: list[int] = []  # <|repo_name|>name
    file_header: list[int] = []  # <|file_sep|>the current file's path
    if repo_form:
        assert fim.repo is not None and fim.file_sep is not None
        repo_header = [fim.repo, *tokenize((prompt.repo_name or "repository") + "\n")]
        file_header = [fim.file_sep, *tokenize((prompt.file_path or "file") + "\n")]
        spare -= len(repo_header) + len(file_header)
    file_tokens: list[int] = []  # the repository's other files (repo form only)
    snippet_tokens: list[int] = []
    last_path: str | None = None
    used = 0
    # What the prompt shows of the document anyway: a snippet found in it
    # (a definition of this file inside the windows, or the very line being
    # typed, which a definition lookup finds half-written) would only repeat
    # it, and a half-written line shown as finished code misleads the model.
    shown = prefix_text + prompt.line_prefix
    for snippet in prompt.snippets:
        if snippet.code and (snippet.code in shown or snippet.code in suffix_text):
            continue
        as_file = repo_form and snippet.path is not None
        if as_file:
            assert fim.file_sep is not None and snippet.path is not None
            ids = (
                [fim.file_sep, *tokenize(snippet.path + "\n")] if snippet.path != last_path else []
            )
            ids += tokenize(snippet.code.rstrip("\n") + "\n")
        else:
            ids = tokenize(snippet.rendered)
        if len(ids) > spare:
            # A smaller snippet further down the list may still fit: the
            # budget goes to what fits, most useful first.
            continue
        if as_file:
            file_tokens.extend(ids)
            last_path = snippet.path
        else:
            snippet_tokens.extend(ids)
        spare -= len(ids)
        used += 1
    # The repository header and the other files (empty outside the repo
    # form) count against the prefix's share like snippets.
    context_used = len(repo_header) + len(file_header) + len(file_tokens) + len(snippet_tokens)
    if len(prefix_tokens) + context_used > prefix_budget:
        _, prefix_tokens = _anchored_tail(
            tokenize, prompt.prefix, max(0, prefix_budget - context_used), char_cap
        )

    head = [bos] if bos is not None else []
    if not use_fim:
        tokens = head + snippet_tokens + prefix_tokens + line_tokens
        return BuiltPrompt(tokens, False, used, len(prefix_tokens), 0)
    assert fim.prefix is not None and fim.suffix is not None and fim.middle is not None
    if order == "spm":
        body = [fim.suffix, *suffix_tokens, fim.prefix, *snippet_tokens, *prefix_tokens]
    else:
        body = [fim.prefix, *snippet_tokens, *prefix_tokens, fim.suffix, *suffix_tokens]
    if repo_form:
        # The repository's other files first, then the current file's name and FIM body.
        body = repo_header + file_tokens + file_header + body
    tokens = head + body + [fim.middle] + line_tokens
    return BuiltPrompt(tokens, True, used, len(prefix_tokens), len(suffix_tokens))


def check_cursor_line(line_prefix: str, budget_tokens: int) -> None:
    """Refuse a cursor line that cannot fit the budget, without tokenizing it."""
    limit = budget_tokens * MAX_CHARS_PER_TOKEN
    if len(line_prefix) > limit:
        raise ContextLengthExceededError(
            "context.code",
            f"the line at the cursor is {len(line_prefix)} characters long before the cursor; "
            f"at most {limit} fit the prompt budget",
            budget_tokens=budget_tokens,
        )


def split_at_cursor(code: str, cursor: int) -> tuple[str, str, str]:
    """Split code into (prefix up to the cursor line, cursor line head, suffix)."""
    line_start = code.rfind("\n", 0, cursor) + 1
    return code[:line_start], code[line_start:cursor], code[cursor:]
