"""What a file imports: module paths and imported names, per language.

The workspace index resolves these to the files that define them, and the
completion context looks the imported names up there first. Input is the
text of the import statements tree-sitter found (``Outline.imports``), so a
string or comment that merely looks like an import is never read. Parsing is
lexical and forgiving: anything not understood is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ImportRef:
    """One imported module: its path as written, the names taken from it, its relative level.

    ``level`` counts Python's leading dots (``from ..x import y`` is 2); for
    JavaScript and TypeScript a specifier starting with ``.`` is relative and
    kept whole in ``module``.
    """

    module: str
    names: tuple[str, ...] = ()
    level: int = 0


_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_PY_FROM = re.compile(r"^\s*from\s+(\.*)([\w.]*)\s+import\s+(.+)$", re.DOTALL)
_PY_IMPORT = re.compile(r"^\s*import\s+(.+)$", re.DOTALL)
_ES_FROM = re.compile(r"""^\s*(?:import|export)\s+(.*?)\s*from\s*['"]([^'"]+)['"]""", re.DOTALL)
_ES_BARE = re.compile(r"""^\s*import\s*['"]([^'"]+)['"]""")
_GO_PATH = re.compile(r"""(?:^|[\s(])(?:([A-Za-z_.]\w*)\s+)?"([^"]+)\"""")
_JAVA = re.compile(r"^\s*import\s+(?:static\s+)?([\w.]+?)(?:\.(\*|\w+))?\s*;")


def _names(text: str) -> tuple[str, ...]:
    """Original names of ``a as b, c``-style lists (the alias is local; the name is defined)."""
    found: list[str] = []
    for part in text.replace("(", " ").replace(")", " ").split(","):
        words = part.split()
        if len(words) > 1 and words[0] == "type":  # TypeScript's `{ type A }`
            words = words[1:]
        if words and words[0] != "*" and _IDENT.fullmatch(words[0]):
            found.append(words[0])
    return tuple(found)


def _python(text: str) -> list[ImportRef]:
    # A backslash continuation is one statement; comments inside parentheses are not names.
    text = re.sub(r"#[^\n]*", "", text).replace("\\\n", " ")
    match = _PY_FROM.match(text)
    if match:
        return [ImportRef(match.group(2), _names(match.group(3)), len(match.group(1)))]
    match = _PY_IMPORT.match(text)
    if not match:
        return []
    refs = []
    for part in match.group(1).split(","):
        words = part.split()
        if words and re.fullmatch(r"[\w.]+", words[0]):
            refs.append(ImportRef(words[0]))
    return refs


def _ecmascript(text: str) -> list[ImportRef]:
    match = _ES_FROM.match(text)
    if match is None:
        bare = _ES_BARE.match(text)
        return [ImportRef(bare.group(1))] if bare else []
    clause, module = match.group(1), match.group(2)
    names: list[str] = []
    braces = re.search(r"\{(.*?)\}", clause, re.DOTALL)
    if braces:
        names.extend(_names(braces.group(1)))
        clause = clause[: braces.start()] + clause[braces.end() :]
    for part in clause.split(","):
        words = part.split()
        # `import Default from`, `import type Foo from`; `* as ns` names nothing defined.
        words = [w for w in words if w != "type"]
        if words and words[0] != "*" and _IDENT.fullmatch(words[0]):
            names.append(words[0])
    return [ImportRef(module, tuple(names))]


def _rust(text: str) -> list[ImportRef]:
    body = text.strip()
    if not body.startswith(("use ", "pub use ", "pub(crate) use ")):
        return []
    body = body.split("use ", 1)[1].rstrip(";").strip()
    refs: list[ImportRef] = []
    _rust_tree(body, [], refs)
    return refs


def _rust_tree(body: str, base: list[str], refs: list[ImportRef]) -> None:
    """Flatten ``a::b::{c, d::{e, F}}`` into one ref per leaf (bounded by the text)."""
    brace = body.find("{")
    if brace < 0:
        segments = [s.strip() for s in body.split(" as ", maxsplit=1)[0].split("::") if s.strip()]
        path = base + segments
        if path and path[-1] not in ("*", "self"):
            refs.append(ImportRef("::".join(path[:-1]), (path[-1],)))
        elif len(path) > 1:
            refs.append(ImportRef("::".join(path[:-1])))
        return
    head = [s.strip() for s in body[:brace].split("::") if s.strip()]
    inner = body[brace + 1 : body.rfind("}")]
    depth, start = 0, 0
    for index, char in enumerate(inner + ","):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            part = inner[start:index].strip()
            if part:
                _rust_tree(part, base + head, refs)
            start = index + 1


def _go(text: str) -> list[ImportRef]:
    return [ImportRef(m.group(2)) for m in _GO_PATH.finditer(text)]


def _java(text: str) -> list[ImportRef]:
    match = _JAVA.match(text)
    if match is None:
        return []
    member = match.group(2)
    if member is None or member == "*":
        return [ImportRef(match.group(1))]
    return [ImportRef(match.group(1), (member,))]


_PARSERS = {
    "python": _python,
    "javascript": _ecmascript,
    "typescript": _ecmascript,
    "tsx": _ecmascript,
    "rust": _rust,
    "go": _go,
    "java": _java,
}


def parse_imports(language: str, statements: Iterable[str]) -> list[ImportRef]:
    """The imports of ``statements`` (texts of import nodes) in ``language``, in order."""
    parser = _PARSERS.get(language)
    if parser is None:
        return []
    refs: list[ImportRef] = []
    for statement in statements:
        # A pathological statement is not worth parsing: imports are short.
        if len(statement) <= 4096:
            refs.extend(parser(statement))
    return refs


def imported_names(refs: Iterable[ImportRef]) -> list[str]:
    """The names the imports bring in, first occurrence first."""
    seen: set[str] = set()
    names: list[str] = []
    for ref in refs:
        for name in ref.names:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names
