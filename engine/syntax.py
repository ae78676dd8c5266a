"""Tree-sitter syntax engine: parsers per language and incrementally parsed documents.

A :class:`ParserPool` (owned by the Engine, never a module global) keeps one
tree-sitter parser per language. A :class:`SyntaxDocument` holds one text and its
tree; :meth:`SyntaxDocument.apply_edit` edits the old tree and re-parses with it,
so tree-sitter reuses every subtree the edit did not touch.

Offsets in this API are Python ``str`` indexes (code points). tree-sitter works
in UTF-8 bytes and (row, byte-column) points; the conversion lives here so that
callers never see bytes.

What a language is (names, grammar, outline rules) comes from the registry in
:mod:`engine.languages`; this module keeps no language table of its own.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

from tree_sitter import Language, Node, Parser, Point, Query, QueryCursor, Tree

from engine import languages
from engine.errors import InvalidRequestError, UnsupportedLanguageError
from engine.languages.base import Outline

LANGUAGES: tuple[str, ...] = languages.ids()
"""Canonical language names this engine parses."""


def line_comment(language: str | None) -> str:
    """The line-comment marker of a language (``#`` when unknown)."""
    return languages.line_comment(language)


def resolve_language(language_id: str | None = None, file_path: str | None = None) -> str | None:
    """Return the canonical language for an LSP language id, a request language or a path.

    The language id wins when it is known; otherwise the file extension decides.
    Returns ``None`` when neither names a supported language.
    """
    found = languages.resolve(language_id, file_path)
    return found.id if found is not None else None


def _unsupported(language: str) -> UnsupportedLanguageError:
    return UnsupportedLanguageError(
        f"No tree-sitter grammar for language '{language}'; supported: {', '.join(LANGUAGES)}",
        {"language": language, "supported": list(LANGUAGES)},
    )


@cache
def load_language(language: str) -> Language:
    """Return the tree-sitter ``Language`` for a canonical language name.

    Cached because a ``Language`` is an immutable handle to static grammar tables.
    """
    if language not in LANGUAGES:
        raise _unsupported(language)
    return Language(languages.get(language).grammar.load())


def canonical_language(language: str) -> str:
    """Resolve a language name or alias, raising ``UnsupportedLanguageError`` if unknown."""
    resolved = resolve_language(language)
    if resolved is None:
        raise _unsupported(language)
    return resolved


def encode(text: str) -> bytes:
    """UTF-8 encode, keeping lone surrogates (from JSON escapes) one code point each."""
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    """Inverse of :func:`encode`; a slice cut mid-character decodes with replacements."""
    return data.decode("utf-8", "surrogatepass") if data.isascii() else _decode_lenient(data)


def _decode_lenient(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


# Enclosing ranges one selection-range request returns at most. A chain is
# one JSON object inside the next, and the encoder recurses per level (a
# 1,000-level expression exceeded Python's recursion limit, and the request
# was never answered); walking up is also quadratic in the depth.
MAX_SELECTION_LEVELS = 100

# Syntax trees deeper than this get no refactoring and no completion context
# at such a cursor: each step up a tree-sitter tree (``Node.parent``) costs
# time in proportion to the depth, so walks to the root are quadratic in it
# (a 16 KB chain of 8,000 `+` took 11 s to list code actions, 0.8 s to build
# a completion context). Real code is a few dozen levels deep.
MAX_TREE_DEPTH = 500


class ParserPool:
    """One tree-sitter parser per language, created on first use.

    A ``Parser`` is not safe to share between threads, so each language has a
    lock; different languages parse in parallel.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._parsers: dict[str, tuple[Parser, threading.Lock]] = {}
        self._identifier_queries: dict[str, Query] = {}

    def parse(self, language: str, source: bytes, old_tree: Tree | None = None) -> Tree:
        """Parse ``source``; with ``old_tree`` (already edited) the parse is incremental."""
        parser, lock = self._parser(language)
        with lock:
            return parser.parse(source, old_tree) if old_tree is not None else parser.parse(source)

    def document(self, text: str, language: str, *, label: str | None = None) -> SyntaxDocument:
        """Parse ``text`` into a document that uses this pool's parsers."""
        return SyntaxDocument(text, language, pool=self, label=label)

    def identifier_query(self, language: str) -> Query:
        """A query capturing every identifier-like leaf of ``language`` (compiled once)."""
        with self._guard:
            query = self._identifier_queries.get(language)
            if query is None:
                grammar = load_language(language)
                kinds = [k for k in _IDENTIFIER_KINDS if grammar.id_for_node_kind(k, True)]
                query = Query(grammar, "[" + " ".join(f"({k})" for k in kinds) + "] @name")
                self._identifier_queries[language] = query
            return query

    def _parser(self, language: str) -> tuple[Parser, threading.Lock]:
        with self._guard:
            entry = self._parsers.get(language)
            if entry is None:
                entry = (Parser(load_language(language)), threading.Lock())
                self._parsers[language] = entry
            return entry


@dataclass(frozen=True)
class Snippet:
    """A piece of context for the prompt builder; ``size`` is its length in characters."""

    text: str
    source: str
    size: int


@dataclass(frozen=True)
class CompletionContext:
    """Stable context for a completion prompt, most important first within each list."""

    scope_signature: str | None
    imports: list[Snippet]
    definitions: list[Snippet]
    # Recently viewed or edited code (the ring), offered after the definitions.
    chunks: list[Snippet] = field(default_factory=list)
    # The workspace folder's name and this file's path in it, for prompts in
    # repository-level FIM form.
    repo_name: str | None = None
    file_label: str | None = None


class _OffsetIndex:
    """Code point <-> UTF-8 byte conversion for one version of a non-ASCII text.

    Built lazily and only for non-ASCII texts (ASCII offsets are identical), from
    line starts so that each conversion encodes or decodes at most one line.
    """

    def __init__(self, text: str) -> None:
        self.char_starts: list[int] = [0]
        self.byte_starts: list[int] = [0]
        char_pos = 0
        byte_pos = 0
        for line in text.split("\n"):
            char_pos += len(line) + 1
            byte_pos += len(encode(line)) + 1
            self.char_starts.append(char_pos)
            self.byte_starts.append(byte_pos)
        self.text = text
        self.data = encode(text)

    def to_byte(self, offset: int) -> int:
        row = bisect.bisect_right(self.char_starts, offset) - 1
        start = self.char_starts[row]
        return self.byte_starts[row] + len(encode(self.text[start:offset]))

    def to_char(self, byte: int) -> int:
        row = bisect.bisect_right(self.byte_starts, byte) - 1
        start = self.byte_starts[row]
        return self.char_starts[row] + len(decode(self.data[start:byte]))


# Identifier-like leaves across the supported grammars (a kind missing from one
# grammar is simply left out of that grammar's query).
_IDENTIFIER_KINDS = (
    "identifier",
    "type_identifier",
    "field_identifier",
    "property_identifier",
    "shorthand_property_identifier",
    "shorthand_field_identifier",
    "package_identifier",
)


# Context sizes: enough to name what the cursor is using without scanning the file.
_WINDOW_BYTES_BEFORE = 2000
_WINDOW_BYTES_AFTER = 400
# A node with more children than this around the cursor makes the identifier
# query slow (quadratic in them): the words of the window are taken instead.
_WIDE_NODE_CHILDREN = 10_000
_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_MAX_DEFINITIONS = 12
_DEFINITIONS_PER_NAME = 2
_MAX_FULL_DEFINITION_CHARS = 400
_DIRECT_CONVERSIONS = 8


class SyntaxDocument:
    """A text and its syntax tree, kept in step by incremental re-parsing.

    One owner edits a document (it is not locked); the parsers it uses are
    shared safely through the pool.
    """

    def __init__(
        self,
        text: str,
        language: str,
        *,
        pool: ParserPool | None = None,
        label: str | None = None,
    ) -> None:
        """Parse ``text`` as ``language`` (canonical name or alias).

        ``pool`` shares parsers with the Engine; without one the document gets a
        private pool. ``label`` names the document in completion-context snippets.
        """
        self.language = canonical_language(language)
        self.label = label
        self._pool = pool if pool is not None else ParserPool()
        self._outline = languages.get(self.language).outline
        self._text = text
        self._data = encode(text)
        # (tree, limit, depth) of the last max_depth() (a new tree is a new key).
        self._depth: tuple[Tree, int, int] | None = None
        self._tree = self._pool.parse(self.language, self._data)
        self._version = 0
        self._reset_caches()

    @property
    def text(self) -> str:
        """The current text."""
        return self._text

    @property
    def data(self) -> bytes:
        """The current text as UTF-8 bytes (what tree-sitter offsets index)."""
        return self._data

    @property
    def tree(self) -> Tree:
        """The current syntax tree."""
        return self._tree

    @property
    def version(self) -> int:
        """Incremented by every edit."""
        return self._version

    def _reset_caches(self) -> None:
        self._ascii = self._text.isascii()
        self._index: _OffsetIndex | None = None
        self._conversions = 0
        self._imports: list[Node] | None = None
        self._definitions: dict[str, list[Node]] | None = None

    # -- offsets -------------------------------------------------------------

    def clamp(self, offset: int) -> int:
        """Clamp a code-point offset into ``[0, len(text)]``."""
        return max(0, min(offset, len(self._text)))

    def _offsets(self) -> _OffsetIndex | None:
        # A few conversions per version (a completion request needs one) are
        # cheaper done directly than by indexing every line; many are not.
        if self._index is None:
            self._conversions += 1
            if self._conversions > _DIRECT_CONVERSIONS:
                self._index = _OffsetIndex(self._text)
        return self._index

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of a code-point offset (clamped to the text)."""
        offset = self.clamp(offset)
        if self._ascii:
            return offset
        index = self._offsets()
        return index.to_byte(offset) if index else len(encode(self._text[:offset]))

    def char_offset(self, byte: int) -> int:
        """Code-point offset of a UTF-8 byte offset."""
        byte = max(0, min(byte, len(self._data)))
        if self._ascii:
            return byte
        index = self._offsets()
        return index.to_char(byte) if index else len(decode(self._data[:byte]))

    def node_range(self, node: Node) -> tuple[int, int]:
        """A node's ``(start, end)`` in code points."""
        return self.char_offset(node.start_byte), self.char_offset(node.end_byte)

    def node_text(self, node: Node) -> str:
        """A node's source text."""
        return decode(self._data[node.start_byte : node.end_byte])

    def slice_bytes(self, start: int, end: int) -> str:
        """Source text between two byte offsets."""
        return decode(self._data[start:end])

    def _edit_position(self, offset: int) -> tuple[int, Point]:
        """Byte offset and point of a code-point offset, without building the line index.

        An edit invalidates the index, so rebuilding it (a pass over every line)
        for the two positions an edit needs would cost more than the re-parse.
        """
        text = self._text
        row = text.count("\n", 0, offset)
        line_start = text.rfind("\n", 0, offset) + 1
        if self._ascii:
            return offset, Point(row, offset - line_start)
        column = len(encode(text[line_start:offset]))
        return len(encode(text[:line_start])) + column, Point(row, column)

    # -- editing -------------------------------------------------------------

    def apply_edit(self, start: int, end: int, new_text: str) -> None:
        """Replace ``text[start:end]`` with ``new_text`` and re-parse incrementally.

        Offsets are code points. Negative offsets or ``end < start`` are rejected;
        offsets past the end of the text are clamped to it.
        """
        if start < 0:
            raise InvalidRequestError("start", "Edit start must not be negative", value=start)
        if end < start:
            raise InvalidRequestError("end", "Edit end must not be before its start", value=end)
        start, end = self.clamp(start), self.clamp(end)
        start_byte, start_point = self._edit_position(start)
        end_byte, old_end_point = self._edit_position(end)
        inserted = encode(new_text)
        newlines = new_text.count("\n")
        if newlines:
            last_line = new_text[new_text.rfind("\n") + 1 :]
            new_end_point = Point(start_point.row + newlines, len(encode(last_line)))
        else:
            new_end_point = Point(start_point.row, start_point.column + len(inserted))

        self._text = self._text[:start] + new_text + self._text[end:]
        self._data = self._data[:start_byte] + inserted + self._data[end_byte:]
        self._tree.edit(
            start_byte,
            end_byte,
            start_byte + len(inserted),
            start_point,
            old_end_point,
            new_end_point,
        )
        self._tree = self._pool.parse(self.language, self._data, self._tree)
        self._version += 1
        self._reset_caches()

    def set_text(self, text: str) -> None:
        """Replace the whole text (full-document sync) with a fresh parse."""
        self._text = text
        self._data = encode(text)
        self._tree = self._pool.parse(self.language, self._data)
        self._version += 1
        self._reset_caches()

    # -- queries -------------------------------------------------------------

    def max_depth(self, limit: int = MAX_TREE_DEPTH) -> int:
        """How deep the syntax tree is, counted up to ``limit + 1`` (cached per tree).

        A cursor walk over every node, in C: about 15 ms for 440 KB of code,
        and it stops as soon as the limit is passed.
        """
        cached = self._depth
        if cached is not None and cached[0] is self._tree and cached[1] == limit:
            return cached[2]
        cursor = self._tree.walk()
        depth = deepest = 0
        while deepest <= limit:
            if cursor.goto_first_child():
                depth += 1
                deepest = max(deepest, depth)
                continue
            while not cursor.goto_next_sibling():
                if not cursor.goto_parent():
                    self._depth = (self._tree, limit, deepest)
                    return deepest
                depth -= 1
        self._depth = (self._tree, limit, deepest)
        return deepest

    def depth_at(self, offset: int, limit: int = MAX_TREE_DEPTH) -> int:
        """How many nodes enclose a code-point offset, counted up to ``limit + 1``.

        One step down per level from the root (O(depth)), where walking up
        from the node with ``parent`` costs O(depth) a step.
        """
        byte = self.byte_offset(self.clamp(offset))
        cursor = self._tree.walk()
        depth = 0
        while depth <= limit and cursor.goto_first_child_for_byte(byte) is not None:
            depth += 1
        return depth

    def node_at(self, offset: int) -> Node:
        """The innermost named node at a code-point offset.

        A cursor just after a word (before whitespace, punctuation or the end)
        means that word, as editors treat it.
        """
        offset = self.clamp(offset)
        byte = self.byte_offset(offset)
        root = self._tree.root_node
        after = self._text[offset] if offset < len(self._text) else ""
        before = self._text[offset - 1] if offset > 0 else ""
        if (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            found = root.named_descendant_for_byte_range(byte - len(encode(before)), byte)
        else:
            found = root.named_descendant_for_byte_range(byte, byte)
        return found if found is not None else root

    def selection_ranges(
        self, offset: int, limit: int = MAX_SELECTION_LEVELS
    ) -> list[tuple[int, int]]:
        """Ranges of the enclosing syntax nodes at ``offset``, innermost first.

        Only named nodes count; a parent with the same range as its child is
        dropped. The last range is the whole document. At most ``limit``
        ranges (``limit >= 2``): in deeper nesting the innermost
        ``limit - 1`` and the whole document. Nested deeper than
        ``MAX_TREE_DEPTH``: the word, the line and the document.
        """
        ranges: list[tuple[int, int]] = []
        if self.depth_at(offset) > MAX_TREE_DEPTH:
            # Every step in a tree that deep costs a walk down from the root
            # (14 ms a position 15,000 levels down, on a loop that answers
            # nothing meanwhile): the word, the line and the document instead.
            return self._textual_ranges(offset)
        node: Node | None = self.node_at(offset)
        while node is not None and len(ranges) < max(1, limit - 1):
            span = self.node_range(node)
            if not ranges or ranges[-1] != span:
                ranges.append(span)
            node = node.parent
        whole = (0, len(self._text))
        if ranges[-1] != whole:
            ranges.append(whole)
        return ranges

    def _textual_ranges(self, offset: int) -> list[tuple[int, int]]:
        """The word at ``offset``, its line and the whole document, innermost first."""
        text = self._text
        offset = self.clamp(offset)
        start = end = offset
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
            start -= 1
        while end < len(text) and (text[end].isalnum() or text[end] == "_"):
            end += 1
        line_start = text.rfind("\n", 0, offset) + 1
        line_end = text.find("\n", offset)
        spans = [(start, end), (line_start, len(text) if line_end < 0 else line_end)]
        ranges: list[tuple[int, int]] = []
        for span in (*spans, (0, len(text))):
            if span[1] > span[0] and (not ranges or ranges[-1] != span):
                ranges.append(span)
        return ranges or [(offset, offset)]

    def completion_context(
        self,
        offset: int,
        others: Sequence[SyntaxDocument] = (),
        imported: Sequence[str] = (),
        related: Callable[[list[str]], Sequence[SyntaxDocument]] | None = None,
    ) -> CompletionContext:
        """Scope signature, imports and nearby definitions for a cursor.

        Definitions are those of identifiers used near the cursor, closest first,
        each looked up in this document, else in ``others`` (other open
        documents); the names this file imports (``imported``) that are not near
        the cursor follow them, since the next token may well be one. ``related``,
        given the names near the cursor that this document does not define,
        returns more documents to look in after ``others`` (workspace files).
        """
        offset = self.clamp(offset)
        if self.depth_at(offset) > MAX_TREE_DEPTH:
            return CompletionContext(None, [], [])  # see MAX_TREE_DEPTH
        byte = self.byte_offset(offset)
        own_label = "this"
        imports = [self._snippet(node, own_label, full=True) for node in self._import_nodes()]
        own = self.definitions_index()
        near = self._names_near(byte)
        if related is not None:
            others = [*others, *related([n for n in near if n not in own])]
        labelled = [
            (other, other.label or f"document {index + 1}")
            for index, other in enumerate(others)
            if other is not self
        ]
        # Closest names first, then the names this file imports, which the
        # next token may well be: each name's definitions come from this
        # document, else from the first other document (open, then workspace)
        # that defines it. A name at a time, so that a name far from the
        # cursor never crowds out a nearer one defined in another file, and a
        # few definitions per name, so that one method name defined in every
        # class of a file does not fill the list.
        nearby = set(near)
        names = [*near, *(n for n in imported if n not in nearby and n not in own)]
        seen: set[tuple[str, int]] = set()
        definitions: list[Snippet] = []
        for name in names:
            if len(definitions) >= _MAX_DEFINITIONS:
                break
            if name in own:
                found = _lookup(self, name, byte, own_label, seen)
            else:
                found = next(
                    (
                        _lookup(other, name, None, label, seen)
                        for other, label in labelled
                        if name in other.definitions_index()
                    ),
                    [],
                )
            definitions.extend(found)
        return CompletionContext(
            scope_signature=self._scope_signature(byte),
            imports=imports,
            definitions=definitions[:_MAX_DEFINITIONS],
        )

    def _scope_signature(self, byte: int) -> str | None:
        node: Node | None = self._tree.root_node.descendant_for_byte_range(byte, byte)
        headers: list[str] = []
        while node is not None:
            # A header being typed is not a scope yet (``def c`` parses as a
            # function whose parameters are the next line's class).
            if node.type in self._outline.scopes and not header_is_broken(node):
                headers.append(self._line_indent(node) + self.header(node))
            node = node.parent
        return "\n".join(reversed(headers)) if headers else None

    def _line_indent(self, node: Node) -> str:
        # Nested headers keep their indentation so the signature reads like code.
        line_start = self._data.rfind(b"\n", 0, node.start_byte) + 1
        prefix = self.slice_bytes(line_start, node.start_byte)
        return prefix if prefix.isspace() else ""

    def header(self, node: Node) -> str:
        """A definition's text up to its body: the signature of a function or class."""
        body = node.child_by_field_name("body")
        if body is None or body.start_byte <= node.start_byte:
            text = self.node_text(node)
            return text.split("\n", 1)[0].rstrip()
        return self.slice_bytes(node.start_byte, body.start_byte).rstrip()

    def _snippet(self, node: Node, source: str, *, full: bool) -> Snippet:
        if full:
            text = self.node_text(node)
        elif node.type in self._outline.functions:
            text = self.header(node)
        else:
            text = self.node_text(node)
            # A body being edited shows only its header, which stays put.
            if len(text) > _MAX_FULL_DEFINITION_CHARS or node.has_error:
                text = self.header(node)
        return Snippet(text=text, source=source, size=len(text))

    def _import_nodes(self) -> list[Node]:
        if self._imports is None:
            kinds = self._outline.imports
            self._imports = [c for c in self._tree.root_node.named_children if c.type in kinds]
        return self._imports

    def definitions_index(self) -> dict[str, list[Node]]:
        """Top-level definitions (and members of classes, impls, modules) by name."""
        if self._definitions is None:
            index: dict[str, list[Node]] = {}
            for node in _outline_nodes(self._tree.root_node, self._outline):
                for name_node in _definition_names(node):
                    index.setdefault(self.node_text(name_node), []).append(node)
            self._definitions = index
        return self._definitions

    def identifier_nodes(self, node: Node | None = None) -> list[Node]:
        """Identifier-like leaves under ``node`` (default: the whole tree), in source order."""
        cursor = QueryCursor(self._pool.identifier_query(self.language))
        found = cursor.captures(node if node is not None else self._tree.root_node)
        return sorted(found.get("name", []), key=lambda n: n.start_byte)

    def import_texts(self) -> list[str]:
        """The source text of each top-level import statement, in order."""
        return [self.node_text(node) for node in self._import_nodes()]

    def _names_near(self, byte: int) -> list[str]:
        low = max(0, byte - _WINDOW_BYTES_BEFORE)
        high = min(len(self._data), byte + _WINDOW_BYTES_AFTER)
        covering = self._tree.root_node.descendant_for_byte_range(low, high)
        if covering is not None and covering.child_count > _WIDE_NODE_CHILDREN:
            # Over a node with a great many children (200,000 `(` that error
            # recovery leaves side by side) the query costs seconds for the
            # window alone (32 s), holding the GIL: the window's words instead.
            return _words_near(self._data[low:high], byte - low)
        cursor = QueryCursor(self._pool.identifier_query(self.language))
        cursor.set_byte_range(low, high)
        nodes = cursor.captures(self._tree.root_node).get("name", [])
        nodes.sort(key=lambda n: abs(n.start_byte - byte))
        names: list[str] = []
        seen: set[str] = set()
        for node in nodes:
            name = self.node_text(node)
            if name not in seen:
                seen.add(name)
                names.append(name)
        return names


def _words_near(window: bytes, at: int) -> list[str]:
    """The identifier-like words of ``window``, closest to ``at`` first, each once."""
    found = sorted(_WORD.finditer(window), key=lambda m: abs(m.start() - at))
    return list(dict.fromkeys(m.group().decode("ascii") for m in found))


def _lookup(
    document: SyntaxDocument,
    name: str,
    cursor_byte: int | None,
    label: str,
    seen: set[tuple[str, int]],
) -> list[Snippet]:
    """Snippets of ``name``'s first few definitions in ``document`` not offered yet."""
    found: list[Snippet] = []
    for node in document.definitions_index().get(name, ()):
        if len(found) >= _DEFINITIONS_PER_NAME:
            break  # snippets are built per keystroke: none beyond what is kept
        # The definition the cursor is inside is already the scope signature.
        if cursor_byte is not None and node.start_byte <= cursor_byte <= node.end_byte:
            continue
        # A definition still being typed is no definition yet, and its text
        # would change with every keystroke there, and with it every other
        # place's prompt (read again from there on).
        if header_is_broken(node):
            continue
        key = (label, node.start_byte)
        if key in seen:
            continue
        seen.add(key)
        found.append(document._snippet(node, label, full=False))
    return found


def header_is_broken(node: Node) -> bool:
    """Whether a definition's text up to its body holds a parse error (code being typed).

    A definition without a body (an assignment, a ``const``, a type alias)
    shows its first line: that line is its header.
    """
    body = node.child_by_field_name("body")
    if body is None:
        return node.has_error and _first_line_broken(node, node.start_point[0])
    for child in node.children:
        if child.start_byte >= body.start_byte:
            return False
        if child.has_error or child.is_missing:
            return True
    return False


def _first_line_broken(node: Node, row: int) -> bool:
    """Whether a parse error or a missing token lies on line ``row`` of ``node``."""
    for child in node.children:
        if child.start_point[0] > row:
            return False
        if child.is_error or child.is_missing:
            return True
        # A value that goes on below (a dict, a lambda's body) is broken in its
        # header only where its own first-line part is.
        if child.has_error and _first_line_broken(child, row):
            return True
    return False


def _outline_nodes(root: Node, rules: Outline) -> Iterator[Node]:
    """Definitions at the top level, inside wrappers and up to two containers deep."""
    stack: list[tuple[Node, int]] = [(child, 0) for child in reversed(root.named_children)]
    while stack:
        node, level = stack.pop()
        if node.type in rules.wrappers:
            stack.extend((child, level) for child in reversed(node.named_children))
            continue
        if node.type in rules.definitions:
            yield node
        if node.type in rules.containers and level < 2:
            body = node.child_by_field_name("body")
            members = (body or node).named_children
            if body is None:
                # Go's `type (...)` groups have no body: their specs are the members.
                members = [m for m in members if m.type in rules.definitions]
            stack.extend((member, level + 1) for member in reversed(members))


def _definition_names(node: Node) -> list[Node]:
    """Name nodes a definition introduces (several for ``let a = 1, b = 2``)."""
    name = node.child_by_field_name("name")
    if name is not None:
        return [name] + [n for n in node.children_by_field_name("name") if n != name]
    names: list[Node] = []
    if node.type == "assignment":
        left = node.child_by_field_name("left")
        if left is not None and left.type == "identifier":
            names.append(left)
        return names
    for child in node.named_children:
        if child.type in ("variable_declarator", "const_spec", "var_spec"):
            inner = child.child_by_field_name("name")
            if inner is not None and inner.type == "identifier":
                names.append(inner)
    return names
