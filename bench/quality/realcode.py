"""Holes in real source files of every supported language, judged by text.

Files come from packages on disk (``fetch_sources.sh`` installs them):
Python from this interpreter's site-packages, JavaScript and TypeScript from
npm packages, Rust from Debian's ``librust-*-dev`` crate sources, Go from
``golang-*-dev``, Java from the JDK's sources (``openjdk-17-source``). Splits,
as in Tabby's and llm-ls's evaluations:

- ``real_line_end``: from a point inside a line to its end;
- ``real_line``: a line's text after its indentation (the cursor after it);
- ``real_block``: two to five lines from the first one's indentation on.

Choice is seeded by the file's relative path, so it does not depend on which
other files are there.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import sysconfig
import tokenize
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.quality.holes import Hole

REAL_SPLITS: tuple[str, ...] = ("real_line_end", "real_line", "real_block")

PYTHON_PACKAGES = ("httpx", "starlette", "click", "pygls", "jinja2", "packaging")
_COMMENT_STARTS = ("#", "//", "/*", "*", "--", '"""', "'''")
_MAX_FILE_CHARS = 120_000


def _files(language: str, sources: Path | None) -> list[tuple[Path, Path]]:
    """(root, file) pairs of one language's source files, sorted."""
    found: list[tuple[Path, Path]] = []

    def add(root: Path, pattern: str, skip: Sequence[str] = ()) -> None:
        if not root.is_dir():
            return
        for path in sorted(root.rglob(pattern)):
            name = path.name
            if any(part in name for part in skip) or not path.is_file():
                continue
            found.append((root, path))

    npm = (sources / "npm" / "node_modules") if sources else None
    if language == "python":
        purelib = Path(sysconfig.get_paths()["purelib"])
        for package in PYTHON_PACKAGES:
            add(purelib / package, "*.py", ("test",))
    elif language == "javascript" and npm is not None:
        for package in ("axios/lib", "express/lib"):
            add(npm / package, "*.js", (".min.",))
    elif language == "typescript" and npm is not None:
        for package in ("rxjs/src", "immer/src"):
            add(npm / package, "*.ts", (".d.ts", ".spec."))
    elif language == "rust":
        add(Path("/usr/share/cargo/registry"), "*.rs", ("test",))
    elif language == "go":
        add(Path("/usr/share/gocode/src"), "*.go", ("_test.go",))
    elif language == "java" and sources is not None:
        add(sources / "java", "*.java")
    return found


def _code_line(line: str) -> bool:
    """A line worth a hole: long enough, not a comment, with some syntax (not prose)."""
    stripped = line.strip()
    return (
        len(stripped) >= 6
        and not stripped.startswith(_COMMENT_STARTS)
        and any(char in stripped for char in "=()[]{};")
    )


def _hole(text: str, split: str, rng: random.Random) -> tuple[int, int] | None:
    """(start, end) of the hole in ``text``, or None when the file has no room."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    # Leave some prefix: the first lines of a file are licence and imports.
    candidates = [i for i in range(len(lines)) if i >= 5 and _code_line(lines[i])]
    if not candidates:
        return None
    index = rng.choice(candidates)
    line = lines[index].rstrip("\r\n")
    indent = len(line) - len(line.lstrip())
    start = starts[index] + indent
    if split == "real_line_end":
        body = len(line) - indent
        start = starts[index] + indent + rng.randrange(1, body)
        return start, starts[index] + len(line)
    if split == "real_line":
        return start, starts[index] + len(line)
    if split == "real_block":
        count = min(rng.randint(2, 5), len(lines) - index)
        if count < 2:
            return None
        last = lines[index + count - 1].rstrip("\r\n")
        return start, starts[index + count - 1] + len(last)
    raise ValueError(f"unknown split {split!r}")


def real_code_holes(
    languages: Sequence[str],
    per_split: int,
    sources: Path | None,
    splits: Sequence[str] = REAL_SPLITS,
    seed: int = 0,
) -> list[Hole]:
    """``per_split`` holes for each language and split, from different files where possible."""
    holes: list[Hole] = []
    for language in languages:
        files = _files(language, sources)
        if not files:
            print(f"  no {language} sources found (see fetch_sources.sh)")
            continue
        for split in splits:
            holes += list(_holes_of(language, split, files, per_split, seed))
    return holes


def _holes_of(
    language: str, split: str, files: list[tuple[Path, Path]], count: int, seed: int
) -> Iterator[Hole]:
    order = sorted(
        files,
        key=lambda f: hashlib.sha256(f"{seed}:{split}:{f[1].relative_to(f[0])}".encode()).digest(),
    )
    made = 0
    for root, path in order:
        if made >= count:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) > _MAX_FILE_CHARS or "\r" in text:
            continue
        if "DO NOT EDIT" in text[:2000] or "@generated" in text[:2000]:
            continue  # generated code says little about completing code
        relative = str(path.relative_to(root))
        digest = hashlib.sha256(f"{seed}:{split}:{relative}".encode()).digest()
        found = _hole(text, split, random.Random(int.from_bytes(digest[:8], "big")))
        if found is None:
            continue
        start, end = found
        if not text[start:end].strip():
            continue
        made += 1
        yield Hole(
            sample_id=f"{language}/{relative}/{split}",
            split=split,
            language=language,
            file_path=f"{root.name}/{relative}",
            prefix=text[:start],
            suffix=text[end:],
            expected=text[start:end],
        )


_DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w{4,})", re.MULTILINE)
_NAME = re.compile(r"\b[A-Za-z_]\w{4,}\b")


def cross_file_holes(count: int, seed: int = 0) -> list[Hole]:
    """Python holes whose answer starts with a name defined in another file of the package.

    The hole runs from that name to the end of its line; the file defining the
    name comes with the hole (``Hole.files``), as an editor would have it open.
    """
    purelib = Path(sysconfig.get_paths()["purelib"])
    holes: list[Hole] = []
    for package in PYTHON_PACKAGES:
        root = purelib / package
        if not root.is_dir():
            continue
        texts: dict[Path, str] = {}
        for path in sorted(root.rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if len(text) <= _MAX_FILE_CHARS and "\r" not in text:
                texts[path] = text
        defined: dict[str, Path] = {}
        for path, text in texts.items():
            for name in _DEFINITION.findall(text):
                defined.setdefault(name, path)
        for path in sorted(
            texts, key=lambda p: hashlib.sha256(f"{seed}:x:{p.relative_to(root)}".encode()).digest()
        ):
            hole = _cross_file_hole(root, path, texts, defined)
            if hole is not None:
                holes.append(hole)
    rng = random.Random(seed)
    rng.shuffle(holes)
    return sorted(holes[:count], key=lambda h: h.sample_id)


def _code_names(text: str) -> set[tuple[int, int]]:
    """(line index, column) of every name token of Python code: none in strings or comments."""
    try:
        return {
            (token.start[0] - 1, token.start[1])
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type == tokenize.NAME
        }
    except (tokenize.TokenError, SyntaxError):
        return set()


def _cross_file_hole(
    root: Path, path: Path, texts: dict[Path, str], defined: dict[str, Path]
) -> Hole | None:
    text = texts[path]
    own = set(_DEFINITION.findall(text))
    # A name in a docstring or a message is prose: only code names count.
    code_names = _code_names(text)
    offset = 0
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        start = offset
        offset += len(line)
        if index < 5 or not _code_line(line) or line.lstrip().startswith(("import ", "from ")):
            continue
        for match in _NAME.finditer(line):
            name = match.group()
            other = defined.get(name)
            if other is None or other == path or name in own:
                continue
            if (index, match.start()) not in code_names:
                continue
            before = line[: match.start()].rstrip()
            if before.endswith(".") or before.endswith(("def", "class")):
                continue  # an attribute, or a definition of the name here
            body = line.rstrip("\n")
            relative = str(path.relative_to(root))
            return Hole(
                sample_id=f"python/{root.name}/{relative}/cross_file",
                split="cross_file",
                language="python",
                file_path=f"{root.name}/{relative}",
                prefix=text[: start + match.start()],
                suffix=text[start + len(body) :],
                expected=body[match.start() :],
                files=((f"{root.name}/{other.relative_to(root)}", texts[other]),),
                workspace_root=str(root),
            )
    return None
