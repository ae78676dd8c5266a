"""Definitions from the files of the editor's workspace folders, open or not.

The language server hands over its workspace folders; completion then asks
for the workspace files that matter at a cursor: first those the current
file imports (resolved per language), then those defining the names near the
cursor that nothing open defines. Everything is lazy and bounded: the folder
walk stops at ``max_files`` source files, files over ``max_file_bytes`` or
holding NUL bytes or invalid UTF-8 are skipped, unreadable paths, permission
errors and symlink loops are skipped, and a file is re-read when its mtime or
size changes. The index of defined names is built on a background thread,
one small file at a time (tree-sitter holds the GIL while it parses); lookups
run on the caller's thread, which the engine keeps off the event loop.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from engine import languages
from engine.imports import ImportRef
from engine.syntax import ParserPool, SyntaxDocument

# Directories that hold tools' output, dependencies or VCS data, not the project's code.
SKIPPED_DIRECTORIES = frozenset(
    {
        ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "env",
        ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist",
        "target", "out", ".next", ".gradle", "vendor", "site-packages", ".eggs",
    }
)  # fmt: skip

# Languages whose files may import each other's definitions.
_ECMASCRIPT = frozenset({"javascript", "typescript", "tsx"})
_ES_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts")
# A name defined in more files than this says little about which one is meant.
_MAX_FILES_PER_NAME = 4
# A URI without an authority (scheme of two or more characters, then ':').
_OPAQUE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")


@dataclass(frozen=True)
class WorkspaceLimits:
    """Bounds on what the index reads; see ``CompletionSettings`` for each."""

    max_files: int = 2000
    max_file_bytes: int = 256 * 1024
    max_documents: int = 6
    cached_documents: int = 64
    refresh_seconds: float = 30.0


def path_from_uri(folder: str) -> Path | None:
    """A local path from a ``file://`` URI or a plain path; None for other schemes.

    A URI of another scheme may have no ``//`` (``untitled:Untitled-1``, VS
    Code's unsaved buffers); a one-letter "scheme" is a Windows drive letter.
    """
    if "://" not in folder:
        if not folder or _OPAQUE_URI.match(folder):
            return None
        return Path(folder)
    parsed = urlparse(folder)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(parsed.path))  # url2pathname decodes the %-escapes itself


def _family(language: str) -> str:
    return "ecmascript" if language in _ECMASCRIPT else language


@dataclass
class _Snapshot:
    """The source files found under the folders, and lookup tables over them."""

    roots: tuple[Path, ...]
    files: dict[Path, tuple[Path, str]]  # path -> (its root, its language)
    by_stem: dict[str, list[Path]] = field(default_factory=dict)
    python_modules: dict[str, list[Path]] = field(default_factory=dict)
    by_directory: dict[str, list[Path]] = field(default_factory=dict)
    taken_at: float = 0.0


def _add(table: dict[str, list[Path]], key: str, path: Path) -> None:
    entries = table.setdefault(key, [])
    if len(entries) < 16:
        entries.append(path)


def _scan(roots: Sequence[Path], limits: WorkspaceLimits, stop: threading.Event) -> _Snapshot:
    """Walk the folders (sorted, symlinked directories not followed) up to the limits."""
    snapshot = _Snapshot(tuple(roots), {}, taken_at=time.monotonic())
    # Entries visited, not only files kept: a huge tree of other files is bounded too.
    budget = limits.max_files * 20
    for root in roots:
        for directory, subdirs, names in os.walk(root, onerror=lambda _: None):
            if stop.is_set() or budget <= 0 or len(snapshot.files) >= limits.max_files:
                return snapshot
            budget -= len(subdirs) + len(names)
            if "pyvenv.cfg" in names:  # a virtualenv not named like one
                subdirs[:] = []
                continue
            subdirs[:] = sorted(
                d for d in subdirs if d not in SKIPPED_DIRECTORIES and not d.startswith(".")
            )
            base = Path(directory)
            for name in sorted(names):
                language = languages.resolve(None, name)
                if language is None:
                    continue
                path = base / name
                snapshot.files[path] = (root, language.id)
                _index_path(snapshot, root, path)
                if len(snapshot.files) >= limits.max_files:
                    return snapshot
    return snapshot


def _index_path(snapshot: _Snapshot, root: Path, path: Path) -> None:
    try:
        relative = path.relative_to(root)
    except ValueError:
        return
    stem = path.name.split(".", 1)[0]
    _add(snapshot.by_stem, stem, path)
    if stem == "mod" and path.suffix == ".rs":
        _add(snapshot.by_stem, path.parent.name, path)
    parts = list(relative.parent.parts)
    for depth in (1, 2):
        if len(parts) >= depth:
            _add(snapshot.by_directory, "/".join(parts[-depth:]), path)
    if path.suffix in (".py", ".pyi"):
        dotted = [*parts, stem] if stem != "__init__" else parts
        for start in range(len(dotted)):
            _add(snapshot.python_modules, ".".join(dotted[start:]), path)


class WorkspaceIndex:
    """Workspace files for completion context; thread-safe, lazy, bounded."""

    def __init__(self, pool: ParserPool, limits: WorkspaceLimits | None = None) -> None:
        self.limits = limits or WorkspaceLimits()
        self._pool = pool
        self._lock = threading.Lock()
        self._roots: tuple[Path, ...] = ()
        self._snapshot: _Snapshot | None = None
        self._generation = 0
        self._names: dict[str, list[Path]] = {}
        self._indexed: dict[Path, tuple[int, int, tuple[str, ...]]] = {}
        self._indexer: threading.Thread | None = None
        self._names_done_for = -1  # the generation whose name index is complete
        self._stop = threading.Event()
        self._documents: OrderedDict[Path, tuple[int, int, SyntaxDocument | None]] = OrderedDict()

    # -- folders ---------------------------------------------------------------

    @property
    def roots(self) -> tuple[Path, ...]:
        """The folders indexed now."""
        return self._roots

    def set_folders(self, folders: Iterable[str]) -> None:
        """Index these folders (file URIs or paths) from now on; others are forgotten."""
        roots: list[Path] = []
        for folder in folders:
            path = path_from_uri(folder)
            if path is not None and path not in roots:
                roots.append(path)
        with self._lock:
            if tuple(roots) == self._roots:
                return
            self._roots = tuple(roots)
            self._generation += 1
            self._snapshot = None
            self._names = {}
            self._indexed = {}
            self._documents.clear()

    def close(self) -> None:
        """Stop the background indexer."""
        self._stop.set()

    def label(self, path: Path) -> str:
        """How a file is named in the prompt: its path under its folder, after the folder's name."""
        for root in self._roots:
            try:
                return f"{root.name}/{path.relative_to(root).as_posix()}"
            except ValueError:
                continue
        return path.name

    def repo_name(self, path: Path | None) -> str | None:
        """The name of the folder holding ``path`` (else the first folder), for repo-level FIM."""
        for root in self._roots:
            if path is not None and path.is_relative_to(root):
                return root.name
        return self._roots[0].name if self._roots else None

    # -- lookups ---------------------------------------------------------------

    def _current_snapshot(self) -> _Snapshot | None:
        with self._lock:
            roots, snapshot, generation = self._roots, self._snapshot, self._generation
        if not roots:
            return None
        if snapshot is None:
            # The first lookup walks the folders itself (bounded): import
            # resolution needs only the file list, not the name index.
            snapshot = _scan(roots, self.limits, self._stop)
            with self._lock:
                if generation != self._generation:
                    return None
                self._snapshot = snapshot
        elif time.monotonic() - snapshot.taken_at > self.limits.refresh_seconds:
            self._start_indexer(rescan=True)
        self._start_indexer(rescan=False)
        return snapshot

    def related_documents(
        self,
        language: str,
        file_path: Path | None,
        imports: Sequence[ImportRef],
        names: Sequence[str],
        exclude: Iterable[Path] = (),
    ) -> list[SyntaxDocument]:
        """Parsed workspace files for a cursor: imported modules first, then definers of ``names``.

        ``exclude`` lists files whose open buffer supersedes the disk (the
        current file and the other open documents). Only files of the same
        language family are returned, at most ``limits.max_documents``.
        """
        snapshot = self._current_snapshot()
        if snapshot is None:
            return []
        skip = set(exclude)
        if file_path is not None:
            skip.add(file_path)
        family = _family(language)
        candidates: list[Path] = []

        def offer(paths: Iterable[Path]) -> None:
            for path in paths:
                entry = snapshot.files.get(path)
                if entry is None or path in skip or path in candidates:
                    continue
                if _family(entry[1]) == family:
                    candidates.append(path)

        for ref in imports:
            offer(self._resolve_import(snapshot, language, file_path, ref))
        with self._lock:
            by_name = [list(self._names.get(name, ())) for name in names]
        for paths in by_name:
            if len(paths) <= _MAX_FILES_PER_NAME:
                offer(paths)
        documents: list[SyntaxDocument] = []
        for path in candidates:
            if len(documents) >= self.limits.max_documents:
                break
            document = self._document(path, snapshot)
            if document is not None:
                documents.append(document)
        return documents

    def _resolve_import(
        self, snapshot: _Snapshot, language: str, file_path: Path | None, ref: ImportRef
    ) -> list[Path]:
        if language == "python":
            return _resolve_python(snapshot, file_path, ref)
        if _family(language) == "ecmascript":
            return _resolve_ecmascript(snapshot, file_path, ref)
        if language == "rust":
            segments = [s for s in ref.module.split("::") if s not in ("crate", "self", "super")]
            found: list[Path] = []
            for key in [*reversed(segments), *ref.names]:
                found.extend(snapshot.by_stem.get(key, ())[:2])
            return found
        if language == "go":
            parts = ref.module.strip("/").split("/")
            for depth in (2, 1):
                if len(parts) >= depth:
                    hits = snapshot.by_directory.get("/".join(parts[-depth:]))
                    if hits:
                        return [p for p in hits if not p.name.endswith("_test.go")]
            return []
        if language == "java":
            parts = ref.module.split(".")
            found = []
            for name in ref.names or (parts[-1],):
                hits = snapshot.by_stem.get(name, [])
                # Prefer the class file in the package's directory.
                hits = sorted(hits, key=lambda p: p.parent.name != parts[-1])
                found.extend(hits[:2])
            if not ref.names:
                found.extend(snapshot.by_directory.get("/".join(parts[-2:]), [])[:4])
            return found
        return []

    # -- reading ---------------------------------------------------------------

    def _document(self, path: Path, snapshot: _Snapshot) -> SyntaxDocument | None:
        """The parsed file, from the cache unless its mtime or size changed; None if unusable."""
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            cached = self._documents.get(path)
            if cached is not None and cached[:2] == stamp:
                self._documents.move_to_end(path)
                return cached[2]
        document: SyntaxDocument | None = None
        text = _read_source(path, info, self.limits.max_file_bytes)
        if text is not None:
            try:
                document = SyntaxDocument(
                    text, snapshot.files[path][1], pool=self._pool, label=self.label(path)
                )
            except Exception:  # a grammar failure costs this file, never the completion
                document = None
        with self._lock:
            self._documents[path] = (*stamp, document)
            self._documents.move_to_end(path)
            while len(self._documents) > self.limits.cached_documents:
                self._documents.popitem(last=False)
        return document

    # -- the background name index -----------------------------------------------

    def _start_indexer(self, *, rescan: bool) -> None:
        with self._lock:
            if self._indexer is not None and self._indexer.is_alive():
                return
            if not rescan and self._names_done_for == self._generation:
                return
            generation = self._generation
            thread = threading.Thread(
                target=self._index_names,
                args=(generation, rescan),
                name="workspace-index",
                daemon=True,
            )
            self._indexer = thread
        thread.start()

    def _index_names(self, generation: int, rescan: bool) -> None:
        """Record the names each file defines, one file at a time, until done or superseded."""
        with self._lock:
            roots, snapshot = self._roots, self._snapshot
        if rescan or snapshot is None:
            snapshot = _scan(roots, self.limits, self._stop)
        names: dict[str, list[Path]] = {}
        indexed: dict[Path, tuple[int, int, tuple[str, ...]]] = {}
        with self._lock:
            previous = dict(self._indexed)
        for path, (_, language) in snapshot.files.items():
            if self._stop.is_set() or generation != self._generation:
                return
            try:
                info = os.stat(path)
            except (OSError, ValueError):
                continue
            old = previous.get(path)
            if old is not None and old[:2] == (info.st_mtime_ns, info.st_size):
                defined = old[2]
            else:
                defined = _defined_names(path, info, language, self._pool, self.limits)
            indexed[path] = (info.st_mtime_ns, info.st_size, defined)
            for name in defined:
                entries = names.setdefault(name, [])
                if len(entries) <= _MAX_FILES_PER_NAME:
                    entries.append(path)
            time.sleep(0)  # let other threads (the event loop's) take the GIL
        with self._lock:
            if generation == self._generation:
                self._snapshot = snapshot
                self._names = names
                self._indexed = indexed
                self._names_done_for = generation

    def indexed_names(self) -> int:
        """How many distinct names the background index holds (for tests and status)."""
        with self._lock:
            return len(self._names)

    def wait_indexed(self, timeout: float) -> bool:
        """Wait for the background indexer to finish (tests); True when it has."""
        thread = self._indexer
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            return self._names_done_for == self._generation


def _read_source(path: Path, info: os.stat_result, max_bytes: int) -> str | None:
    """The file's text, or None for anything that is not a small UTF-8 text file."""
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except (OSError, ValueError):
        return None
    if len(data) > max_bytes or b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _defined_names(
    path: Path, info: os.stat_result, language: str, pool: ParserPool, limits: WorkspaceLimits
) -> tuple[str, ...]:
    text = _read_source(path, info, limits.max_file_bytes)
    if text is None:
        return ()
    try:
        document = SyntaxDocument(text, language, pool=pool)
        return tuple(document.definitions_index())
    except Exception:  # one bad file never stops the index
        return ()


def _resolve_python(snapshot: _Snapshot, file_path: Path | None, ref: ImportRef) -> list[Path]:
    parts = [p for p in ref.module.split(".") if p]
    if ref.level > 0:
        if file_path is None:
            return []
        base = file_path.parent
        for _ in range(ref.level - 1):
            base = base.parent
        target = base.joinpath(*parts)
        found = [target.with_name(target.name + ".py"), target / "__init__.py"] if parts else []
        if not parts:
            found.append(base / "__init__.py")
        found += [target / f"{name}.py" for name in ref.names]
        found += [target / name / "__init__.py" for name in ref.names]
        return [p for p in found if p in snapshot.files]
    found = list(snapshot.python_modules.get(ref.module, ())[:2])
    for name in ref.names:
        found.extend(snapshot.python_modules.get(f"{ref.module}.{name}", ())[:1])
    return found


def _resolve_ecmascript(snapshot: _Snapshot, file_path: Path | None, ref: ImportRef) -> list[Path]:
    if not ref.module.startswith(".") or file_path is None:
        return []  # a package from node_modules, which is not indexed
    base = Path(os.path.normpath(file_path.parent / ref.module))
    stems = [base]
    if base.suffix in (".js", ".jsx", ".mjs", ".cjs"):
        stems.append(base.with_suffix(""))  # TypeScript imports `./x.js` for `./x.ts`
    found: list[Path] = []
    for stem in stems:
        if stem in snapshot.files:
            found.append(stem)
        found += [stem.with_name(stem.name + ext) for ext in _ES_EXTENSIONS]
        found += [stem / f"index{ext}" for ext in _ES_EXTENSIONS]
    return [p for p in found if p in snapshot.files][:2]
