"""The language registry: one meaning per name and extension, and every consumer agrees on it."""

from __future__ import annotations

import ast
import sys
from collections import Counter
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import MappingProxyType

import pytest

from engine import languages, syntax
from engine.completion import postprocess
from engine.completion.pipeline import drop_context_headers, format_snippets
from engine.completion.postprocess import postprocess_completion, should_stop
from engine.completion.scaffolding import may_open_with_header, opens_with_header
from engine.documents import DocumentStore
from engine.languages import Language
from engine.refactor import applicable_operations, checkers
from engine.refactor.schema import RefactorRequest
from engine.refactor.scopes import ScopeAnalysis
from engine.refactor.service import _context
from engine.refactor.type_inference import TypeOracle
from engine.syntax import CompletionContext, Snippet, SyntaxDocument

LANGUAGES = languages.all_languages()
ALIASES = [(name, lang) for lang in LANGUAGES for name in lang.names]
EXTENSIONS = [(extension, lang) for lang in LANGUAGES for extension in lang.extensions]


def _ids(value: object) -> str:
    return value.id if isinstance(value, Language) else str(value)


# --------------------------------------------------------------------------- registry


def test_every_name_and_extension_means_exactly_one_language() -> None:
    names = Counter(name for name, _ in ALIASES)
    names.update(name for lang in languages.unparsed_languages() for name in lang.names)
    assert [name for name, count in names.items() if count > 1] == []
    extensions = Counter(extension for extension, _ in EXTENSIONS)
    assert [extension for extension, count in extensions.items() if count > 1] == []


@pytest.mark.parametrize(("name", "language"), ALIASES, ids=[n for n, _ in ALIASES])
def test_every_alias_resolves_to_its_language(name: str, language: Language) -> None:
    assert languages.resolve(name) is language
    assert languages.resolve(f"  {name.upper()} ") is language
    assert languages.resolve_text(name) is language
    # The id wins over the path; a path alone decides by its extension.
    assert languages.resolve(name, "notes.txt") is language


@pytest.mark.parametrize(("extension", "language"), EXTENSIONS, ids=[e for e, _ in EXTENSIONS])
def test_every_extension_resolves_to_its_language(extension: str, language: Language) -> None:
    assert languages.resolve(None, f"src/app{extension}") is language
    assert languages.resolve("plaintext", f"C:\\src\\APP{extension.upper()}") is language


def test_unparsed_languages_are_known_to_post_processing_only() -> None:
    for unparsed in languages.unparsed_languages():
        for name in unparsed.names:
            assert languages.resolve(name) is None
            assert languages.resolve_text(name) is unparsed
    assert languages.resolve_text("made-up-language") is None
    assert languages.resolve_text(None) is None


def test_get_takes_canonical_ids_only() -> None:
    assert [languages.get(i) for i in languages.ids()] == list(LANGUAGES)
    with pytest.raises(KeyError):
        languages.get("jsx")


def test_languages_are_immutable() -> None:
    language = languages.get("python")
    with pytest.raises(FrozenInstanceError):
        language.id = "snake"  # type: ignore[misc]
    assert isinstance(language.spec.loops, MappingProxyType)
    assert isinstance(languages.all_languages(), tuple)


@pytest.mark.parametrize("language", LANGUAGES, ids=_ids)
def test_each_module_describes_one_language_consistently(language: Language) -> None:
    assert language.spec.name == language.id
    assert language.spec.comment == language.line_comment
    assert language.lexical.line_comments == (language.line_comment,)
    assert language.binding_rules().language == language.id
    assert language.grammar.load() is not None


def test_the_package_imports_only_itself_tree_sitter_and_the_standard_library() -> None:
    """Syntax, completion and refactoring import the registry, so it must not import them."""
    package = Path(languages.__file__).parent
    offenders: list[str] = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            offenders += [
                f"{path.name} imports {module}"
                for module in modules
                if module.split(".")[0] not in (*sys.stdlib_module_names, "tree_sitter")
                and module != "engine.languages"
                and not module.startswith("engine.languages.")
                and module != "__future__"
            ]
    assert offenders == []


# --------------------------------------------------------------------------- consumers agree


@pytest.mark.parametrize(("name", "language"), ALIASES, ids=[n for n, _ in ALIASES])
def test_every_consumer_resolves_an_alias_to_the_same_language(
    name: str, language: Language
) -> None:
    # Syntax and the document store.
    assert syntax.resolve_language(name) == language.id
    assert SyntaxDocument("", name).language == language.id
    assert DocumentStore.resolve_language(name, None) == language.id
    assert syntax.line_comment(name) == language.line_comment
    # Completion: prompt snippets and post-processing.
    snippet = Snippet("x", "other.file", 1)
    block = format_snippets(CompletionContext(None, [], [snippet]), name)[0]
    assert block.rendered.startswith(f"{language.line_comment} from other.file")
    assert postprocess._rules(name).parsed is language
    # Refactoring: the parsed request, its spec, its binding rules, types, checker.
    ctx = _context(RefactorRequest(code="x\n", language=name, operation="extract_variable"))
    assert ctx.document.language == language.id
    assert ctx.spec is language.spec
    assert ctx.rules.language == language.id
    assert type(ctx.rules) is type(language.binding_rules())
    oracle = TypeOracle(ctx.document, ScopeAnalysis([], []))
    assert oracle._types is (language.types or oracle._types)
    assert checkers.checker_tool(name) == language.checker.tool
    assert checkers.checker_tool(ctx.document.language) == language.checker.tool
    assert applicable_operations("x = 1\n", name, 0, 0) == applicable_operations(
        "x = 1\n", language.id, 0, 0
    )


# --------------------------------------------------------------------------- JSX


# The editor auto-closed the `>` of `<div|>`: a JSX-aware completion covers it.
_JSX_DOCUMENT = "const a = <div>;\n"
_JSX_CURSOR = _JSX_DOCUMENT.index(">")
_JSX_RAW = ' className="x">hi</div>'
_JSX_APPLIED = 'const a = <div className="x">hi</div>;\n'


@pytest.mark.parametrize(
    ("language_id", "path"),
    [
        ("javascriptreact", "src/App.jsx"),
        (None, "src/App.jsx"),
        ("jsx", None),
        ("typescriptreact", "src/App.tsx"),
        (None, "src/App.tsx"),
        ("tsx", None),
        ("javascript", "src/App.js"),
    ],
)
def test_jsx_files_get_the_jsx_rule(language_id: str | None, path: str | None) -> None:
    # As the engine does: resolve the request's language first, then post-process.
    language = DocumentStore.resolve_language(language_id, path)
    result = postprocess_completion(_JSX_DOCUMENT, _JSX_CURSOR, _JSX_RAW, language)
    assert result.replace_end == _JSX_CURSOR + 1
    assert result.applied_to(_JSX_DOCUMENT) == _JSX_APPLIED


def test_typescript_without_jsx_keeps_angle_brackets_out_of_brackets() -> None:
    language = DocumentStore.resolve_language(None, "src/app.ts")
    assert language == "typescript"
    result = postprocess_completion(_JSX_DOCUMENT, _JSX_CURSOR, _JSX_RAW, language)
    assert result.replace_end == _JSX_CURSOR


@pytest.mark.parametrize("name", ["python", "go", "typescript", "rust"])
def test_a_completion_that_writes_a_snippet_header_is_cut_there(name: str) -> None:
    """Above a short prefix the snippets are most of the prompt, and a model may go on
    with them (Go: ``// from this file:`` where ``import (`` was due)."""
    here = Snippet("func randomBits(b []byte) {}", "this", 1)
    other = Snippet("x = 1", "pkg/other.go", 1)
    blocks = format_snippets(CompletionContext(None, [], [here], [other]), name)
    assert len(blocks) == 2
    for block in blocks:
        header = block.rendered.split("\n")[0]
        assert drop_context_headers(f"{header}\nfunc f() {{}}", name) == ""
        assert drop_context_headers(f"x := 1\n  {header}\nmore", name) == "x := 1\n"
        # Opening with one (blank lines aside) is what the engine asks again for.
        assert opens_with_header(f"\n{header}\nfunc f() {{}}", name)
        assert not opens_with_header(f"x := 1\n{header}\n", name)
        # A stream holds a header's every beginning back, and decides at its line's end.
        assert all(may_open_with_header(header[:end], name) for end in range(len(header) + 1))
        assert not may_open_with_header(f"\n  {header}\n", name)
        # The decode loop stops once the header line is complete, not before.
        document = "package p\n\n\n\nfunc g() {}\n"
        assert not should_stop(document, 11, header, name)
        assert should_stop(document, 11, f"{header}\n", name)
    comment = syntax.line_comment(name)
    # Ordinary comments stay, even ones that start the same way.
    for kept in (f"{comment} from the docs: see below", f"{comment} from here:", "x = 1"):
        assert drop_context_headers(kept, name) == kept
        assert not opens_with_header(kept, name)
        assert not may_open_with_header(kept, name)
        assert not should_stop("package p\n\n\n\nfunc g() {}\n", 11, f"{kept}\n", name)
