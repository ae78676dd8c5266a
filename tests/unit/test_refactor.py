"""Refactoring engine: golden outputs per language and operation, refusals, safety checks.

Model-dependent behaviour uses ``ScriptedGenerator``, a fixed-output stand-in for
the model: these tests check the refactoring logic and the naming fallback, not
inference (real-model tests live with the inference engine).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import pytest

from engine.errors import InvalidRequestError, RefactorNotApplicableError, UnsupportedLanguageError
from engine.refactor import (
    GeneratedText,
    RefactorRequest,
    RefactorResult,
    applicable_operations,
    refactor,
)
from engine.refactor.checkers import run_checker
from engine.refactor.edits import apply_edits
from engine.refactor.safety import safety_score
from engine.refactor.schema import SafetyCheck

HAS_RUSTC = shutil.which("rustc") is not None
HAS_NODE = shutil.which("node") is not None
HAS_JAVAC = shutil.which("javac") is not None


@dataclass
class ScriptedGenerator:
    """Returns fixed texts in order (then empty text) and records each prompt."""

    texts: list[str]
    confidence: float = 0.8
    prompts: list[str] = field(default_factory=list)
    temperatures: list[float] = field(default_factory=list)

    def generate(
        self, prompt: str, *, max_tokens: int, stop: Sequence[str], temperature: float = 0.0
    ) -> GeneratedText:
        assert max_tokens > 0
        self.prompts.append(prompt)
        self.temperatures.append(temperature)
        text = self.texts.pop(0) if self.texts else ""
        return GeneratedText(text, self.confidence, max(1, len(text) // 4))


def span(code: str, text: str, nth: int = 0) -> tuple[int, int]:
    """Offsets of the nth occurrence of ``text`` in ``code``."""
    start = -1
    for _ in range(nth + 1):
        start = code.index(text, start + 1)
    return start, start + len(text)


def run(
    code: str,
    language: str,
    operation: str,
    selected: str | None = None,
    *,
    nth: int = 0,
    cursor: str | None = None,
    generator: ScriptedGenerator | None = None,
    **options: object,
) -> RefactorResult:
    start: int | None = None
    end: int | None = None
    if selected is not None:
        start, end = span(code, selected, nth)
    elif cursor is not None:
        start = end = span(code, cursor, nth)[0]
    request = RefactorRequest(
        code=code,
        language=language,
        operation=operation,
        selection_start=start,
        selection_end=end,
        **options,  # type: ignore[arg-type]
    )
    result = refactor(request, generator)
    # Every result's edits, applied to the original, must give the refactored code;
    # they come sorted and non-overlapping, ready for an LSP WorkspaceEdit.
    assert apply_edits(code, result.edits) == result.refactored_code
    assert all(a.end <= b.start for a, b in pairwise(result.edits))
    return result


def check(result: RefactorResult, name: str) -> SafetyCheck:
    return next(c for c in result.checks if c.name == name)


# --------------------------------------------------------------------- spec example

SPEC_CODE = "fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }"


def test_spec_rust_example_extracts_tail_if_without_selection() -> None:
    result = run(SPEC_CODE, "rust", "extract_variable")
    assert result.refactored_code == (
        "fn old_function(x: i32, y: i32) -> i32 {\n"
        "    let max_value = if x > y { x } else { y };\n"
        "    max_value\n"
        "}"
    )
    assert result.type == "extract_variable"
    assert result.original_code == SPEC_CODE
    assert check(result, "syntax").passed
    assert check(result, "free_identifiers").passed
    assert check(result, "signature").passed
    # No model was used: confidence is derived from the checks alone.
    assert result.confidence == result.safety_score
    assert "max_value" in result.explanation and "derived from the expression" in result.explanation


def test_spec_rust_example_uses_the_models_name_and_offers_the_fallback() -> None:
    generator = ScriptedGenerator([" larger = if x > y { x } else { y };"], confidence=0.9)
    result = run(SPEC_CODE, "rust", "extract_variable", generator=generator)
    assert "    let larger = if x > y { x } else { y };\n    larger\n}" in result.refactored_code
    assert result.confidence == pytest.approx(0.9 * result.safety_score, abs=1e-3)
    assert "proposed by the model" in result.explanation
    assert [a.type for a in result.alternatives] == ["extract_variable"]
    assert "let max_value = " in result.alternatives[0].code
    # A base-model prompt: code, then a comment, ending on the binding keyword.
    assert generator.prompts[0].rstrip().endswith("let")
    assert "if x > y { x } else { y }" in generator.prompts[0]


@pytest.mark.parametrize(
    "proposal",
    ["fn", "x", "123", "", "let mut", "while = 1"],
    ids=["keyword", "collides", "digits", "empty", "only-keywords", "keyword-name"],
)
def test_unusable_model_names_fall_back_deterministically(proposal: str) -> None:
    result = run(SPEC_CODE, "rust", "extract_variable", generator=ScriptedGenerator([proposal]))
    assert "let max_value = if x > y" in result.refactored_code
    assert result.confidence == result.safety_score


# ------------------------------------------------------------------------ goldens


@dataclass(frozen=True)
class Golden:
    """Source and expected structure of each operation's output for one language."""

    code: str
    extract_variable: tuple[str, str, str]  # selection, replaced fragment, new fragment
    extract_method: tuple[str, str, str, str]  # selection, call line, helper, helper anchor
    rename: tuple[str, str]  # cursor text, expected fragment
    rewrite: str  # the scripted model's function body for optimize_performance
    rewritten: str  # the expected rewritten function


GOLDENS: dict[str, Golden] = {
    "rust": Golden(
        code=(
            "fn area(width: f64, height: f64) -> f64 {\n"
            "    let margin = 2.0;\n"
            "    let total = width * height + margin;\n"
            "    total\n"
            "}\n"
            "\n"
            "fn sum_all(values: &Vec<i64>, scale: i64) -> i64 {\n"
            "    let mut acc = 0;\n"
            "    for v in values.iter() {\n"
            "        acc += v * scale;\n"
            "    }\n"
            "    acc + 1\n"
            "}\n"
        ),
        extract_variable=(
            "width * height",
            "    let total = width * height + margin;\n",
            "    let product = width * height;\n    let total = product + margin;\n",
        ),
        extract_method=(
            "let mut acc = 0;\n    for v in values.iter() {\n        acc += v * scale;\n    }",
            "    let acc = compute_acc(values, scale);\n    acc + 1\n}",
            "fn compute_acc(values: &Vec<i64>, scale: i64) -> i64 {\n"
            "    let mut acc = 0;\n"
            "    for v in values.iter() {\n"
            "        acc += v * scale;\n"
            "    }\n"
            "    acc\n"
            "}",
            "    acc + 1\n}\n\n",
        ),
        rename=("margin", "    let padding = 2.0;\n    let total = width * height + padding;"),
        rewrite="    width * height + 2.0\n}\n",
        rewritten="fn area(width: f64, height: f64) -> f64 {\n    width * height + 2.0\n}",
    ),
    "python": Golden(
        code=(
            "def area(width, height):\n"
            "    margin = 2\n"
            "    total = width * height + margin\n"
            "    return total\n"
            "\n"
            "\n"
            "def sum_all(values, scale):\n"
            "    acc = 0\n"
            "    for v in values:\n"
            "        acc += v * scale\n"
            "    return acc + 1\n"
        ),
        extract_variable=(
            "width * height",
            "    total = width * height + margin\n",
            "    product = width * height\n    total = product + margin\n",
        ),
        extract_method=(
            "acc = 0\n    for v in values:\n        acc += v * scale",
            "    acc = compute_acc(values, scale)\n    return acc + 1\n",
            "def compute_acc(values, scale):\n"
            "    acc = 0\n"
            "    for v in values:\n"
            "        acc += v * scale\n"
            "    return acc",
            "    return acc + 1\n\n\n",
        ),
        rename=("margin", "    padding = 2\n    total = width * height + padding"),
        rewrite="    return width * height + 2\n",
        rewritten="def area(width, height):\n    return width * height + 2",
    ),
    "typescript": Golden(
        code=(
            "function area(width: number, height: number): number {\n"
            "  const margin = 2;\n"
            "  const total = width * height + margin;\n"
            "  return total;\n"
            "}\n"
            "\n"
            "function sumAll(values: number[], scale: number): number {\n"
            "  let acc = 0;\n"
            "  for (const v of values) {\n"
            "    acc += v * scale;\n"
            "  }\n"
            "  return acc + 1;\n"
            "}\n"
        ),
        extract_variable=(
            "width * height",
            "  const total = width * height + margin;\n",
            "  const product = width * height;\n  const total = product + margin;\n",
        ),
        extract_method=(
            "let acc = 0;\n  for (const v of values) {\n    acc += v * scale;\n  }",
            "  const acc = computeAcc(values, scale);\n  return acc + 1;\n}",
            "function computeAcc(values: number[], scale: number): number {\n"
            "  let acc = 0;\n"
            "  for (const v of values) {\n"
            "    acc += v * scale;\n"
            "  }\n"
            "  return acc;\n"
            "}",
            "  return acc + 1;\n}\n\n",
        ),
        rename=("margin", "  const padding = 2;\n  const total = width * height + padding;"),
        rewrite="  return width * height + 2;\n}\n",
        rewritten=(
            "function area(width: number, height: number): number {\n"
            "  return width * height + 2;\n}"
        ),
    ),
    "tsx": Golden(
        code=(
            "function Label({ text, count }: { text: string; count: number }) {\n"
            '  const shown = count > 99 ? "99+" : String(count);\n'
            '  return <span title={text}>{text + " " + shown}</span>;\n'
            "}\n"
        ),
        extract_variable=(
            'text + " " + shown',
            '  return <span title={text}>{text + " " + shown}</span>;\n',
            '  const total = text + " " + shown;\n  return <span title={text}>{total}</span>;\n',
        ),
        extract_method=(
            'const shown = count > 99 ? "99+" : String(count);',
            "  const shown = computeShown(count);\n",
            "function computeShown(count): string {\n"
            '  const shown = count > 99 ? "99+" : String(count);\n'
            "  return shown;\n"
            "}",
            "</span>;\n}\n\n",
        ),
        rename=("shown", '  const padding = count > 99 ? "99+" : String(count);'),
        rewrite=(
            '  return <span title={text}>{`${text} ${count > 99 ? "99+" : count}`}</span>;\n}\n'
        ),
        rewritten=(
            "function Label({ text, count }: { text: string; count: number }) {\n"
            '  return <span title={text}>{`${text} ${count > 99 ? "99+" : count}`}</span>;\n}'
        ),
    ),
    "javascript": Golden(
        code=(
            "function area(width, height) {\n"
            "  const margin = 2;\n"
            "  const total = width * height + margin;\n"
            "  return total;\n"
            "}\n"
            "\n"
            "function sumAll(values, scale) {\n"
            "  let acc = 0;\n"
            "  for (const v of values) {\n"
            "    acc += v * scale;\n"
            "  }\n"
            "  return acc + 1;\n"
            "}\n"
        ),
        extract_variable=(
            "width * height",
            "  const total = width * height + margin;\n",
            "  const product = width * height;\n  const total = product + margin;\n",
        ),
        extract_method=(
            "let acc = 0;\n  for (const v of values) {\n    acc += v * scale;\n  }",
            "  const acc = computeAcc(values, scale);\n  return acc + 1;\n}",
            "function computeAcc(values, scale) {\n"
            "  let acc = 0;\n"
            "  for (const v of values) {\n"
            "    acc += v * scale;\n"
            "  }\n"
            "  return acc;\n"
            "}",
            "  return acc + 1;\n}\n\n",
        ),
        rename=("margin", "  const padding = 2;\n  const total = width * height + padding;"),
        rewrite="  return width * height + 2;\n}\n",
        rewritten="function area(width, height) {\n  return width * height + 2;\n}",
    ),
    "go": Golden(
        code=(
            "package main\n"
            "\n"
            "func area(width float64, height float64) float64 {\n"
            "\tmargin := 2.0\n"
            "\ttotal := width*height + margin\n"
            "\treturn total\n"
            "}\n"
            "\n"
            "func sumAll(values []int, scale int) int {\n"
            "\tacc := 0\n"
            "\tfor _, v := range values {\n"
            "\t\tacc += v * scale\n"
            "\t}\n"
            "\treturn acc + 1\n"
            "}\n"
        ),
        extract_variable=(
            "width*height",
            "\ttotal := width*height + margin\n",
            "\tproduct := width*height\n\ttotal := product + margin\n",
        ),
        extract_method=(
            "acc := 0\n\tfor _, v := range values {\n\t\tacc += v * scale\n\t}",
            "\tacc := computeAcc(values, scale)\n\treturn acc + 1\n}",
            "func computeAcc(values []int, scale int) int {\n"
            "\tacc := 0\n"
            "\tfor _, v := range values {\n"
            "\t\tacc += v * scale\n"
            "\t}\n"
            "\treturn acc\n"
            "}",
            "\treturn acc + 1\n}\n\n",
        ),
        rename=("margin", "\tpadding := 2.0\n\ttotal := width*height + padding"),
        rewrite="\treturn width*height + 2.0\n}\n",
        rewritten=(
            "func area(width float64, height float64) float64 {\n\treturn width*height + 2.0\n}"
        ),
    ),
    "java": Golden(
        code=(
            "public class Geometry {\n"
            "    static double area(double width, double height) {\n"
            "        double margin = 2.0;\n"
            "        double total = width * height + margin;\n"
            "        return total;\n"
            "    }\n"
            "\n"
            "    static long sumAll(long[] values, long scale) {\n"
            "        long acc = 0;\n"
            "        for (long v : values) {\n"
            "            acc += v * scale;\n"
            "        }\n"
            "        return acc + 1;\n"
            "    }\n"
            "}\n"
        ),
        extract_variable=(
            "width * height",
            "        double total = width * height + margin;\n",
            "        double product = width * height;\n        double total = product + margin;\n",
        ),
        extract_method=(
            "long acc = 0;\n        for (long v : values) {\n"
            "            acc += v * scale;\n        }",
            "        long acc = computeAcc(values, scale);\n        return acc + 1;\n    }",
            "    private static long computeAcc(long[] values, long scale) {\n"
            "        long acc = 0;\n"
            "        for (long v : values) {\n"
            "            acc += v * scale;\n"
            "        }\n"
            "        return acc;\n"
            "    }",
            "        return acc + 1;\n    }\n\n",
        ),
        rename=(
            "margin",
            "        double padding = 2.0;\n        double total = width * height + padding;",
        ),
        # The prompt shows the method dedented, so the model writes it at column 0.
        rewrite="    return width * height + 2.0;\n}\n",
        rewritten=(
            "    static double area(double width, double height) {\n"
            "        return width * height + 2.0;\n    }"
        ),
    ),
}


@pytest.mark.parametrize("language", sorted(GOLDENS))
def test_golden_extract_variable(language: str) -> None:
    golden = GOLDENS[language]
    selection, old, new = golden.extract_variable
    result = run(golden.code, language, "extract_variable", selection)
    assert old in golden.code
    assert result.refactored_code == golden.code.replace(old, new)
    assert all(c.passed is not False for c in result.checks)
    assert [c.name for c in result.checks] == ["syntax", "free_identifiers", "signature", "compile"]


@pytest.mark.parametrize("language", sorted(GOLDENS))
def test_golden_extract_method(language: str) -> None:
    golden = GOLDENS[language]
    selection, call, helper, anchor = golden.extract_method
    result = run(golden.code, language, "extract_method", selection)
    code = result.refactored_code
    assert call in code
    assert helper in code
    # The helper follows the function the statements came from.
    assert code.index(anchor) < code.index(helper)
    assert selection not in code.replace(helper, "")
    assert check(result, "free_identifiers").passed
    assert check(result, "signature").passed


@pytest.mark.parametrize("language", sorted(GOLDENS))
def test_golden_rename(language: str) -> None:
    golden = GOLDENS[language]
    cursor, expected = golden.rename
    result = run(golden.code, language, "rename", cursor=cursor, new_name="padding")
    assert expected in result.refactored_code
    assert result.refactored_code.count("padding") == 2
    assert cursor not in result.refactored_code.split("padding")[0][-40:]
    assert "given in the request" in result.explanation


@pytest.mark.parametrize("language", sorted(GOLDENS))
def test_golden_optimize_performance(language: str) -> None:
    golden = GOLDENS[language]
    name = "Label" if language == "tsx" else "area"
    generator = ScriptedGenerator([golden.rewrite], confidence=0.7)
    result = run(
        golden.code,
        language,
        "optimize_performance",
        cursor=name,
        generator=generator,
        max_alternatives=0,
    )
    assert golden.rewritten in result.refactored_code
    assert check(result, "signature").passed
    assert result.confidence == pytest.approx(0.7 * result.safety_score, abs=1e-3)
    # The prompt is code a base model can continue: the original, then the same header.
    assert generator.prompts[0].rstrip().endswith(("{", ":"))


@pytest.mark.parametrize(
    ("language", "available"),
    [("python", True), ("rust", HAS_RUSTC), ("javascript", HAS_NODE), ("java", HAS_JAVAC)],
)
def test_golden_results_pass_the_installed_compiler(language: str, available: bool) -> None:
    if not available:
        pytest.skip(f"no checker for {language} installed")
    golden = GOLDENS[language]
    for operation, selection in (
        ("extract_variable", golden.extract_variable[0]),
        ("extract_method", golden.extract_method[0]),
    ):
        result = run(golden.code, language, operation, selection)
        assert check(result, "compile").passed is True, check(result, "compile").detail
        assert result.safety_score == 1.0


# ------------------------------------------------------------- extract_variable


def test_statement_selection_is_refused_with_a_clear_422() -> None:
    code = "def f(a):\n    total = a * 2\n    return total\n"
    with pytest.raises(RefactorNotApplicableError) as raised:
        run(code, "python", "extract_variable", "total = a * 2")
    assert raised.value.http_status == 422
    assert "not an expression" in raised.value.message
    assert raised.value.details["field"] == "context.selection_start"


def test_partial_expression_selection_is_refused() -> None:
    code = "fn f(x: i32, y: i32) -> i32 { if x > y { x } else { y } }"
    with pytest.raises(RefactorNotApplicableError, match="complete expression"):
        run(code, "rust", "extract_variable", "x > y { x")


def test_whole_expression_statement_and_single_name_are_refused() -> None:
    code = "def f(a):\n    print(a)\n    return a\n"
    with pytest.raises(RefactorNotApplicableError, match="whole statement"):
        run(code, "python", "extract_variable", "print(a)")
    with pytest.raises(RefactorNotApplicableError, match="single name"):
        run(code, "python", "extract_variable", "a", nth=2)


@pytest.mark.parametrize(
    ("language", "code", "selection", "reason"),
    [
        (
            "python",
            "def f(n):\n    i = 0\n    while i < n * 2:\n        i += 1\n",
            "i < n * 2",
            "loop",
        ),
        ("python", "def f(xs):\n    return [x * 2 for x in xs]\n", "x * 2", "loop"),
        ("python", "def f(a):\n    return a if a > 0 else -a * 2\n", "-a * 2", "branch"),
        ("javascript", "function f(a) {\n  return a > 0 && g(a);\n}\n", "g(a)", "short-circuit"),
        ("java", "class A { int f(int a) { return a > 0 ? a * 2 : 0; } }", "a * 2", "branch"),
        (
            "rust",
            "fn f(v: Vec<i32>) -> Vec<i32> { v.iter().map(|x| x * 2).collect() }",
            "x * 2",
            "closure",
        ),
        (
            "go",
            "package main\n\nfunc f(n int) {\n\tfor i := 0; i < n*2; i++ {\n\t}\n}\n",
            "i < n*2",
            "loop",
        ),
    ],
)
def test_expressions_that_cannot_be_hoisted_are_refused(
    language: str, code: str, selection: str, reason: str
) -> None:
    with pytest.raises(RefactorNotApplicableError, match=reason):
        run(code, language, "extract_variable", selection)


def test_expression_using_a_name_its_statement_declares_is_refused() -> None:
    code = (
        "package main\n\nfunc f() int {\n\tif v := g(); v > 2 {\n\t\treturn v\n\t}\n\treturn 0\n}\n"
    )
    with pytest.raises(RefactorNotApplicableError, match="declares"):
        run(code, "go", "extract_variable", "v > 2")


def test_assignment_targets_are_refused() -> None:
    code = "function f(a) {\n  a.count = 1;\n  return a;\n}\n"
    with pytest.raises(RefactorNotApplicableError, match="assigned"):
        run(code, "javascript", "extract_variable", "a.count")


def test_cursor_picks_the_innermost_meaningful_expression() -> None:
    code = "def f(a, b):\n    return g(a + b) * 3\n"
    result = run(code, "python", "extract_variable", cursor="a + b")
    assert result.refactored_code == "def f(a, b):\n    total = a + b\n    return g(total) * 3\n"


def test_one_line_python_function_is_opened_up() -> None:
    result = run("def f(x): return x * 2 + 1\n", "python", "extract_variable", "x * 2")
    assert result.refactored_code == "def f(x):\n    product = x * 2\n    return product + 1\n"


def test_java_local_gets_an_inferred_type() -> None:
    code = "class A {\n    boolean f(int a, int b) {\n        return a > b && b > 0;\n    }\n}\n"
    result = run(code, "java", "extract_variable", "a > b")
    assert "        boolean isGreater = a > b;\n        return isGreater && b > 0;" in (
        result.refactored_code
    )


def test_crlf_files_keep_their_line_endings() -> None:
    code = "def f(a):\r\n    return a * 2 + 1\r\n"
    result = run(code, "python", "extract_variable", "a * 2")
    assert (
        result.refactored_code == "def f(a):\r\n    product = a * 2\r\n    return product + 1\r\n"
    )


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "def f():\r\n    y = 1 + 2\r\n    return y\r\n"),
        ("rust", "fn f() -> i32 {\r\n    let y = 1 + 2;\r\n    y\r\n}\r\n"),
        ("go", "package m\r\n\r\nfunc f() int {\r\n\ty := 1 + 2\r\n\treturn y\r\n}\r\n"),
        ("typescript", "function f(): number {\r\n    const y = 1 + 2;\r\n    return y;\r\n}\r\n"),
    ],
)
def test_extract_method_in_crlf_files_writes_crlf_only(language: str, code: str) -> None:
    result = run(code, language, "extract_method", "1 + 2")
    out = result.refactored_code
    assert "\r\r" not in out  # the new function's first line got "\r\r\n"
    assert "\n" not in out.replace("\r\n", "")  # every line break is CRLF
    assert out.count("\r\n") > code.count("\r\n")  # a function was added


def test_lone_cr_files_are_refactored_like_lf_files() -> None:
    # Python and editors end a line at a lone CR; the grammars do not, so the
    # rename found only the declaration and broke the function.
    code = "def f():\r    y = 1 + 2\r    return y\r"
    renamed = run(code, "python", "rename", cursor="y", new_name="total")
    assert renamed.refactored_code == "def f():\r    total = 1 + 2\r    return total\r"
    assert renamed.original_code == code
    extracted = run(code, "python", "extract_variable", "1 + 2")
    assert "\n" not in extracted.refactored_code
    assert "rename" in applicable_operations(code, "python", code.index("y"), code.index("y"))
    # Mixed with LF (a stray CR): taken as it is, as before.
    mixed = run("def f():\r\n    y = 1\r\r\n    return y\r\n", "python", "extract_variable", "1")
    assert mixed.refactored_code.count("value") == 2


# ------------------------------------------------------------------ unicode names


def test_unicode_identifiers_extract_and_rename_in_code_points() -> None:
    code = "def fläche(größe, breite):\n    ergebnis = größe * breite + 1\n    return ergebnis\n"
    extracted = run(code, "python", "extract_variable", "größe * breite")
    assert "    product = größe * breite\n    ergebnis = product + 1\n" in (
        extracted.refactored_code
    )
    renamed = run(code, "python", "rename", cursor="größe", nth=1, new_name="länge")
    assert renamed.refactored_code == (
        "def fläche(länge, breite):\n    ergebnis = länge * breite + 1\n    return ergebnis\n"
    )
    # Edits are code-point offsets into the original.
    first = renamed.edits[0]
    assert code[first.start : first.end] == "größe"


def test_unicode_identifiers_in_rust() -> None:
    code = "fn fläche(größe: i32) -> i32 {\n    größe * größe + 1\n}\n"
    result = run(code, "rust", "extract_variable", "größe * größe")
    assert "    let product = größe * größe;\n    product + 1\n" in result.refactored_code
    assert check(result, "free_identifiers").passed


# ------------------------------------------------------------------------- rename


def test_rename_leaves_a_same_named_binding_in_another_function_alone() -> None:
    code = (
        "def first(items):\n    count = len(items)\n    return count\n\n\n"
        "def second(count):\n    return count + 1\n"
    )
    result = run(code, "python", "rename", cursor="count", new_name="size")
    assert result.refactored_code == (
        "def first(items):\n    size = len(items)\n    return size\n\n\n"
        "def second(count):\n    return count + 1\n"
    )


def test_rename_respects_rust_shadowing() -> None:
    code = (
        "fn f() -> i32 {\n"
        "    let a = 5;\n"
        "    let b = { let a = 10; a + 1 };\n"
        "    let a = a * 2;\n"
        "    a + b\n"
        "}\n"
    )
    result = run(code, "rust", "rename", cursor="a = 5", new_name="base")
    assert result.refactored_code == (
        "fn f() -> i32 {\n"
        "    let base = 5;\n"
        "    let b = { let a = 10; a + 1 };\n"
        "    let a = base * 2;\n"
        "    a + b\n"
        "}\n"
    )


def test_rename_of_block_scoped_javascript_binding() -> None:
    code = "function f(x) {\n  let v = x;\n  { let v = 2; g(v); }\n  return v;\n}\n"
    result = run(code, "javascript", "rename", cursor="v = x", new_name="value")
    assert result.refactored_code == (
        "function f(x) {\n  let value = x;\n  { let v = 2; g(v); }\n  return value;\n}\n"
    )


def test_rename_keeps_shorthand_property_names() -> None:
    code = "function make(x, y) {\n  const point = { x, y };\n  return point;\n}\n"
    result = run(code, "javascript", "rename", cursor="x", new_name="left")
    assert "function make(left, y) {\n  const point = { x: left, y };" in result.refactored_code
    rust = "struct P { x: i32 }\nfn make(x: i32) -> P {\n    P { x }\n}\n"
    renamed = run(rust, "rust", "rename", cursor="x: i32)", new_name="left")
    assert "fn make(left: i32) -> P {\n    P { x: left }\n}" in renamed.refactored_code


def test_rename_updates_rust_format_string_captures() -> None:
    code = 'fn f(x: i32) -> String {\n    format!("{x} {x:>4} {{x}} {}", x)\n}\n'
    result = run(code, "rust", "rename", cursor="x", new_name="value")
    assert result.refactored_code == (
        'fn f(value: i32) -> String {\n    format!("{value} {value:>4} {{x}} {}", value)\n}\n'
    )
    assert "2 capture(s) in format strings" in result.explanation


def test_rename_refuses_a_python_parameter_passed_by_keyword() -> None:
    code = "def f(a, b):\n    return a + b\n\n\nprint(f(1, b=2))\n"
    with pytest.raises(RefactorNotApplicableError, match="b="):
        run(code, "python", "rename", cursor="b", new_name="other")
    positional = run(code.replace("b=2", "2"), "python", "rename", cursor="b", new_name="other")
    assert "def f(a, other):\n    return a + other\n" in positional.refactored_code


def test_rename_collision_is_refused() -> None:
    code = "def f(a, b):\n    return a + b\n"
    with pytest.raises(RefactorNotApplicableError, match="already used"):
        run(code, "python", "rename", cursor="a", new_name="b")
    # A module-level name used inside the scope would be captured too.
    code = "LIMIT = 3\n\n\ndef f(a):\n    return a + LIMIT\n"
    with pytest.raises(RefactorNotApplicableError, match="already used"):
        run(code, "python", "rename", cursor="a", new_name="LIMIT")


def test_rename_may_reuse_a_member_name() -> None:
    code = "def f(point):\n    px = point.x\n    return px * 2\n"
    result = run(code, "python", "rename", cursor="px", new_name="x")
    assert result.refactored_code == "def f(point):\n    x = point.x\n    return x * 2\n"


@pytest.mark.parametrize("bad", ["class", "1abc", "a-b", "print", "\uff42", "\u1d47"])
def test_rename_to_an_invalid_name_is_a_400(bad: str) -> None:
    # The last two are look-alikes of `b` ("ｂ", "ᵇ"): Python reads them as `b`.
    code = "def f(a):\n    return a\n"
    with pytest.raises(InvalidRequestError) as raised:
        run(code, "python", "rename", cursor="a", new_name=bad)
    assert raised.value.field == "new_name"


def test_rename_of_a_name_also_spelt_another_way_is_refused() -> None:
    # Python reads `ｘ` as `x`: renaming `x` alone left a NameError at `ｘ`.
    code = "def f():\n    x = 1\n    return \uff58 + 1\n"
    with pytest.raises(RefactorNotApplicableError, match="also written"):
        run(code, "python", "rename", cursor="x =", new_name="y")


def test_rename_to_a_look_alike_of_a_name_in_use_is_refused() -> None:
    # A fullwidth `ｘ` is `x` to Python: every check passed, and f() returned 4, not 3.
    code = "def f():\n    x = 1\n    y = 2\n    return x + y\n"
    with pytest.raises(InvalidRequestError, match="NFKC"):
        run(code, "python", "rename", cursor="y =", new_name="\uff58")


@pytest.mark.parametrize(
    ("code", "cursor", "reason"),
    [
        ("def f(o):\n    return o.size\n", "size", "member"),
        ("def f(a):\n    return len(a)\n", "len", "not defined in this file"),
        ("import os\n\ndef f():\n    return os.sep\n", "os", "imported"),
        ("class C:\n    def m(self):\n        return 1\n", "m(", "class member"),
    ],
)
def test_rename_refuses_names_it_cannot_follow(code: str, cursor: str, reason: str) -> None:
    with pytest.raises(RefactorNotApplicableError, match=reason):
        run(code, "python", "rename", cursor=cursor, new_name="other")


def test_rename_without_new_name_uses_the_model_then_the_value_shape() -> None:
    code = "def f(items):\n    n = len(items)\n    return n\n"
    modelled = run(code, "python", "rename", cursor="n =", generator=ScriptedGenerator([" count"]))
    assert modelled.refactored_code == "def f(items):\n    count = len(items)\n    return count\n"
    derived = run(code, "python", "rename", cursor="n =")
    assert derived.refactored_code == "def f(items):\n    length = len(items)\n    return length\n"
    with pytest.raises(RefactorNotApplicableError, match="new_name"):
        run("def f(a):\n    return a\n", "python", "rename", cursor="a")


# ------------------------------------------------------------------ extract_method


def test_python_extract_method_parameters_and_returns() -> None:
    code = (
        "def report(orders, tax):\n"
        "    total = 0\n"
        "    count = 0\n"
        "    for order in orders:\n"
        "        total += order.price\n"
        "        count += 1\n"
        "    total = total * (1 + tax)\n"
        "    return total / count\n"
    )
    selection = (
        "total = 0\n    count = 0\n    for order in orders:\n"
        "        total += order.price\n        count += 1"
    )
    result = run(code, "python", "extract_method", selection)
    assert result.refactored_code == (
        "def report(orders, tax):\n"
        "    total, count = extracted_function(orders)\n"
        "    total = total * (1 + tax)\n"
        "    return total / count\n"
        "\n\n"
        "def extracted_function(orders):\n"
        "    total = 0\n"
        "    count = 0\n"
        "    for order in orders:\n"
        "        total += order.price\n"
        "        count += 1\n"
        "    return total, count\n"
    )
    assert "returning `total`, `count`" in result.explanation


def test_python_method_becomes_a_method() -> None:
    code = (
        "class Cart:\n"
        "    def total(self, tax):\n"
        "        subtotal = sum(self.items)\n"
        "        subtotal = subtotal * (1 + tax)\n"
        "        return subtotal\n"
    )
    selection = "subtotal = sum(self.items)\n        subtotal = subtotal * (1 + tax)"
    result = run(code, "python", "extract_method", selection)
    assert result.refactored_code == (
        "class Cart:\n"
        "    def total(self, tax):\n"
        "        subtotal = self.compute_subtotal(tax)\n"
        "        return subtotal\n"
        "\n"
        "    def compute_subtotal(self, tax):\n"
        "        subtotal = sum(self.items)\n"
        "        subtotal = subtotal * (1 + tax)\n"
        "        return subtotal\n"
    )


def test_python_loop_carried_variable_is_passed_and_returned() -> None:
    code = "def f(xs):\n    acc = 0\n    for x in xs:\n        acc = acc + x\n        log(acc)\n"
    result = run(code, "python", "extract_method", "acc = acc + x")
    assert "        acc = compute_acc(acc, x)\n        log(acc)\n" in result.refactored_code
    assert "def compute_acc(acc, x):\n    acc = acc + x\n    return acc\n" in (
        result.refactored_code
    )


def test_python_trailing_return_is_taken_over_by_the_call() -> None:
    code = "def f(xs):\n    y = len(xs)\n    z = y * 2\n    return z + 1\n"
    result = run(code, "python", "extract_method", "z = y * 2\n    return z + 1")
    assert "    y = len(xs)\n    return compute_total(y)\n" in result.refactored_code
    assert "def compute_total(y):\n    z = y * 2\n    return z + 1\n" in result.refactored_code


def test_rust_extract_method_types_borrows_and_returns() -> None:
    code = (
        "fn build(names: Vec<String>, prefix: String) -> usize {\n"
        "    let mut count = 0;\n"
        "    for n in names.iter() {\n"
        "        if n.starts_with(&prefix) { count += 1; }\n"
        "    }\n"
        "    count + prefix.len()\n"
        "}\n"
    )
    selection = "for n in names.iter() {\n        if n.starts_with(&prefix) { count += 1; }\n    }"
    result = run(code, "rust", "extract_method", selection)
    assert result.refactored_code == (
        "fn build(names: Vec<String>, prefix: String) -> usize {\n"
        "    let mut count = 0;\n"
        "    count = compute_count(&names, &prefix, count);\n"
        "    count + prefix.len()\n"
        "}\n"
        "\n"
        "fn compute_count(names: &Vec<String>, prefix: &String, mut count: usize) -> usize {\n"
        "    for n in names.iter() {\n"
        "        if n.starts_with(prefix) { count += 1; }\n"
        "    }\n"
        "    count\n"
        "}\n"
    )
    assert "Passed by reference: `names`, `prefix`" in result.explanation
    if HAS_RUSTC:
        assert check(result, "compile").passed is True


def test_rust_mutated_vector_is_borrowed_mutably() -> None:
    code = (
        "fn fill(mut out: Vec<String>, extra: String) -> usize {\n"
        "    out.push(extra.clone());\n"
        "    out.push(extra);\n"
        "    out.len()\n"
        "}\n"
    )
    result = run(code, "rust", "extract_method", "out.push(extra.clone());")
    assert "    extracted_function(&mut out, &extra);\n" in result.refactored_code
    assert "fn extracted_function(out: &mut Vec<String>, extra: &String) {\n" in (
        result.refactored_code
    )


def test_rust_tail_expression_becomes_the_helpers_value() -> None:
    code = "fn f() -> i32 {\n    let a = 5;\n    let b = a * 3;\n    a + b\n}\n"
    result = run(code, "rust", "extract_method", "let b = a * 3;\n    a + b")
    assert result.refactored_code == (
        "fn f() -> i32 {\n    let a = 5;\n    extracted_function(a)\n}\n\n"
        "fn extracted_function(a: i32) -> i32 {\n    let b = a * 3;\n    a + b\n}\n"
    )


def test_extract_method_of_an_expression() -> None:
    code = "class Calc {\n    static int f(int m) {\n        return m * 2 + 1;\n    }\n}\n"
    result = run(code, "java", "extract_method", "m * 2")
    assert "        return computeProduct(m) + 1;\n" in result.refactored_code
    assert "    private static int computeProduct(int m) {\n        return m * 2;\n    }" in (
        result.refactored_code
    )


@pytest.mark.parametrize(
    ("language", "code", "selection", "reason"),
    [
        (
            "python",
            "def f(xs):\n    for x in xs:\n        if x:\n            return x\n    return 0\n",
            "for x in xs:\n        if x:\n            return x",
            "returns from the middle",
        ),
        (
            "python",
            "def f(xs):\n    for x in xs:\n        if x:\n            break\n        g(x)\n",
            "if x:\n            break",
            "breaks",
        ),
        (
            "rust",
            "fn f(s: &str) -> Result<i32, String> {\n    let n = parse(s)?;\n    Ok(n)\n}\n",
            "let n = parse(s)?;",
            "`?`",
        ),
        (
            "rust",
            "struct S { v: i32 }\nimpl S {\n    fn g(&self) -> i32 {\n        let a = self.v;\n"
            "        a\n    }\n}\n",
            "let a = self.v;",
            "self",
        ),
        (
            "rust",
            "fn f() -> usize {\n    let v = Vec::new();\n    let n = v.len();\n    n\n}\n",
            "let n = v.len();",
            "type of `v`",
        ),
        ("python", "x = 1\ny = x + 1\n", "y = x + 1", "inside a function"),
    ],
)
def test_extract_method_refusals(language: str, code: str, selection: str, reason: str) -> None:
    with pytest.raises(RefactorNotApplicableError, match=reason):
        run(code, language, "extract_method", selection)


def test_extract_method_needs_a_selection() -> None:
    with pytest.raises(RefactorNotApplicableError, match="needs a selection"):
        run("def f():\n    return 1\n", "python", "extract_method", cursor="return")


def test_model_names_the_extracted_function() -> None:
    code = "def f(items):\n    s = 0\n    for i in items:\n        s += i\n    return s\n"
    generator = ScriptedGenerator([" compute_sum(items):"])
    result = run(
        code,
        "python",
        "extract_method",
        "s = 0\n    for i in items:\n        s += i",
        generator=generator,
    )
    assert "    s = compute_sum(items)\n" in result.refactored_code
    assert "def compute_sum(items):" in result.refactored_code
    assert "def compute_s(items):" in result.alternatives[0].code
    assert generator.prompts[0].endswith("def")


# ------------------------------------------------------------ optimize_performance


def test_optimize_needs_a_model() -> None:
    with pytest.raises(RefactorNotApplicableError, match="model"):
        run(SPEC_CODE, "rust", "optimize_performance")


def test_optimize_offers_the_sampled_rewrite_as_an_alternative() -> None:
    generator = ScriptedGenerator(
        ["    std::cmp::max(x, y)\n}\n\n// Original", "    x.max(y)\n}\n"], confidence=0.87
    )
    result = run(SPEC_CODE, "rust", "optimize_performance", generator=generator)
    assert (
        result.refactored_code
        == "fn old_function(x: i32, y: i32) -> i32 {\n    std::cmp::max(x, y)\n}"
    )
    assert generator.temperatures == [0.0, 0.6]
    assert len(result.alternatives) == 1
    assert result.alternatives[0].type == "optimize_performance"
    assert "x.max(y)" in result.alternatives[0].code
    assert result.alternatives[0].confidence == pytest.approx(
        0.87 * result.alternatives[0].safety_score, abs=1e-3
    )


def test_safety_checks_reject_a_rewrite_that_uses_an_undefined_name() -> None:
    generator = ScriptedGenerator(["    max(x, y)\n}\n"])
    with pytest.raises(RefactorNotApplicableError) as raised:
        run(SPEC_CODE, "rust", "optimize_performance", generator=generator, max_alternatives=0)
    assert "free_identifiers" in raised.value.message
    checks = {c["name"]: c["passed"] for c in raised.value.details["checks"]}
    assert checks["free_identifiers"] is False


def test_safety_checks_reject_a_rewrite_the_compiler_refuses() -> None:
    code = "def f(x, y):\n    return max(x, y)\n"
    # tree-sitter parses this; Python refuses `*` unpacking after `**` unpacking.
    generator = ScriptedGenerator(["    return max(**x, *y)\n"])
    with pytest.raises(RefactorNotApplicableError) as raised:
        run(code, "python", "optimize_performance", generator=generator, max_alternatives=0)
    assert "compile" in raised.value.message
    assert "py_compile" in raised.value.message


def test_unparsable_or_emptied_rewrites_are_not_offered() -> None:
    with pytest.raises(RefactorNotApplicableError, match="usable rewrite"):
        run(
            SPEC_CODE,
            "rust",
            "optimize_performance",
            generator=ScriptedGenerator(["    x +\n}\n", "}\nfn other() {}\n"]),
        )


def test_signature_change_is_rejected() -> None:
    code = "def f(x, y):\n    return max(x, y)\n"
    generator = ScriptedGenerator(["    return x\n"])
    result = run(code, "python", "optimize_performance", generator=generator, max_alternatives=0)
    assert result.refactored_code == "def f(x, y):\n    return x\n"
    lost = ScriptedGenerator(["    return max(x, y)\n"])
    with pytest.raises(RefactorNotApplicableError, match="usable rewrite"):
        run(code, "python", "optimize_performance", generator=lost, max_alternatives=0)


# -------------------------------------------------------- requests, checks, scores


@pytest.mark.parametrize(
    ("start", "end", "field_name"),
    [
        (-1, 3, "context.selection_start"),
        (0, -2, "context.selection_end"),
        (5, 3, "context.selection_end"),
    ],
)
def test_bad_offsets_are_400_naming_the_field(start: int, end: int, field_name: str) -> None:
    request = RefactorRequest(
        code="def f():\n    return 1\n",
        language="python",
        operation="extract_variable",
        selection_start=start,
        selection_end=end,
    )
    with pytest.raises(InvalidRequestError) as raised:
        refactor(request, None)
    assert raised.value.field == field_name
    assert raised.value.http_status == 400


def test_offsets_past_the_end_are_clamped() -> None:
    code = "def f(a):\n    return a + 1\n"
    start = code.index("1")
    request = RefactorRequest(code, "python", "extract_variable", start, 10_000)
    result = refactor(request, None)
    assert result.refactored_code == "def f(a):\n    value = 1\n    return a + value\n"


@pytest.mark.parametrize(
    ("code", "message"),
    [("", "empty"), ("   \n", "empty"), ("x = 1\x00", "NUL"), ("x = '\ud800'", "surrogate")],
)
def test_bad_code_is_rejected(code: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as raised:
        refactor(RefactorRequest(code, "python", "extract_variable"), None)
    assert raised.value.field == "code"


@pytest.mark.parametrize(
    ("language", "code"),
    [
        # 20,000 nested blocks in 40 KB: walking up from the selection took 26 s.
        ("rust", "fn f() { " + "{" * 20_000 + "}" * 20_000 + " }\n"),
        # No brackets at all: a chain of 8,000 operators is as deep (11 s).
        ("python", "def f():\n    x = " + "+".join(["1"] * 8000) + "\n    return x\n"),
        ("python", "def f(a):\n    return " + "not " * 8000 + "a\n"),
        # 500 brackets, three tree levels each (6 s).
        ("python", "x = " + "g([" * 500 + "1" + "])" * 500 + "\n"),
    ],
)
def test_code_with_a_very_deep_syntax_tree_is_refused(language: str, code: str) -> None:
    first = len(code) // 2  # deep inside the tree
    request = RefactorRequest(code, language, "extract_variable", first, first + 1)
    with pytest.raises(InvalidRequestError, match="levels deep") as raised:
        refactor(request, None)
    assert raised.value.field == "code"
    assert applicable_operations(code, language, first, first) == []


def test_deep_but_real_code_is_still_refactored() -> None:
    shallow = "fn f() { " + "{" * 50 + "let x = 1 + 2;" + "}" * 50 + " }\n"
    cursor = shallow.index("1 + 2")
    assert "extract_variable" in applicable_operations(shallow, "rust", cursor, cursor + 5)
    chain = "def f():\n    x = " + " + ".join(["a"] * 100) + "\n    return x\n"
    assert applicable_operations(chain, "python", chain.index("a"), chain.index("a"))


def test_unknown_operation_and_language() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        refactor(RefactorRequest("x = 1", "python", "inline"), None)
    assert raised.value.field == "operation"
    with pytest.raises(UnsupportedLanguageError):
        refactor(RefactorRequest("x = 1", "cobol", "rename"), None)


def test_language_resolves_from_aliases_and_file_path() -> None:
    by_alias = run(SPEC_CODE, "rs", "extract_variable")
    by_path = refactor(
        RefactorRequest(SPEC_CODE, "", "extract_variable", file_path="src/main.rs"), None
    )
    assert by_alias.refactored_code == by_path.refactored_code


def test_safety_checks_false_skips_only_the_compiler() -> None:
    result = run(SPEC_CODE, "rust", "extract_variable", safety_checks=False)
    compile_check = check(result, "compile")
    assert compile_check.passed is None
    assert "safety_checks is false" in compile_check.detail
    assert check(result, "syntax").passed and check(result, "free_identifiers").passed
    assert result.safety_score == 0.9


def test_safety_score_weights() -> None:
    def checks(*passed: bool | None) -> list[SafetyCheck]:
        names = ["syntax", "free_identifiers", "signature", "compile"]
        return [SafetyCheck(n, p, "") for n, p in zip(names, passed, strict=False)]

    assert safety_score(checks(True, True, True, True)) == 1.0
    assert safety_score(checks(True, True, True, None)) == 0.9
    assert safety_score(checks(True, True, True, False)) == 0.8
    assert safety_score(checks(True, True)) == 1.0
    assert safety_score([]) == 0.0


def test_checker_reports_missing_tool_and_timeout_without_raising() -> None:
    assert run_checker("package main\n", "go", 5).passed in (None, True, False)
    outcome = run_checker("x = 1\n", "python", 0.0001)
    assert outcome.passed is None
    assert "did not finish" in outcome.detail
    broken = run_checker("def f(:\n", "python", 10)
    assert broken.passed is False
    assert "/tmp" not in broken.detail


def test_checker_is_inconclusive_when_the_original_does_not_compile() -> None:
    if not HAS_RUSTC:
        pytest.skip("rustc not installed")
    code = "fn f(x: i32) -> i32 {\n    helper(x) * 2 + 1\n}\n"  # `helper` is not defined here
    result = run(code, "rust", "extract_variable", "helper(x) * 2")
    compile_check = check(result, "compile")
    assert compile_check.passed is None
    assert "original code does not pass" in compile_check.detail


# ----------------------------------------------------------- applicable_operations


def test_applicable_operations_for_cursor_and_selections() -> None:
    code = "def f(a, b):\n    total = a * b\n    return total + 1\n"
    start = code.index("a * b") + 1
    assert applicable_operations(code, "python", start, start) == [
        "extract_variable",
        "rename",
        "optimize_performance",
    ]
    s, e = span(code, "total = a * b")
    assert applicable_operations(code, "python", s, e) == ["extract_method", "optimize_performance"]
    s, e = span(code, "a * b")
    assert "extract_method" in applicable_operations(code, "python", s, e)
    assert applicable_operations(code, "markdown", 0, 0) == []
    assert applicable_operations("x = 1\n", "python", 0, 0) == ["rename"]


def test_applicable_operations_rejects_negative_offsets() -> None:
    with pytest.raises(InvalidRequestError):
        applicable_operations("x = 1", "python", -1, 0)
