"""Open documents: text, version and an incrementally re-parsed syntax tree.

The language server feeds edits here; completion and refactoring read the
trees. Offsets are Python string indexes (code points); the faces convert
their own position encodings before calling in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from engine import languages
from engine.completion.ring import ChunkRing, lines_around
from engine.config import CompletionSettings
from engine.errors import InvalidRequestError
from engine.imports import imported_names, parse_imports
from engine.syntax import CompletionContext, ParserPool, Snippet, SyntaxDocument
from engine.workspace import WorkspaceIndex, WorkspaceLimits, path_from_uri


class CursorRequest(Protocol):
    """What context building needs from a request."""

    @property
    def code(self) -> str:
        """The document text."""

    @property
    def cursor(self) -> int:
        """The cursor offset."""

    @property
    def language(self) -> str | None:
        """The canonical language name, if known."""


@dataclass
class OpenDocument:
    """One open document."""

    uri: str
    text: str
    version: int
    language: str | None
    syntax: SyntaxDocument | None
    language_id: str | None = None  # as the editor named it


# Documents beyond this size are kept as text only: parsing them on every
# keystroke would cost more than their context is worth.
MAX_PARSED_CHARS = 2_000_000

# A request's own code (not an open document) is parsed around the cursor
# only: this much before it and after it, at line boundaries. The parser
# holds the GIL while it runs, so its input bounds how long every other
# request waits; the prompt itself never uses more than a few kilobytes.
REQUEST_PARSE_BEFORE_CHARS = 24 * 1024
REQUEST_PARSE_AFTER_CHARS = 8 * 1024


def parse_window(code: str, cursor: int) -> tuple[str, int]:
    """The part of ``code`` around ``cursor`` that a request parses, and the cursor in it."""
    if len(code) <= REQUEST_PARSE_BEFORE_CHARS + REQUEST_PARSE_AFTER_CHARS:
        return code, cursor
    start = 0
    if cursor > REQUEST_PARSE_BEFORE_CHARS:
        start = code.rfind("\n", 0, cursor - REQUEST_PARSE_BEFORE_CHARS) + 1
    end = code.find("\n", min(len(code), cursor + REQUEST_PARSE_AFTER_CHARS))
    end = len(code) if end < 0 else end
    return code[start:end], cursor - start


class DocumentStore:
    """The engine's view of the documents an editor has open; thread-safe.

    Beside the open documents it keeps the editor's workspace folders (files
    that are not open still define names) and the ring of recently viewed and
    edited chunks. Both serve editor documents only: a REST caller's code
    never sees the editor's files.
    """

    def __init__(self, settings: CompletionSettings | None = None) -> None:
        settings = settings or CompletionSettings()
        self._docs: dict[str, OpenDocument] = {}
        self._lock = threading.Lock()
        self.parsers = ParserPool()
        self.workspace = WorkspaceIndex(
            self.parsers,
            WorkspaceLimits(
                max_files=settings.workspace_max_files,
                max_file_bytes=settings.workspace_max_file_kb * 1024,
                max_documents=settings.workspace_max_documents,
            ),
        )
        self.ring = ChunkRing(settings.ring_chunks, settings.ring_chunk_lines)
        self._last_requested: str | None = None

    def set_workspace_folders(self, folders: Iterable[str]) -> None:
        """The editor's workspace folders (file URIs or paths); replaces the previous ones.

        A folder taken out of the workspace takes its files' ring chunks with
        it: code of a project the editor closed is not context for this one.
        """
        before = self.workspace.roots
        self.workspace.set_folders(folders if self.workspace.limits.max_files > 0 else ())
        gone = [root for root in before if root not in self.workspace.roots]
        if gone:

            def under_gone(source: str) -> bool:
                path = path_from_uri(source)
                return path is not None and any(path.is_relative_to(root) for root in gone)

            self.ring.drop(under_gone)

    @property
    def reads_files(self) -> bool:
        """True when context building may read workspace files (so it must run on a thread)."""
        return bool(self.workspace.roots)

    def close_all(self) -> None:
        """Stop background work (the workspace indexer)."""
        self.workspace.close()

    @staticmethod
    def resolve_language(language: str | None, file_path: str | None) -> str | None:
        """Canonical language from an id (LSP or API) or, failing that, a file name."""
        found = languages.resolve(language, file_path)
        return found.id if found is not None else None

    def _parse(
        self, text: str, language: str | None, label: str | None = None
    ) -> SyntaxDocument | None:
        if language is None or len(text) > MAX_PARSED_CHARS:
            return None
        return self.parsers.document(text, language, label=label)

    def open(self, uri: str, text: str, version: int, language_id: str | None) -> OpenDocument:
        """Start tracking a document (replacing any previous state)."""
        language = self.resolve_language(language_id, uri)
        doc = OpenDocument(
            uri, text, version, language, self._parse(text, language, uri), language_id
        )
        with self._lock:
            self._docs[uri] = doc
        # An editor shows a file from its top when it opens it.
        self.ring.note(uri, text, 0)
        return doc

    def edit(self, uri: str, start: int, end: int, new_text: str, version: int) -> OpenDocument:
        """Apply one edit (offsets into the current text) and re-parse incrementally."""
        with self._lock:
            doc = self._docs.get(uri)
        if doc is None:
            raise InvalidRequestError("textDocument.uri", f"document {uri} is not open")
        start = max(0, min(start, len(doc.text)))
        end = max(start, min(end, len(doc.text)))
        doc.text = doc.text[:start] + new_text + doc.text[end:]
        doc.version = version
        if doc.syntax is not None and len(doc.text) <= MAX_PARSED_CHARS:
            doc.syntax.apply_edit(start, end, new_text)
        else:
            doc.syntax = self._parse(doc.text, doc.language, uri)
        if len(doc.text) <= MAX_PARSED_CHARS:
            self.ring.note_edit(uri, doc.text, start)
        return doc

    def replace(self, uri: str, text: str, version: int) -> OpenDocument:
        """Replace the whole text of a document."""
        with self._lock:
            doc = self._docs.get(uri)
        if doc is None:
            return self.open(uri, text, version, None)
        doc.text = text
        doc.version = version
        doc.syntax = self._parse(text, doc.language, uri)
        return doc

    def close(self, uri: str) -> None:
        """Stop tracking a document."""
        with self._lock:
            self._docs.pop(uri, None)

    def get(self, uri: str) -> OpenDocument | None:
        """An open document, or None."""
        with self._lock:
            return self._docs.get(uri)

    def others(self, uri: str | None) -> list[SyntaxDocument]:
        """Syntax trees of the other open documents (for cross-file definitions)."""
        with self._lock:
            return [d.syntax for d in self._docs.values() if d.uri != uri and d.syntax]

    def completion_context(
        self, uri: str | None, request: CursorRequest, other_files: bool = True
    ) -> CompletionContext | None:
        """Tree-sitter context at the request's cursor.

        Uses the open document's tree when the request is about it (an editor);
        otherwise parses the request's code around the cursor (a REST call).
        Without ``other_files`` only the document itself is context: no other
        open document's or workspace file's definitions, no ring chunks of them.
        """
        if request.language is None:
            return None
        doc = self.get(uri) if uri is not None else None
        cursor = request.cursor
        if doc is not None and doc.syntax is not None and doc.text == request.code:
            syntax = doc.syntax
        else:
            text, cursor = parse_window(request.code, request.cursor)
            parsed = self._parse(text, request.language)
            if parsed is None:
                return None
            syntax = parsed
        refs = parse_imports(syntax.language, syntax.import_texts())
        others = self.others(uri) if other_files else []
        if doc is None or uri is None:
            return syntax.completion_context(cursor, others, imported_names(refs))
        path = path_from_uri(uri)
        related = None
        if self.workspace.roots and other_files:
            with self._lock:
                open_paths = [p for p in map(path_from_uri, self._docs) if p is not None]

            def related(names: list[str]) -> list[SyntaxDocument]:
                return self.workspace.related_documents(
                    syntax.language, path, refs, names, exclude=open_paths
                )

        context = syntax.completion_context(cursor, others, imported_names(refs), related)
        return replace(
            context,
            chunks=self._ring_snippets(uri, request.code, request.cursor, other_files),
            repo_name=self.workspace.repo_name(path),
            file_label=self.workspace.label(path) if path is not None else None,
        )

    def _ring_snippets(
        self, uri: str, code: str, cursor: int, other_files: bool = True
    ) -> list[Snippet]:
        """Ring chunks for a cursor in an open document; a document switched to adds one."""
        line = code.count("\n", 0, cursor)
        with self._lock:
            previous = self._last_requested
            switched = previous != uri
            self._last_requested = uri
            left = self._docs.get(previous) if switched and previous is not None else None
        if switched:
            # The file left shows, in the prompts from here on, as it is now.
            if previous is not None and left is not None and len(left.text) <= MAX_PARSED_CHARS:
                self.ring.leave(previous, left.text)
            self.ring.revisit(uri, code, line)
        _, around = lines_around(code, line, self.ring.chunk_lines)
        snippets = []
        for chunk in self.ring.offered(around):
            if chunk.source != uri and not other_files:
                continue
            if chunk.source == uri and (
                chunk.start_line <= line < chunk.start_line + chunk.text.count("\n")
            ):
                # This document's own chunk around the cursor: the prompt's
                # windows show that region as it is now, and the chunk shows
                # it as it was, the line being typed as if finished (after the
                # cursor, where a prompt without a suffix shows nothing).
                continue
            path = path_from_uri(chunk.source)
            label = self.workspace.label(path) if path is not None else chunk.source
            snippets.append(Snippet(text=chunk.text, source=label, size=len(chunk.text)))
        return snippets
