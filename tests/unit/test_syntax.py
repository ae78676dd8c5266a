"""Syntax engine: language resolution, incremental re-parsing, selection ranges, context."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from tree_sitter import Node, Tree

from engine.errors import InvalidRequestError, UnsupportedLanguageError
from engine.syntax import (
    LANGUAGES,
    MAX_TREE_DEPTH,
    ParserPool,
    SyntaxDocument,
    resolve_language,
)

SAMPLES = {
    "rust": (
        "use std::collections::HashMap;\n\n"
        "struct Größe { breite: u32 }\n\n"
        "fn fläche(g: &Größe) -> u32 {\n    let doppelt = g.breite * 2;\n    doppelt + 1\n}\n"
    ),
    "python": (
        "import os\nfrom typing import Any\n\n\n"
        "class Größe:\n    def fläche(self, breite):\n        return breite * 2  # ½\n"
    ),
    "typescript": (
        'import { x } from "./x";\n\n'
        "function größe(a: number): number {\n  const b = a * 2; // ½\n  return b + x;\n}\n"
    ),
    "tsx": (
        'import React from "react";\n\n'
        'function Größe({ a }: { a: number }) {\n  return <div title="½">{a * 2}</div>;\n}\n'
    ),
    "javascript": (
        'import { x } from "./x.js";\n\nfunction größe(a) {\n  const b = a * 2; // ½\n'
        "  return b + x;\n}\n"
    ),
    "go": (
        'package main\n\nimport "fmt"\n\nfunc größe(a int) int {\n\tb := a * 2 // ½\n'
        "\tfmt.Println(b)\n\treturn b\n}\n"
    ),
    "java": (
        "import java.util.List;\n\nclass Größe {\n    int fläche(int a) {\n"
        "        int b = a * 2; // ½\n        return b;\n    }\n}\n"
    ),
}


def shape(tree: Tree) -> list[tuple[str, int, int]]:
    """Every node's kind and byte range, to compare two trees exactly."""
    nodes: list[tuple[str, int, int]] = []
    stack: list[Node] = [tree.root_node]
    while stack:
        node = stack.pop()
        nodes.append((node.type, node.start_byte, node.end_byte))
        stack.extend(reversed(node.children))
    return nodes


# ------------------------------------------------------------------ languages


@pytest.mark.parametrize(
    ("language_id", "path", "expected"),
    [
        ("rust", None, "rust"),
        ("RS", None, "rust"),
        ("py", None, "python"),
        ("python3", None, "python"),
        ("typescriptreact", None, "tsx"),
        ("javascriptreact", None, "javascript"),
        ("golang", None, "go"),
        ("java", None, "java"),
        (None, "src/main.rs", "rust"),
        (None, "C:\\work\\App.TSX", "tsx"),
        (None, "lib/util.mjs", "javascript"),
        ("plaintext", "pkg/server.go", "go"),
        ("markdown", "README.md", None),
        (None, None, None),
        (None, ".gitignore", None),
    ],
)
def test_resolve_language(language_id: str | None, path: str | None, expected: str | None) -> None:
    assert resolve_language(language_id, path) == expected


def test_every_language_parses_its_sample() -> None:
    assert set(SAMPLES) == set(LANGUAGES)
    pool = ParserPool()
    for language, text in SAMPLES.items():
        document = pool.document(text, language)
        assert not document.tree.root_node.has_error, language


def test_unsupported_language_is_a_typed_error() -> None:
    with pytest.raises(UnsupportedLanguageError) as raised:
        SyntaxDocument("x", "cobol")
    assert raised.value.http_status == 400


def test_parser_pool_keeps_one_parser_per_language_per_pool() -> None:
    pool = ParserPool()
    first = pool._parser("rust")
    assert pool._parser("rust") is first
    assert ParserPool()._parser("rust") is not first  # no hidden module-level sharing


# --------------------------------------------------------------- incremental


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_incremental_edits_match_a_full_parse(language: str) -> None:
    rng = random.Random(f"edits-{language}")
    pool = ParserPool()
    document = pool.document(SAMPLES[language], language)
    insertions = ["x", "ö", " ", "\n", "(", "}", "½", "𝔘", "let ", "// c\n"]
    for _ in range(60):
        text = document.text
        start = rng.randint(0, len(text))
        end = min(len(text), start + rng.choice([0, 0, 1, 2, 5]))
        inserted = rng.choice([*insertions, ""])
        document.apply_edit(start, end, inserted)
        assert document.text == text[:start] + inserted + text[end:]
        fresh = pool.parse(language, document.text.encode("utf-8"))
        assert shape(document.tree) == shape(fresh)


def test_apply_edit_converts_code_points_to_bytes() -> None:
    document = SyntaxDocument("x = 'größe'\ny = 1\n", "python")
    start = document.text.index("1")
    document.apply_edit(start, start + 1, "22")
    assert document.text == "x = 'größe'\ny = 22\n"
    number = document.tree.root_node.named_descendant_for_byte_range(
        document.byte_offset(start), document.byte_offset(start + 2)
    )
    assert number is not None and document.node_text(number) == "22"
    assert document.version == 1


def test_offsets_round_trip_through_bytes() -> None:
    text = "a = 'größe'\n# 𝔘 ½\nb = 'ü'\n"
    document = SyntaxDocument(text, "python")
    # The first conversions are computed directly, later ones through the line index.
    for offset in range(len(text) + 1):
        byte = document.byte_offset(offset)
        assert byte == len(text[:offset].encode("utf-8"))
        assert document.char_offset(byte) == offset


def test_apply_edit_validates_and_clamps() -> None:
    document = SyntaxDocument("a = 1\n", "python")
    with pytest.raises(InvalidRequestError) as raised:
        document.apply_edit(-1, 0, "x")
    assert raised.value.field == "start"
    with pytest.raises(InvalidRequestError):
        document.apply_edit(3, 2, "x")
    document.apply_edit(100, 200, "b = 2\n")
    assert document.text == "a = 1\nb = 2\n"


def test_set_text_replaces_everything() -> None:
    document = SyntaxDocument("a = 1\n", "python")
    document.set_text("def f():\n    pass\n")
    assert document.tree.root_node.named_children[0].type == "function_definition"


# ----------------------------------------------------------- selection ranges


def test_selection_ranges_grow_outwards_without_duplicates() -> None:
    code = "fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }"
    document = SyntaxDocument(code, "rust")
    ranges = document.selection_ranges(code.index("x > y"))
    texts = [code[a:b] for a, b in ranges]
    assert texts[:3] == ["x", "x > y", "if x > y { x } else { y }"]
    assert ranges[-1] == (0, len(code))
    assert len(set(ranges)) == len(ranges)
    for inner, outer in pairwise(ranges):
        assert outer[0] <= inner[0] and inner[1] <= outer[1] and inner != outer


def test_selection_ranges_use_code_points_and_word_end_cursor() -> None:
    code = "def f(größe):\n    return größe + 1\n"
    document = SyntaxDocument(code, "python")
    at_end = code.index("größe +") + len("größe")
    ranges = document.selection_ranges(at_end)
    assert code[ranges[0][0] : ranges[0][1]] == "größe"
    assert code[ranges[1][0] : ranges[1][1]] == "größe + 1"
    assert document.selection_ranges(10_000)[-1] == (0, len(code))


# ---------------------------------------------------------- completion context


def test_completion_context_python() -> None:
    helper = SyntaxDocument(
        "def normalise(text):\n    return text.strip()\n\n\nLIMIT = 10\n",
        "python",
        label="util.py",
    )
    code = (
        "import os\nfrom util import normalise, LIMIT\n\n\n"
        "def clean(value):\n    return value\n\n\n"
        "class Parser:\n    def parse(self, raw):\n        text = clean(raw)\n"
        "        return normalise(text)[:LIMIT]\n"
    )
    document = SyntaxDocument(code, "python")
    context = document.completion_context(code.index("normalise(text)"), [helper])
    assert context.scope_signature == "class Parser:\n    def parse(self, raw):"
    assert [s.text for s in context.imports] == ["import os", "from util import normalise, LIMIT"]
    by_text = {s.text: s.source for s in context.definitions}
    assert by_text["def clean(value):"] == "this"
    assert by_text["def normalise(text):"] == "util.py"
    assert by_text["LIMIT = 10"] == "util.py"
    # The method the cursor is in is the scope, not a definition to repeat.
    assert "def parse(self, raw):" not in by_text
    assert all(s.size == len(s.text) for s in [*context.imports, *context.definitions])
    # Closest names first, whichever document defines them: the name at
    # the cursor (another file's) before one a line above it (this file's).
    texts = [s.text for s in context.definitions]
    assert texts.index("def normalise(text):") < texts.index("def clean(value):")


def test_one_name_defined_many_times_does_not_crowd_out_the_others() -> None:
    helper = SyntaxDocument("class Codec:\n    pass\n", "python", label="codec.py")
    classes = "".join(f"class C{i}:\n    def flush(self):\n        pass\n\n\n" for i in range(6))
    code = f"from codec import Codec\n\n\n{classes}def run(c):\n    c.flush()\n    return "
    document = SyntaxDocument(code, "python")
    context = document.completion_context(len(code), [helper], ["Codec"])
    flushes = [s for s in context.definitions if s.text.startswith("def flush")]
    assert 1 <= len(flushes) <= 2
    # The imported name the next token may be is still offered, from its file.
    codec = [s for s in context.definitions if s.text.startswith("class Codec:")]
    assert [s.source for s in codec] == ["codec.py"]


def test_completion_context_rust_impl_and_struct() -> None:
    code = (
        "use std::fmt;\n\nstruct Point { x: i32, y: i32 }\n\n"
        "fn norm(p: &Point) -> i32 {\n    p.x.abs() + p.y.abs()\n}\n\n"
        "impl Point {\n    fn len(&self) -> i32 {\n        norm(self)\n    }\n}\n"
    )
    document = SyntaxDocument(code, "rust")
    context = document.completion_context(code.index("norm(self)") + 2)
    assert context.scope_signature == "impl Point\n    fn len(&self) -> i32"
    assert [s.text for s in context.imports] == ["use std::fmt;"]
    texts = [s.text for s in context.definitions]
    assert "fn norm(p: &Point) -> i32" in texts
    assert "struct Point { x: i32, y: i32 }" in texts


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_completion_context_every_language(language: str) -> None:
    document = SyntaxDocument(SAMPLES[language], language)
    offset = SAMPLES[language].index("* 2")
    context = document.completion_context(offset)
    assert context.scope_signature
    assert context.imports, language


def test_completion_context_follows_edits() -> None:
    document = SyntaxDocument("def a():\n    pass\n\n\ndef b():\n    a()\n", "python")
    assert [s.text for s in document.completion_context(len(document.text) - 3).definitions] == [
        "def a():"
    ]
    document.apply_edit(4, 5, "z")
    document.apply_edit(len(document.text) - 4, len(document.text) - 3, "z")
    assert [s.text for s in document.completion_context(len(document.text) - 3).definitions] == [
        "def z():"
    ]


def test_a_definition_being_typed_is_neither_a_definition_nor_a_scope() -> None:
    # `def clam` parses as a function whose parameters are the next line's
    # class: its text would change with every keystroke, and with it every
    # prompt that showed it, and it is no definition yet.
    code = (
        "def clam\nclass Box(Base):\n    def size(self):\n        return 1\n\n\n"
        "class Tray:\n    def add(self, box):\n        bad = (\n\n\n"
        "def run():\n    clam(Box(), Tray())\n"
    )
    document = SyntaxDocument(code, "python")
    texts = [s.text for s in document.completion_context(len(code) - 2).definitions]
    assert not any(text.startswith("def clam") for text in texts), texts
    # A class whose body is being edited shows only its header.
    assert "class Tray:" in texts
    # At the start of the line after the half-typed header, no scope is made up of it.
    context = document.completion_context(code.index("class Box"))
    assert context.scope_signature is None or "clam" not in context.scope_signature


def test_a_definition_without_a_body_is_dropped_only_when_its_first_line_is_broken() -> None:
    # An assignment's header is its first line: a value being edited further
    # down leaves it a definition (shown by its first line); a first line
    # still being typed does not.
    code = (
        "LIMITS = {\n    'low': 1,\n    'high': (\n}\n\n"
        "TIMEOUT = 3 +\n\n"
        "def run():\n    use(LIMITS, TIMEOUT)\n"
    )
    document = SyntaxDocument(code, "python")
    texts = [s.text for s in document.completion_context(len(code) - 2).definitions]
    assert any(text.startswith("LIMITS = {") for text in texts), texts
    assert not any(text.startswith("TIMEOUT") for text in texts), texts


def test_a_cursor_thousands_of_levels_deep_gets_no_context_and_no_wait() -> None:
    # A chain of 8,000 `+`: walking up from the cursor took 0.8 s per keystroke.
    text = "def helper():\n    pass\n\ndef f():\n    x = " + "+".join(["1"] * 8000) + "\n"
    doc = SyntaxDocument(text, "python")
    deep = text.index("1")
    assert doc.depth_at(deep) > MAX_TREE_DEPTH
    assert doc.max_depth() > MAX_TREE_DEPTH
    context = doc.completion_context(deep)
    assert context.definitions == [] and context.scope_signature is None
    # At a shallow cursor of the same document the context is built as usual.
    assert doc.depth_at(text.index("pass")) < 10
    assert doc.completion_context(text.index("pass")).scope_signature is not None


def test_selection_ranges_thousands_of_levels_deep_are_the_word_the_line_and_the_document() -> None:
    # Each step up a tree that deep walks down from the root again: 1,000
    # positions 3,000 levels down took 9 s of a blocked language server.
    text = "x = " + "[" * 3000 + "value" + "]" * 3000 + "\nnext = 1\n"
    document = SyntaxDocument(text, "python")
    at = text.index("value") + 2
    line_end = text.index("\n")
    assert document.selection_ranges(at) == [
        (at - 2, at + 3),
        (0, line_end),
        (0, len(text)),
    ]
    # Shallow code keeps the tree's ranges.
    shallow = SyntaxDocument("x = [[value]]\n", "python")
    assert len(shallow.selection_ranges(6)) > 3


def test_the_names_near_a_cursor_in_a_node_of_countless_children_are_its_words() -> None:
    # Over 200,000 `(` side by side (error recovery keeps them as one node's
    # children) the identifier query took 30 s for the window alone; around
    # such a node the window's words are the names.
    wide = SyntaxDocument("total = 1\n" + "(" * 50_000 + " width + total", "python")
    assert wide._tree.root_node.child_count > 10_000
    assert wide._names_near(len(wide._data)) == ["total", "width"]
    assert [s.text for s in wide.completion_context(len(wide.text)).definitions] == ["total = 1"]
    code = "def area(r):\n    return r\n\nx = area("
    assert SyntaxDocument(code, "python")._names_near(len(code)) == ["area", "x", "r"]
