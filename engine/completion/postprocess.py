"""Post-processing of raw model completions.

A pure function of (document text, cursor offset, raw completion, language):
no model, no I/O, no module-level mutable state, so that a peer's golden cases
(Tabby's, under ``shared/peers/tabby-postprocess-golden/``) can run against it.

The pipeline, in order:

1. cut at the first special token that slipped through detokenisation;
2. cut a model loop (a line or block of lines repeated back to back);
3. limit the scope: the current line when the cursor is mid-line, else the
   current block by indentation (Tabby's rules, see :func:`_limit_to_block`);
4. drop a closing line the suffix already has, and trailing lines that repeat
   the lines after the cursor;
5. trim trailing whitespace;
6. compute the range the completion replaces, so that brackets and quotes the
   editor auto-closed right after the cursor are covered instead of doubled;
7. when a tree-sitter grammar is installed and the parse is clean, stop at the
   end of the statement that owns the block the cursor is in.

:func:`should_stop` applies the cheap, string-based parts of the same rules to
a partial completion, so that the decode loop can stop at the end of a block.

Offsets are Python ``str`` indexes (code points). Documents with CRLF line
endings get completions with CRLF line endings.

What a language's comments, quotes, blocks and grammar are comes from
:mod:`engine.languages` (parsed languages, and those known only lexically);
this module keeps no language table of its own.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from types import MappingProxyType
from typing import Final, Literal

from tree_sitter import Language, Node, Parser

from engine import languages
from engine.completion.scaffolding import header_start
from engine.languages.base import LexicalRules
from engine.languages.lexical import PLAIN_TEXT

Scope = Literal["auto", "line", "block"]
"""``line``: keep the first line; ``block``: keep the current block; ``auto``: pick."""


@dataclass(frozen=True)
class PostProcessed:
    """A cleaned completion and the document range ``[replace_start, replace_end)`` it replaces.

    ``replace_start`` is the cursor. ``replace_end`` is the cursor, or past it when
    the completion also covers closing brackets or quotes that follow the cursor on
    its line. An empty ``text`` means: show nothing.
    """

    text: str
    replace_start: int
    replace_end: int

    def applied_to(self, document: str) -> str:
        """Return ``document`` with the completion applied."""
        return document[: self.replace_start] + self.text + document[self.replace_end :]


# --------------------------------------------------------------------------- special tokens

# Control tokens of the FIM families we serve (DESIGN.md, "The completion
# pipeline") and of common chat templates. Patterns are deliberately narrow so
# that ordinary code (F# `<| x |>`, Haskell `<|>`, `usage: <filename>`, an
# index `names[PREFIX]`) is not mistaken for a token. Bare `<eos>`/`<pad>`/`<unk>`
# are left out: they are common string literals in tokenizer code.
_SPECIAL_TOKEN: Final = re.compile(
    r"<\|[A-Za-z_][\w.\-]{0,63}\|>"  # <|endoftext|>, <|fim_middle|>, <|im_end|>, <|eot_id|>
    r"|<｜[^｜<>\r\n]{1,64}｜>"  # DeepSeek: <｜fim▁hole｜>, <｜end▁of▁sentence｜>
    r"|<fim[_-][A-Za-z_]{1,16}>"  # StarCoder / SantaCoder: <fim_middle>, <fim-suffix>
    r"|<(?:file_sep|repo_name|reponame|gh_stars|empty_output"
    r"|issue_(?:start|comment|closed)|jupyter_(?:start|text|code|output|script)"
    r"|commit_(?:before|msg|after)|start_of_turn|end_of_turn)>"
    r"|<(?:PRE|SUF|MID|EOT)>"  # CodeLlama
    r"|</s>"
    r"|(?<![\w\])])\[(?:PREFIX|SUFFIX|MIDDLE)\]"  # Codestral / Mistral FIM
)


def strip_special_tokens(text: str) -> str:
    """Cut ``text`` at its first special token (``<fim_middle>``, ``<|endoftext|>``, ``</s>``...).

    Everything after a control token is the model talking to itself (a new file,
    a chat turn), so the rest is dropped, not just the token.
    """
    match = _SPECIAL_TOKEN.search(text)
    return text if match is None else text[: match.start()]


def contains_special_token(text: str) -> bool:
    """Whether ``text`` contains a special token that :func:`strip_special_tokens` would cut at."""
    return _SPECIAL_TOKEN.search(text) is not None


# --------------------------------------------------------------------------- language rules


@dataclass(frozen=True)
class _TextRules:
    """What the rules below need of the completion's language."""

    lexical: LexicalRules
    offside: bool  # blocks end by dedenting alone: a dedented line is the next statement
    parsed: languages.Language | None  # for the syntax check: grammar and block nodes


def _rules(language: str | None) -> _TextRules:
    found = languages.resolve_text(language)
    if found is None:
        return _TextRules(PLAIN_TEXT, offside=False, parsed=None)
    parsed = found if isinstance(found, languages.Language) else None
    return _TextRules(found.lexical, found.offside, parsed)


# A block's owner is its nearest statement-like ancestor. `_clause` nodes are
# skipped on purpose: `else`/`catch`/`elif` blocks belong to the whole
# if/try statement, which goes on after the clause's own block ends.
_OWNER_SUFFIXES: Final = ("_statement", "_definition", "_declaration", "_item")

# Tree-sitter parses ~MB/s; beyond this the syntax check is skipped, not slowed.
_MAX_PARSE_CHARS: Final = 500_000

# --------------------------------------------------------------------------- cursor context

_OPENERS: Final = "([{"
_CLOSERS: Final = ")]}"
_PAIRS: Final[Mapping[str, str]] = MappingProxyType({")": "(", "]": "[", "}": "{"})

# The rest of a line that an editor typically auto-inserted: closing brackets,
# quotes, `;`, `,`, `/>`. A cursor before only these is not "mid-line".
_AUTO_CLOSED_REST: Final = re.compile(r"(?:[\s)\]}>\"'`;,]|/>)*")

# A line that closes a block: a closing bracket, in any language; see _is_closing_line.
_CLOSING_BRACKET: Final = re.compile(r"\s*[)\]}]")
_FIRST_WORD: Final = re.compile(r"\s*([A-Za-z_]\w*)")

# Words that open a further clause of a statement.
_CLAUSE_WORDS: Final = r"(?:else|elif|elsif|except|finally|catch|case|default|when|rescue|ensure)\b"
_CLAUSE_WORD: Final = re.compile(r"\b" + _CLAUSE_WORDS)

# A dedented line that continues the same statement: `} else {`, `elif x:`, `case 2:`.
_CONTINUATION_LINE: Final = re.compile(r"\s*(?:[)\]}]|" + _CLAUSE_WORDS + ")")

_CHAR_LITERAL: Final = re.compile(r"'(?:\\[^'\n]{1,10}|[^\\'\n])'")

_TAB_WIDTH: Final = 4
_FOLLOWING_LINES: Final = 200  # non-blank lines after the cursor line worth comparing with


@dataclass(frozen=True)
class _CursorContext:
    """What the rules need to know about the document around the cursor."""

    line_prefix: str  # the cursor line before the cursor ("\r" removed)
    line_rest: str  # the cursor line after the cursor ("\r" and "\n" removed)
    previous_indent: int  # indentation of the nearest non-blank line above, 0 if none
    following: tuple[str, ...]  # the next non-blank lines below, right-stripped
    crlf: bool


def _indent(line: str) -> int:
    """Indentation width; a tab counts as a stop every four columns."""
    stripped = line.lstrip(" \t")
    return len(line[: len(line) - len(stripped)].expandtabs(_TAB_WIDTH))


def _is_blank(line: str) -> bool:
    return not line.strip()


def _cursor_context(document: str, cursor: int, following_limit: int) -> _CursorContext:
    # Work line by line from the cursor outwards (rfind/find), never splitting
    # the whole document: should_stop() calls this on every generated line.
    line_start = document.rfind("\n", 0, cursor) + 1
    newline = document.find("\n", cursor)
    line_end = len(document) if newline < 0 else newline
    line_prefix = document[line_start:cursor].removesuffix("\r")
    line_rest = document[cursor:line_end].removesuffix("\r")

    previous_indent = 0
    end = line_start - 1  # index of the "\n" that ends the previous line
    while end >= 0:
        start = document.rfind("\n", 0, end) + 1
        line = document[start:end]
        if not _is_blank(line):
            previous_indent = _indent(line)
            break
        end = start - 1

    following: list[str] = []
    start = line_end + 1
    while start <= len(document) and newline >= 0 and len(following) < following_limit:
        stop = document.find("\n", start)
        line = document[start : len(document) if stop < 0 else stop].rstrip()
        if line.strip():
            following.append(line)
        if stop < 0:
            break
        start = stop + 1

    return _CursorContext(
        line_prefix=line_prefix,
        line_rest=line_rest,
        previous_indent=previous_indent,
        following=tuple(following),
        crlf="\r\n" in document,
    )


def _is_mid_line(context: _CursorContext) -> bool:
    rest = context.line_rest
    return bool(rest.strip()) and _AUTO_CLOSED_REST.fullmatch(rest) is None


# A line that ends like this is not a finished statement: what follows on the
# next lines is its rest (a block's body, a bracket's items, an operand).
_OPEN_LINE_END = re.compile(r"(?:[:{(\[,=\\+\-*/%|&^<>.]|=>|->|\b(?:and|or|not|in|is))\s*$")


def _ends_its_line(context: _CursorContext, first_line: str, syntax: LexicalRules) -> bool:
    """Whether a completion in ``auto`` scope stops at the end of its first line.

    It does when the cursor sits after code on its line, the completion adds
    to that line, and the line, completed, reads as a finished statement:
    the rest of a line being typed is that line, and the lines after it
    would be guessed code of their own
    (Copilot offers several lines only at a block's start). A cursor on a
    blank line, or a line left open (``def f(x):``, ``call(``, ``x = a +``),
    goes on to the end of its block. Brackets, strings and comments are the
    language's own (the bracket scanner's).
    """
    if _is_blank(context.line_prefix) or _is_blank(first_line):
        # A first line left empty ends the cursor line as it is: the
        # completion is the lines after it, judged by their block.
        return False
    line = context.line_prefix + first_line
    scanner = _BracketScanner(syntax)
    scanner.feed(line)
    code = line[: scanner.line_comment_at].rstrip()
    if not code:
        return False
    return _OPEN_LINE_END.search(code) is None and not scanner.stack


def _inserts_lines(context: _CursorContext) -> bool:
    """Whether the cursor is at column 0 of a non-blank line: "insert lines here".

    Nothing written there can continue the line's text (it would glue onto
    the front of it), so the completion is whole lines pushed in above it.
    """
    return not context.line_prefix and not _is_blank(context.line_rest)


def _as_new_lines(context: _CursorContext) -> _CursorContext:
    """The context of an insertion above the cursor line: a blank line, then that line."""
    return _CursorContext(
        line_prefix="",
        line_rest="",
        previous_indent=context.previous_indent,
        following=(context.line_rest.rstrip(), *context.following),
        crlf=context.crlf,
    )


def _editing_context(
    document: str, cursor: int, following_limit: int, completion: str
) -> tuple[_CursorContext, bool]:
    """The cursor context the rules judge, and whether the completion inserts lines.

    Lines are inserted above the cursor line when the cursor is at its column 0
    and the completion breaks a line: a completion without a line break there
    can only be meant to glue onto the line's text.
    """
    context = _cursor_context(document, cursor, following_limit)
    if "\n" in completion and _inserts_lines(context):
        return _as_new_lines(context), True
    return context, False


def completion_scope(document: str, cursor: int) -> Literal["line", "block"]:
    """The scope ``auto`` resolves to: ``line`` when code follows the cursor on its line.

    Closing brackets, quotes, ``;`` and ``,`` after the cursor do not count: editors
    auto-insert them, and a block completion may cover them (see ``replace_end``).
    Nor does a cursor at column 0 of a non-blank line: that inserts lines above it.
    Callers can use this before generating, e.g. to stop at the first newline.
    """
    cursor = min(max(cursor, 0), len(document))
    context, _ = _editing_context(document, cursor, 0, "\n")
    return "line" if _is_mid_line(context) else "block"


# --------------------------------------------------------------------------- loops

_MAX_LOOP_PERIOD: Final = 64
_WORD: Final = re.compile(r"\w")
# Lines in a climbing loop: four, as markup may nest one bare tag (`<div>`) thrice.
_CLIMB: Final = 4


def _climbs(lines: Sequence[str]) -> bool:
    """Whether ``lines`` are one line with words, each deeper than the one before.

    Words, because closers at falling depths (`}`, `end`) repeat by nature;
    deeper each time, because the same statement at one level is the plain
    repeat :func:`_loop_end` counts already.
    """
    text = lines[0].strip()
    if not _WORD.search(text) or any(line.strip() != text for line in lines):
        return False
    depths = [_indent(line) for line in lines]
    return all(a < b for a, b in pairwise(depths))


def _loop_end(lines: Sequence[str]) -> int:
    """Number of lines to keep: up to the end of the first occurrence of a loop.

    A loop is one non-blank line repeated three times in a row, or a block of
    two or more lines (with some substance) repeated twice in a row. Exact
    repeats only: similar lines (`case 1:`, `case 2:`) are legitimate code.
    One exception, :func:`_climbs`: the same words four times in a row, each
    line deeper than the one before (`constructor(` opening itself again and
    again), which no code does and small models fall into.
    Everything after the first occurrence goes, not only the repeats: a model
    that loops rarely recovers, and truncating never changes the meaning of
    what is kept, while splicing lines out could.
    """
    norm = [line.rstrip() for line in lines]
    count = len(norm)
    keep = next((j + 1 for j in range(count - _CLIMB + 1) if _climbs(norm[j : j + _CLIMB])), count)
    for period in range(1, min(_MAX_LOOP_PERIOD, count // 2) + 1):
        needed = 2 if period == 1 else period  # matching pairs (j, j + period) in a row
        run = 0
        for j in range(count - period):
            if norm[j] != norm[j + period]:
                run = 0
                continue
            run += 1
            if run < needed:
                continue
            start = j - run + 1
            block = norm[start : start + period]
            substance = sum(len(line.strip()) for line in block)
            if substance and (period == 1 or substance >= 10):
                keep = min(keep, start + period)
                break
    return keep


def _loops_at_end(lines: Sequence[str]) -> bool:
    """Whether the last lines complete a loop as :func:`_loop_end` defines it.

    The incremental form for :func:`should_stop`: called at every newline, a
    loop is seen the moment it forms at the end, at O(period²) instead of O(n).
    """
    norm = [line.rstrip() for line in lines[-2 * _MAX_LOOP_PERIOD :]]
    count = len(norm)
    if count >= 3 and norm[-1] == norm[-2] == norm[-3] and norm[-1].strip():
        return True
    if count >= _CLIMB and _climbs(norm[-_CLIMB:]):
        return True
    for period in range(2, count // 2 + 1):
        block = norm[count - period :]
        repeated = block == norm[count - 2 * period : count - period]
        if repeated and sum(len(line.strip()) for line in block) >= 10:
            return True
    return False


# --------------------------------------------------------------------------- block scope


def _on_cursor_line(lines: Sequence[str], context: _CursorContext) -> list[str]:
    """The completion's lines as they will read, the first one after the cursor line's prefix."""
    return [context.line_prefix + lines[0], *lines[1:]] if lines else []


def _first_code(lines: Sequence[str]) -> int | None:
    """The index of the completion's first non-blank line, or None when all are blank."""
    return next((i for i, line in enumerate(lines) if not _is_blank(line)), None)


def _is_closing_line(line: str, syntax: LexicalRules) -> bool:
    """A line that closes a block: `}`, `)`; `</tag>` in markup; `end`, `fi` where they close.

    Language by language: `</code>` in Python or a line beginning `done(...)`
    in JavaScript is not the end of anything.
    """
    if _CLOSING_BRACKET.match(line) is not None:
        return True
    if syntax.angle_brackets and line.lstrip().startswith("</"):
        return True
    word = _FIRST_WORD.match(line)
    return word is not None and word.group(1) in syntax.closing_words


def _wedges_a_clause(
    line: str, first_indent: int, context: _CursorContext, syntax: LexicalRules
) -> bool:
    """Whether clause ``line`` (`else:`, `} else {`) would cut into code the document has.

    A clause at the level of the completion's first line or deeper goes on
    with the completion's own statement. A shallower one goes on with the
    document's statement around the cursor, and that fits only where the
    document's next line leaves that statement: it is shallower than the
    clause, or a bare closer at its level (`}`, which the clause's block
    then ends with). Before anything else there (a statement, another
    `else`) it would change what that code means, as an `else:` written in
    front of a Python function's next statement does.
    """
    if _indent(line) >= first_indent or not context.following:
        return False
    following = context.following[0]
    if _indent(following) < _indent(line):
        return False
    bare_closer = _is_closing_line(following, syntax) and _CLAUSE_WORD.search(following) is None
    return not bare_closer


def _previous_nonblank(lines: Sequence[str], index: int) -> int | None:
    return next((j for j in range(index - 1, -1, -1) if not _is_blank(lines[j])), None)


def _next_nonblank(lines: Sequence[str], index: int) -> int | None:
    return next((j for j in range(index + 1, len(lines)) if not _is_blank(lines[j])), None)


def _closes_block(lines: Sequence[str], index: int) -> bool:
    previous = _previous_nonblank(lines, index)
    return previous is not None and _indent(lines[previous]) > _indent(lines[index])


def _opens_block(lines: Sequence[str], index: int) -> bool:
    following = _next_nonblank(lines, index)
    return following is not None and _indent(lines[index]) < _indent(lines[following])


def _body_follows(full: Sequence[str], reference: int, context: _CursorContext) -> bool:
    """Whether line ``reference`` opens a block whose body the document already has.

    It opens a block when the completion's next line is deeper; the body is
    there when the document's next non-blank line after the cursor is deeper
    than it too, and the cursor line has nothing after the cursor.
    """
    if not context.following or not _is_blank(context.line_rest):
        return False
    opener = _indent(full[reference])
    return _opens_block(full, reference) and _indent(context.following[0]) > opener


@dataclass(frozen=True)
class _BlockLimit:
    keep: int  # number of completion lines inside the scope
    settled: bool  # a cut was found that later lines cannot change
    # A cut was found: the completion left its block (settled or not: once
    # the text is final, no `} else {` can come after a closing line any more).
    ended: bool = True


def _limit_to_block(
    lines: Sequence[str], context: _CursorContext, rules: _TextRules
) -> _BlockLimit:
    """Keep the lines of the block the completion starts in (Tabby's indentation rules).

    The indentation limit comes from the cursor line (or the nearest non-blank
    line above, when the cursor line is blank) and the completion's first
    non-blank line:

    * cursor line and completion both non-blank at the cursor: the completion
      continues the current statement; only deeper-indented (continuation)
      lines may follow, and a closing line only if the first line opens a block;
    * the completion starts deeper than the line above: it opens a block, which
      may end with a closing line;
    * otherwise it continues at its own level.

    The first line below the limit ends the scope; it is kept when it closes the
    block (`}`), the document's next line is outside the block, and (for
    offside languages such as Python) the line before it is not blank. A line
    like `} else {` or `elif x:` that closes and reopens continues the scope,
    unless it would cut into the code after the cursor (:func:`_wedges_a_clause`).
    """
    count = len(lines)
    full = _on_cursor_line(lines, context)
    reference = _first_code(lines)
    if count < 2 or reference is None:
        return _BlockLimit(count, settled=False, ended=False)

    cursor_line_blank = _is_blank(context.line_prefix)
    prefix_indent = context.previous_indent if cursor_line_blank else _indent(context.line_prefix)
    completion_indent = _indent(full[reference])

    if _body_follows(full, reference, context):
        # The completion opens a block, and the document already goes on
        # deeper than that line right after the cursor: that is the block's
        # body. Only the block's first line is missing; writing a second body
        # above the first one is never what the hole asks for.
        return _BlockLimit(reference + 1, settled=True)

    allow_closing = True
    if not cursor_line_blank and not _is_blank(lines[0]):
        limit = prefix_indent + 1  # "+ 1": strictly deeper, whatever the indent unit
        allow_closing = _opens_block(full, 0)
    elif completion_indent > prefix_indent:
        limit = prefix_indent + 1
    else:
        # Same level, or dedented (cursor on a blank line below a block): the
        # completion's own level is the block it writes in.
        limit = completion_indent

    # A closing line is only wanted if the document's next line is outside the
    # block; otherwise the block goes on after the cursor and must stay open.
    if context.following:
        allow_closing = allow_closing and _indent(context.following[0]) < limit

    for index in range(1, count):
        line = full[index]
        if _is_blank(line) or _indent(line) >= limit:
            continue
        clause = _closes_block(full, index) and _CONTINUATION_LINE.match(line) is not None
        # A clause in front of code the document has at its level: the cut is
        # final, and the clause (`} else {`) is no closing line to keep.
        refused = clause and _wedges_a_clause(line, completion_indent, context, rules.lexical)
        continues = clause and not refused
        if continues and _opens_block(full, index):
            continue
        # Only a `} else {`-like line needs the next line to be judged.
        settled = not continues or _next_nonblank(full, index) is not None
        keep_closing = (
            allow_closing
            and not refused
            and _is_closing_line(line, rules.lexical)
            and not (rules.offside and _is_blank(full[index - 1]))
        )
        return _BlockLimit(index + 1 if keep_closing else index, settled=settled)
    return _BlockLimit(count, settled=False, ended=False)


# --------------------------------------------------------------------------- duplication


def _drop_duplicated_closing_line(
    lines: list[str], context: _CursorContext, syntax: LexicalRules
) -> list[str]:
    """Drop a last line such as `};` when the document's next line is the same closer (`}`)."""
    if len(lines) < 2 or not context.following:
        return lines
    full = _on_cursor_line(lines, context)
    last = full[-1]
    following = context.following[0]
    if (
        _is_blank(last)
        or not _is_closing_line(following, syntax)
        or _indent(last) != _indent(following)
        or not _closes_block(full, len(full) - 1)
    ):
        return lines
    ours, theirs = last.strip(), following.strip()
    if ours.startswith(theirs) or theirs.startswith(ours):
        return lines[:-1]
    return lines


def _drop_suffix_repeats(lines: list[str], context: _CursorContext) -> list[str]:
    """Drop the completion's trailing lines that repeat the document's next lines.

    Compared with their indentation (the first line with the cursor line's
    prefix), so that `  }` closing an inner block is not taken for the `}` that
    closes the outer one (Tabby's `similar_lines_01`).
    """
    if not lines or not context.following:
        return lines
    full = [line.rstrip() for line in _on_cursor_line(lines, context)]
    for start in range(len(full)):
        # A blank first line contributes nothing to the cursor line: skip it.
        if _is_blank(lines[start]):
            continue
        tail = [line for line in full[start:] if not _is_blank(line)]
        if len(tail) <= len(context.following) and tail == list(context.following[: len(tail)]):
            return lines[:start]
    return lines


def _trim(lines: list[str], context: _CursorContext) -> list[str]:
    """Drop trailing whitespace-only lines, and trailing spaces when nothing follows."""
    trimmed = list(lines)
    while len(trimmed) > 1 and _is_blank(trimmed[-1]):
        trimmed.pop()
    if not trimmed or all(_is_blank(line) for line in trimmed):
        return []
    # Before text on the same line, a trailing space may be wanted: `foo(a, |b)`.
    if _is_blank(context.line_rest):
        trimmed[-1] = trimmed[-1].rstrip()
    return trimmed


# --------------------------------------------------------------------------- replace range


class _BracketScanner:
    """Brackets, strings and comments of a stretch of code; cheap to copy.

    A heuristic lexer, not a parser: it only has to judge the same line the
    same way with and without the completion, so its mistakes cancel out.
    """

    __slots__ = (
        "broken_strings",
        "comment",
        "extra",
        "first_extra_at",
        "line_comment_at",
        "stack",
        "string",
        "syntax",
    )

    def __init__(self, syntax: LexicalRules) -> None:
        self.syntax = syntax
        self.stack: list[str] = []  # open brackets
        self.extra = 0  # closing brackets that closed nothing
        self.first_extra_at: int | None = None  # where, in the text fed, the first one was
        self.string: str | None = None  # delimiter of the open string
        self.broken_strings = 0  # single-line strings cut by a newline
        self.comment: Literal["line", "block"] | None = None
        self.line_comment_at: int | None = None  # where, in the text fed, the first one began

    def copy(self) -> _BracketScanner:
        other = _BracketScanner(self.syntax)
        other.stack = list(self.stack)
        other.extra = self.extra
        other.first_extra_at = self.first_extra_at
        other.string = self.string
        other.broken_strings = self.broken_strings
        other.comment = self.comment
        other.line_comment_at = self.line_comment_at
        return other

    def distance(self, other: _BracketScanner) -> int:
        """How differently balanced two states are (0: same shape)."""
        return (
            abs(self.extra - other.extra)
            + abs(len(self.stack) - len(other.stack))
            + abs(self.broken_strings - other.broken_strings)
            + int(self.string != other.string)
            + int(self.comment != other.comment)
        )

    def feed(self, text: str) -> None:
        index, size = 0, len(text)
        while index < size:
            if self.comment is not None:
                index = self._skip_comment(text, index)
            elif self.string is not None:
                index = self._skip_string(text, index)
            else:
                index = self._code(text, index)

    def _skip_comment(self, text: str, index: int) -> int:
        if self.comment == "block" and self.syntax.block_comment is not None:
            close = self.syntax.block_comment[1]
            end = text.find(close, index)
            if end < 0:
                return len(text)
            self.comment = None
            return end + len(close)
        end = text.find("\n", index)
        if end < 0:
            return len(text)
        self.comment = None
        return end + 1

    def _skip_string(self, text: str, index: int) -> int:
        delimiter = self.string or ""
        char = text[index]
        if char == "\\":
            return index + 2
        if text.startswith(delimiter, index):
            self.string = None
            return index + len(delimiter)
        if char == "\n" and delimiter not in self.syntax.multiline_quotes:
            self.string = None
            self.broken_strings += 1
        return index + 1

    def _code(self, text: str, index: int) -> int:
        syntax = self.syntax
        if syntax.block_comment is not None and text.startswith(syntax.block_comment[0], index):
            self.comment = "block"
            return index + len(syntax.block_comment[0])
        for marker in syntax.line_comments:
            if text.startswith(marker, index):
                self.comment = "line"
                if self.line_comment_at is None:
                    self.line_comment_at = index
                return index + len(marker)
        for quote in syntax.quotes:
            if text.startswith(quote, index):
                return self._quote(text, index, quote)
        char = text[index]
        if char in _OPENERS:
            self.stack.append(char)
        elif char in _CLOSERS:
            if self.stack and self.stack[-1] == _PAIRS[char]:
                self.stack.pop()
            else:
                self._unmatched(index)
        elif syntax.angle_brackets:
            return self._angle(text, index)
        return index + 1

    def _unmatched(self, index: int) -> None:
        self.extra += 1
        if self.first_extra_at is None:
            self.first_extra_at = index

    def _quote(self, text: str, index: int, quote: str) -> int:
        if quote == "'" and self.syntax.char_literals:
            literal = _CHAR_LITERAL.match(text, index)
            return index + 1 if literal is None else literal.end()
        if (
            quote == "'"
            and self.syntax.apostrophes
            and 0 < index < len(text) - 1
            and text[index - 1].isalnum()
            and text[index + 1].isalnum()
        ):
            return index + 1  # don't, it's
        self.string = quote
        return index + len(quote)

    def _angle(self, text: str, index: int) -> int:
        char = text[index]
        following = text[index + 1 : index + 2]
        if char == "<" and (following.isalpha() or following in ("/", "!", ">")):
            self.stack.append("<")
        elif char == "/" and following == ">" and self.stack and self.stack[-1] == "<":
            self.stack.pop()
            return index + 2
        elif char == ">" and (index == 0 or text[index - 1] not in "=-") and following != "=":
            if self.stack and self.stack[-1] == "<":
                self.stack.pop()
            else:
                self._unmatched(index)
        return index + 1


# How much of the cursor line's rest the replace rule reads, and how many
# auto-closed characters in a row it considers replacing: real code closes a
# few brackets and quotes at a time.
_SCANNED_REST_CHARS = 256
_MAX_CLOSING_RUN = 32


def _replace_length(text: str, context: _CursorContext, syntax: LexicalRules) -> int:
    """How many characters after the cursor (on its line) the completion replaces.

    Candidates are 0, every prefix of the rest of the line made of auto-closed
    characters (`)`, `]`, `}`, quotes, `;`, `,`, `>`), and the whole rest of the
    line when the completion ends with it. The winner leaves the cursor line (with
    the completion in it) as balanced as it was without it; ties go to covering
    the whole rest of the line (the model rewrote it), then to the shortest.
    """
    full_rest = context.line_rest
    if not text or _is_blank(full_rest):
        return 0
    # The completion ends with the whole rest of the line: the model rewrote it.
    whole = len(full_rest.rstrip()) if text.endswith(full_rest.rstrip()) else -1
    if whole > _SCANNED_REST_CHARS:
        return whole  # a long rest of line repeated verbatim: nothing else fits as well
    # Each candidate is scored by scanning the rest of the line after it: both
    # are bounded, or one long line of closers (minified code, a hostile
    # request) costs a scan per character, seconds of a blocked loop.
    rest = full_rest[:_SCANNED_REST_CHARS]
    before = _BracketScanner(syntax)
    before.feed(context.line_prefix)
    original = before.copy()
    original.feed(rest)
    after = before.copy()
    after.feed(text)

    candidates = [0]
    for length in range(1, len(rest) + 1):
        char = rest[length - 1]
        if char.isspace():
            continue
        if char not in ")]}>\"'`;,/" or len(candidates) > _MAX_CLOSING_RUN:
            break
        candidates.append(length)
    if whole > 0 and whole not in candidates:
        candidates.append(whole)

    def score(length: int) -> tuple[int, int, int]:
        state = after.copy()
        state.feed(rest[length:])
        return (state.distance(original), 0 if length == whole else 1, length)

    return min(candidates, key=score)


# --------------------------------------------------------------------------- syntax scope


def _load_language(language: languages.Language) -> Language | None:
    try:
        return Language(language.grammar.load())
    except ImportError:  # grammar wheel not installed: indentation rules only
        return None


def _owner(block: Node) -> Node | None:
    node = block.parent
    while node is not None:
        if node.type.endswith(_OWNER_SUFFIXES):
            return node
        node = node.parent
    return None


def _syntax_keep(
    document: str, cursor: int, text: str, replace_length: int, *, rules: _TextRules
) -> int | None:
    """Characters of ``text`` to keep so that it ends with the statement enclosing the cursor.

    Finds the innermost block (statement list, class body...) around the cursor
    whose owning statement starts before the cursor, in a parse of the document
    with the completion applied. When that statement ends inside the completion
    and more text follows, the completion has left the block: cut there. Only
    trusted when the owning statement parsed without errors, which skips
    half-typed code where tree-sitter's error recovery guesses.
    """
    language = rules.parsed
    if language is None or rules.offside or len(document) + len(text) > _MAX_PARSE_CHARS:
        # Offside languages: the indentation rules already are the syntax.
        return None
    block_types = language.block_nodes
    # A completion can only leave its enclosing block by closing a bracket it
    # did not open, with more text after it. Checking that first spares the
    # full parse (tens of milliseconds on large files) in the common case.
    scanner = _BracketScanner(rules.lexical)
    scanner.feed(text)
    if scanner.first_extra_at is None or not text[scanner.first_extra_at + 1 :].strip():
        return None
    grammar = _load_language(language)
    if grammar is None:
        return None
    encoding, errors = "utf-8", "surrogatepass"
    head = document[:cursor].encode(encoding, errors)
    body = text.encode(encoding, errors)
    tail = document[cursor + replace_length :].encode(encoding, errors)
    tree = Parser(grammar).parse(head + body + tail)
    start, end = len(head), len(head) + len(body)

    node = tree.root_node.descendant_for_byte_range(start, start)
    owner: Node | None = None
    while node is not None:
        if node.type in block_types:
            candidate = _owner(node)
            if candidate is not None and candidate.start_byte < start:
                owner = candidate
                break
        node = node.parent
    if owner is None or owner.has_error or not start < owner.end_byte < end:
        return None
    keep_bytes = owner.end_byte - start
    if not body[keep_bytes:].strip():
        return None
    # Byte offset -> str index; node ends fall on character boundaries.
    ends = list(accumulate(len(char.encode(encoding, errors)) for char in text))
    return bisect_right(ends, keep_bytes)


# --------------------------------------------------------------------------- joining the suffix


def _first_statement(lines: list[str], context: _CursorContext, syntax: LexicalRules) -> list[str]:
    """The completion's lines up to the end of its first statement.

    The statement is the first non-blank line, the lines its open brackets
    (or multi-line string) carry on to, the deeper-indented lines of a block
    it opens, continuation lines at its own level (`} else {`, `elif x:`,
    `except E:`) and the closing line that ends it (`}`).
    """
    full = _on_cursor_line(lines, context)
    first = _first_code(lines)
    if first is None:
        return lines
    level = _indent(full[first])
    scanner = _BracketScanner(syntax)
    for line in full[: first + 1]:
        scanner.feed(line + "\n")
    opened = False
    keep = first + 1
    while keep < len(full):
        line = full[keep]
        inside = bool(scanner.stack) or scanner.string is not None or scanner.comment is not None
        if _is_blank(line) or inside or _indent(line) > level:
            opened = opened or (not inside and not _is_blank(line))
            scanner.feed(line + "\n")
            keep += 1
            continue
        if not opened:
            break
        closes = _is_closing_line(line, syntax)
        continues = _CONTINUATION_LINE.match(line) is not None and not _wedges_a_clause(
            line, level, context, syntax
        )
        if not (closes or continues):
            break
        scanner.feed(line + "\n")
        keep += 1
        if not _opens_block(full, keep - 1) and closes:
            break  # `}`: the statement ends with its closing line
        opened = False  # `} else {` / `elif x:`: a new block must open again
    return _trim(lines[:keep], context)


def _outside_block(lines: Sequence[str], context: _CursorContext) -> bool:
    """Whether the document's next line is outside the block the completion writes in.

    Then the completion ends where the block ends, and the suffix takes over
    from there: a completion that ended its block agrees with the document.
    """
    full = _on_cursor_line(lines, context)
    first = _first_code(lines)
    if first is None or not context.following:
        return True
    return _indent(context.following[0]) < _indent(full[first])


def _starts_block(lines: Sequence[str], context: _CursorContext) -> bool:
    """Whether the completion is the first code of its block: deeper than the line above.

    Only there does a model that does not see the suffix write a block's worth
    of lines with any chance (a body after `def f():` or `{`): after code of
    its own block, the lines after the first are guesses (Copilot offers
    several lines only at a block's start).
    """
    full = _on_cursor_line(lines, context)
    first = _first_code(lines)
    return first is not None and _indent(full[first]) > context.previous_indent


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class _Finished:
    text: str
    replace_length: int
    joined: bool  # lines repeating the suffix were dropped: the completion met it


def _finish(
    lines: list[str], context: _CursorContext, syntax: LexicalRules, *, line_scope: bool
) -> _Finished:
    lines = _trim(lines, context)
    before = len(lines)
    if not line_scope:
        # In line scope the completion continues the cursor line, and the
        # line's own rest follows it: the next lines are no measure of it.
        lines = _drop_duplicated_closing_line(lines, context, syntax)
        lines = _drop_suffix_repeats(lines, context)
    joined = len(lines) < before
    lines = _trim(lines, context)
    text = "\n".join(lines)
    return _Finished(text, _replace_length(text, context, syntax), joined)


def postprocess_completion(
    document: str,
    cursor: int,
    raw: str,
    language: str | None,
    *,
    scope: Scope = "auto",
    use_syntax: bool = True,
    suffix_aware: bool = True,
) -> PostProcessed:
    """Clean a raw completion inserted at ``cursor`` in ``document``.

    ``language`` is an LSP language id (``python``, ``typescriptreact``...) or
    ``None``. ``scope`` forces line or block scope; ``auto`` picks line scope
    when code follows the cursor on its line. ``use_syntax`` enables the
    tree-sitter end-of-statement check for languages with an installed grammar.

    ``suffix_aware`` says the model saw the text after the cursor (a FIM
    prompt), so where it ends is its own judgement of where the suffix takes
    over. A model that did not (``False``) cannot know: its completion is
    kept whole only where it is the first code of a block (deeper than the
    line above) and ended that block where the document's next line is
    outside it, or where the document ends after the cursor; anywhere else
    it is cut to its first statement. That holds too when it went on to
    repeat the document's next line: the lines it wrote before that are its
    guess at the file, not at the hole (an argument the call has further
    down, a second invented statement before a closing brace).

    With the cursor at column 0 of a non-blank line, the completion is whole
    lines inserted above that line: it ends with a line break.

    Never raises for any text, cursor (clamped to the document) or completion;
    the returned text is a prefix of the raw completion (after cutting special
    tokens and normalising line endings to the document's), with a line break
    added when lines are inserted above the cursor line (after the last kept
    line, without its trailing whitespace), and contains no special token.
    """
    if scope not in ("auto", "line", "block"):
        raise ValueError(f"scope must be 'auto', 'line' or 'block', not {scope!r}")
    cursor = min(max(cursor, 0), len(document))
    rules = _rules(language)
    syntax = rules.lexical
    cleaned = strip_special_tokens(raw).replace("\r\n", "\n")
    context, inserts_lines = _editing_context(document, cursor, _FOLLOWING_LINES, cleaned)

    lines = cleaned.split("\n")
    lines = lines[: _loop_end(_on_cursor_line(lines, context))]
    line_scope = scope == "line" or (
        scope == "auto" and (_is_mid_line(context) or _ends_its_line(context, lines[0], syntax))
    )
    block = None if line_scope else _limit_to_block(lines, context, rules)
    lines = lines[:1] if block is None else lines[: block.keep]

    finished = _finish(lines, context, syntax, line_scope=line_scope)
    if use_syntax and not line_scope:
        # Lines inserted above the cursor line end with a line break.
        tail = "\n" if inserts_lines and finished.text else ""
        replace_length = 0 if inserts_lines else finished.replace_length
        keep = _syntax_keep(document, cursor, finished.text + tail, replace_length, rules=rules)
        if keep is not None:
            lines = (finished.text + tail)[:keep].split("\n")
            again = _finish(lines, context, syntax, line_scope=False)
            finished = _Finished(again.text, again.replace_length, finished.joined or again.joined)
    # Kept whole: at the end of the file, or where the completion starts a
    # block, ended it (it did not just run out of tokens inside it) and the
    # document's next line is outside that block. Measured on recorded
    # generations (bench.quality.replay): whole-line holes gained, HumanEval's
    # executed splits did not move.
    kept_whole = not context.following or (
        block is not None
        and block.ended
        and _outside_block(finished.text.split("\n"), context)
        and _starts_block(finished.text.split("\n"), context)
    )
    if not suffix_aware and not line_scope and not kept_whole:
        lines = _first_statement(finished.text.split("\n"), context, syntax)
        finished = _finish(lines, context, syntax, line_scope=False)

    text = finished.text
    if not text:
        return PostProcessed("", cursor, cursor)
    if inserts_lines:
        text += "\n"
    if context.crlf:
        text = text.replace("\n", "\r\n")
    return PostProcessed(text, cursor, cursor + (0 if inserts_lines else finished.replace_length))


def should_stop(
    document: str,
    cursor: int,
    partial: str,
    language: str | None,
    *,
    scope: Scope = "auto",
) -> bool:
    """Whether generation can stop: the completion so far already runs past its scope.

    Meant for the decode loop, each time a newline is generated. String and
    indentation rules only (no parse), and only the lines completed so far are
    judged, so the answer never depends on a line still being written: stop on a
    special token, at the first newline in line scope, when the block ended
    (a dedent that later lines cannot turn into `} else {`), when a line or block
    loops, at a line of the prompt's scaffolding (a snippet header), or when the
    last line repeats the document's next line.
    """
    if contains_special_token(partial):
        return True
    text = partial.replace("\r\n", "\n")
    if "\n" not in text:
        return False
    cursor = min(max(cursor, 0), len(document))
    context, _ = _editing_context(document, cursor, 1, text)
    rules = _rules(language)
    pieces = text.split("\n")
    if scope == "line" or (
        scope == "auto"
        and (_is_mid_line(context) or _ends_its_line(context, pieces[0], rules.lexical))
    ):
        return True
    complete = pieces[:-1]  # the last piece is still being written
    if _loops_at_end(_on_cursor_line(complete, context)):
        return True
    if header_start("\n".join(complete), language) is not None:
        return True  # the prompt's scaffolding: nothing from there on is kept
    if _limit_to_block(complete, context, rules).settled:
        return True
    # The model started to echo the document's next line: what follows is a copy.
    full = _on_cursor_line(complete, context)
    last = next((full[i] for i in reversed(range(len(full))) if not _is_blank(complete[i])), "")
    return (
        bool(context.following) and not _is_blank(last) and (last.rstrip() == context.following[0])
    )
