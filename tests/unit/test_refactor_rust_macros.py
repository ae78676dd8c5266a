"""extract_variable inside Rust macros: a format string moves out as ``"{}", name``.

The API documentation's Python example extracts a variable from
``fn old_func() { println!("hello"); }`` without a selection; the only
expression is the format string, which a variable cannot replace as is.
"""

from __future__ import annotations

import shutil

import pytest

from engine.errors import RefactorNotApplicableError
from engine.refactor import RefactorRequest, refactor

HAS_RUSTC = shutil.which("rustc") is not None


@pytest.mark.parametrize(
    "checks",
    [
        False,
        pytest.param(True, marks=pytest.mark.skipif(not HAS_RUSTC, reason="rustc not installed")),
    ],
)
def test_format_string_becomes_a_variable_and_a_placeholder(checks: bool) -> None:
    code = 'fn old_func() { println!("hello"); }'
    result = refactor(
        RefactorRequest(
            code=code, language="rust", operation="extract_variable", safety_checks=checks
        ),
        None,
    )
    assert result.refactored_code == (
        'fn old_func() {\n    let text = "hello";\n    println!("{}", text);\n}'
    ) or ('println!("{}", ' in result.refactored_code and '= "hello";' in result.refactored_code)
    if checks:
        assert any(c.name.startswith("compile") and c.passed for c in result.checks), result.checks


def test_write_macros_take_the_format_string_second() -> None:
    code = 'use std::fmt::Write;\nfn f(out: &mut String) {\n    write!(out, "done").unwrap();\n}\n'
    start = code.index('"done"')
    result = refactor(
        RefactorRequest(
            code=code,
            language="rust",
            operation="extract_variable",
            selection_start=start,
            selection_end=start + 6,
            safety_checks=False,
        ),
        None,
    )
    assert 'write!(out, "{}", ' in result.refactored_code


def test_a_literal_with_braces_or_in_other_macros_is_refused() -> None:
    braces = 'fn f(x: i32) { println!("x = {x}"); }'
    start = braces.index('"x = {x}"')
    with pytest.raises(RefactorNotApplicableError, match="macro"):
        refactor(
            RefactorRequest(
                code=braces,
                language="rust",
                operation="extract_variable",
                selection_start=start,
                selection_end=start + 9,
                safety_checks=False,
            ),
            None,
        )
    other = 'fn f() -> &\'static str { concat!("a", "b") }'
    start = other.index('"a"')
    with pytest.raises(RefactorNotApplicableError, match="macro"):
        refactor(
            RefactorRequest(
                code=other,
                language="rust",
                operation="extract_variable",
                selection_start=start,
                selection_end=start + 3,
                safety_checks=False,
            ),
            None,
        )
