"""Post-processing of raw completions: Tabby's golden cases, unit tests, a property test."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.completion import postprocess
from engine.completion.postprocess import (
    PostProcessed,
    completion_scope,
    contains_special_token,
    postprocess_completion,
    should_stop,
    strip_special_tokens,
)

# The tests run from the repository root (/work/main) with `../shared` beside it.
GOLDEN_DIR = Path(__file__).resolve().parents[3] / "shared" / "peers" / "tabby-postprocess-golden"
GOLDEN_CASE_COUNT = 12

CURSOR, INSERT_END, REPLACE_END = "├", "┤", "╣"


# --------------------------------------------------------------------------- golden harness


@dataclass(frozen=True)
class Marked:
    """A `├ ┤ ╣` text split the way Tabby's golden harness splits it."""

    prefix: str
    completion: str
    replace_suffix: str
    suffix: str

    @classmethod
    def parse(cls, text: str) -> Marked:
        start = text.index(CURSOR)
        end = text.rindex(INSERT_END)
        replace_end = text.rfind(REPLACE_END)
        if replace_end < 0:
            replace_end = end
        return cls(
            prefix=text[:start],
            completion=text[start + 1 : end],
            replace_suffix=text[end + 1 : replace_end],
            suffix=text[replace_end + 1 :],
        )

    @property
    def document(self) -> str:
        return self.prefix + self.replace_suffix + self.suffix

    @property
    def cursor(self) -> int:
        return len(self.prefix)


def _golden_params() -> list[Any]:
    if not GOLDEN_DIR.is_dir():
        # One failing case instead of an empty (silently passing) parametrisation.
        return [pytest.param(None, id="golden-folder-missing")]
    params: list[Any] = []
    for path in sorted(GOLDEN_DIR.rglob("*.toml")):
        case = tomllib.loads(path.read_text(encoding="utf-8"))
        case_id = path.relative_to(GOLDEN_DIR).with_suffix("").as_posix()
        marks = []
        if case.get("expected", {}).get("notEqual"):
            # Tabby's harness asserts `not equal` for these: it documents that
            # Tabby still fails them. Asserting `not equal` here would force us
            # to reproduce Tabby's bug, so we assert the intended outcome
            # instead, as a non-strict xfail per the peer's FIXME (XPASS means
            # we do better than Tabby). The behaviour itself is pinned by the
            # hard unit tests `test_closing_line_at_other_indentation_is_kept`
            # and `test_similar_blocks_are_not_duplicates`.
            marks.append(
                pytest.mark.xfail(
                    strict=False, reason="Tabby FIXME: Tabby itself fails this golden case"
                )
            )
        params.append(pytest.param(path, id=case_id, marks=marks))
    return params


def test_golden_folder_holds_all_cases() -> None:
    assert GOLDEN_DIR.is_dir(), (
        f"Tabby golden cases not found at {GOLDEN_DIR}: the tests expect the shared "
        "folder beside the repository (../shared/peers/tabby-postprocess-golden)"
    )
    assert len(list(GOLDEN_DIR.rglob("*.toml"))) == GOLDEN_CASE_COUNT


@pytest.mark.parametrize("use_syntax", [True, False], ids=["syntax", "indent-only"])
@pytest.mark.parametrize("path", _golden_params())
def test_tabby_golden(path: Path | None, use_syntax: bool) -> None:
    if path is None:
        pytest.fail(f"Tabby golden cases not found at {GOLDEN_DIR}")
    case = tomllib.loads(path.read_text(encoding="utf-8"))
    context = Marked.parse(case["context"]["text"])
    # `[config]` (e.g. minCompletionChars) tunes Tabby filters this function does
    # not have (dropping short completions is the caller's business).
    result = postprocess_completion(
        context.document,
        context.cursor,
        context.completion,
        case["context"]["language"],
        use_syntax=use_syntax,
    )
    expected_case = case["expected"]
    if expected_case.get("unchanged"):
        expected = PostProcessed(context.completion, context.cursor, context.cursor)
    else:
        marked = Marked.parse(expected_case["text"])
        # The expected text describes the same document and cursor.
        assert marked.document == context.document
        assert marked.cursor == context.cursor
        expected = PostProcessed(
            marked.completion, marked.cursor, marked.cursor + len(marked.replace_suffix)
        )
    assert result == expected


# --------------------------------------------------------------------------- helpers


def run(marked: str, raw: str, language: str | None = "python", **kwargs: Any) -> PostProcessed:
    """Post-process `raw` at the `|` in `marked` (the `|` is removed from the document)."""
    cursor = marked.index("|")
    document = marked[:cursor] + marked[cursor + 1 :]
    return postprocess_completion(document, cursor, raw, language, **kwargs)


def applied(marked: str, raw: str, language: str | None = "python", **kwargs: Any) -> str:
    cursor = marked.index("|")
    document = marked[:cursor] + marked[cursor + 1 :]
    return postprocess_completion(document, cursor, raw, language, **kwargs).applied_to(document)


def stops(marked: str, partial: str, language: str | None = "python") -> bool:
    cursor = marked.index("|")
    document = marked[:cursor] + marked[cursor + 1 :]
    return should_stop(document, cursor, partial, language)


# --------------------------------------------------------------------------- special tokens


@pytest.mark.parametrize(
    "token",
    [
        "<fim_middle>",
        "<fim_suffix>",
        "<fim-prefix>",
        "<|fim_middle|>",
        "<|endoftext|>",
        "<|im_end|>",
        "<|file_sep|>",
        "<|eot_id|>",
        "<PRE>",
        "<SUF>",
        "<MID>",
        "<EOT>",
        "<｜fim▁hole｜>",
        "<｜end▁of▁sentence｜>",
        "</s>",
        "<file_sep>",
        "<end_of_turn>",
        " [SUFFIX]",
    ],
)
def test_completion_is_cut_at_special_token(token: str) -> None:
    raw = f"value = 1{token}\nimport os\n"
    assert strip_special_tokens(raw).rstrip() == "value = 1"
    result = run("x = |\n", f"compute(){token}garbage")
    assert result.text == "compute()"
    assert not contains_special_token(result.text)


def test_special_token_at_start_gives_nothing() -> None:
    assert run("x = |\n", "<|endoftext|>x = 2").text == ""


@pytest.mark.parametrize(
    "code",
    [
        "let y = f <| x |> g",  # F# / Elm pipes
        "parser = a <|> b",  # Haskell Alternative
        'print("usage: cat <filename>")',
        "value = names[PREFIX]",
        "<pre>text</pre>",
    ],
)
def test_code_resembling_tokens_is_kept(code: str) -> None:
    assert strip_special_tokens(code) == code


# --------------------------------------------------------------------------- loops


def test_repeated_line_loop_keeps_first_occurrence() -> None:
    raw = "x = 1\n    x = 1\n    x = 1\n    x = 1\n    x ="
    assert run("def f():\n    |\n", raw).text == "x = 1"


def test_repeated_block_loop_keeps_first_occurrence() -> None:
    block = "    def test_a(self):\n        assert run(1) == 2\n"
    raw = "\n" + block * 3 + "    def te"
    result = run("class T:|\n", raw)
    assert result.text == "\n" + block.rstrip()


def test_two_equal_lines_are_not_a_loop() -> None:
    raw = "i += 1\n    i += 1\n    return i"
    assert run("def f(i):\n    |\n", raw).text == raw


def test_a_line_opening_itself_deeper_and_deeper_is_a_loop() -> None:
    # Seen from the default model in a TypeScript interface: 18 such lines.
    raw = "constructor(\n" + "".join(f"{'  ' * depth}constructor(\n" for depth in range(2, 9))
    marked = "interface P {\n  |\n  clear: F;\n}\n"
    assert run(marked, raw, "typescript").text == "constructor("
    fourth = raw.split("\n")[:4]
    assert not stops(marked, "\n".join(fourth[:3]) + "\n", "typescript")
    assert stops(marked, "\n".join(fourth) + "\n", "typescript")


@pytest.mark.parametrize(
    "raw",
    [
        # Closers repeat at falling depths; a bare tag may nest thrice.
        "        }\n      }\n    }\n  }",
        "<div>\n    <div>\n      <div>\n        <p>hi</p>\n      </div>\n    </div>\n  </div>",
    ],
)
def test_the_same_line_at_other_depths_is_not_always_a_loop(raw: str) -> None:
    assert run("x = (\n  |\n", raw, None).text == raw


def test_similar_lines_are_not_a_loop() -> None:
    raw = "case 1:\n        return 1\n    case 2:\n        return 2\n    case 3:\n        return 3"
    assert run("match x:\n    |\n", raw).text == raw


# --------------------------------------------------------------------------- scope


def test_mid_line_cursor_limits_to_the_line() -> None:
    result = run("total = |count\n", "2 * \nfoo()\n")
    assert result.text == "2 * "
    assert completion_scope("total = count\n", 8) == "line"


def test_closers_after_cursor_are_not_mid_line() -> None:
    assert completion_scope("foo()\n", 4) == "block"
    assert completion_scope('x = f("")\n', 7) == "block"


def test_block_scope_stops_at_dedent_in_python() -> None:
    raw = "x = 1\n    return x\n\ndef g():\n    pass\n"
    assert run("def f():\n    |\n", raw).text == "x = 1\n    return x"


def test_python_dedented_statement_is_not_a_closing_line() -> None:
    raw = "print(x)\n    return y"
    assert run("def f(y):\n    for x in y:\n        |\n", raw).text == "print(x)"


def test_else_clause_continues_the_block() -> None:
    # `else:` continues the `if`; `return 1` is the next statement of the function.
    raw = "a()\n    else:\n        b()\n    return 1\n\ndef g():\n    pass"
    assert run("def f(x):\n    if x:\n        |\n", raw).text == "a()\n    else:\n        b()"
    js = "a();\n} else {\n  b();\n}\nfoo();"
    assert run("if (x) {\n  |\n}\n", js, "javascript").text == "a();\n} else {\n  b();"


def test_a_clause_in_front_of_the_documents_code_ends_the_completion() -> None:
    # HumanEval/82's hole: the `if` body. An `else:` written there would
    # change what the function's next statement, the `for`, means.
    marked = "def f(s):\n    if len(s) < 2:\n        |\n    for c in s:\n        pass\n"
    raw = "return False\n    else:\n        return True"
    for suffix_aware in (True, False):
        assert run(marked, raw, suffix_aware=suffix_aware).text == "return False"
    assert stops(marked, "return False\n    else:\n") is True
    # The same in front of the document's own `else`, in JavaScript too.
    marked = "if x:\n    |\nelse:\n    c()\n"
    assert run(marked, "a()\nelse:\n    b()").text == "a()"
    marked = "if (x) {\n  |\n} else {\n  c();\n}\n"
    assert run(marked, "a();\n} else {\n  b();\n}", "javascript").text == "a();"
    # A clause of the completion's own statement is fine before the next statement.
    marked = "def f(x):\n    |\n    return x\n"
    raw = "if x:\n        a()\n    else:\n        b()\n    return x"
    assert run(marked, raw).text == "if x:\n        a()\n    else:\n        b()"


def test_closing_lines_are_the_languages_own() -> None:
    # `</code>` (a chat model's markup) and a name such as `end` close
    # nothing in Python; `end` does in Ruby, `fi` in the shell.
    assert run("def f(t):\n    for e in t:\n        |\n", "return True\n</code>").text == (
        "return True"
    )
    assert run("def f(x):\n    if x:\n        |\n", "a()\nend = 5").text == "a()"
    assert run("def f\n  if x\n    |\n", "a\n  end\nend", "ruby").text == "a\n  end"
    assert run("if [ -n x ]; then\n  |\n", "a\nfi\nb", "shellscript").text == "a\nfi"
    assert run("it(() => {\n  |\n", "a();\ndone();\n", "javascript").text == "a();"


def test_closing_line_kept_when_block_opened_by_completion() -> None:
    raw = "\n  console.log(obj);\n}\n\nfunction other() {}"
    assert run("function log(obj) {|\n", raw, "javascript").text == "\n  console.log(obj);\n}"


def test_forced_scopes() -> None:
    assert run("|\n", "a = 1\nb = 2", scope="line").text == "a = 1"
    raw = "\n    a,\n    b,"
    assert run("foo(|bar)\n", raw).text == ""  # auto: mid-line, and the line is empty
    assert run("foo(|bar)\n", raw, scope="block").text == raw


def test_closing_line_at_other_indentation_is_kept() -> None:
    # Tabby's similar_lines_01: `  }` closes the `if`, the suffix's `}` the function.
    marked = "function check(obj) {\n  if (obj.a) {\n    return true;\n  |\n}\n"
    assert run(marked, "}", "javascript").text == "}"


def test_similar_blocks_are_not_duplicates() -> None:
    # Tabby's similar_lines_02, reduced: the next test case is similar, not equal.
    marked = 'describe("t", () => {\n  |\n\n  it("b", () => {\n    check(2);\n  });\n});\n'
    raw = 'it("a", () => {\n    check(1);\n  });'
    assert run(marked, raw, "typescript").text == raw


# --------------------------------------------------------------------------- duplication


def test_trailing_lines_repeating_the_suffix_are_dropped() -> None:
    marked = "def f(x):\n    |\n    return x\n"
    assert run(marked, "x += 1\n    return x").text == "x += 1"


def test_completion_repeating_only_the_suffix_is_empty() -> None:
    marked = "def f(x):\n    |\n    return x\n"
    result = run(marked, "return x\n")
    assert result == PostProcessed("", result.replace_start, result.replace_start)


# --------------------------------------------------------------------------- inserting lines

FILE_NAME_CHECK = (
    "def check(lst):\n"
    "    if len(lst) != 2:\n"
    "        return 'No'\n"
    "|    if not lst[1] in suf:\n"
    "        return 'No'\n"
    "    return 'Yes'\n"
)


def test_cursor_at_column_0_inserts_a_line_even_if_it_occurs_later() -> None:
    # The line after the cursor line is the same `return 'No'`: it must not
    # count as the completion repeating the document.
    raw = "        return 'No'\n    if not lst[1] in suf:\n"
    result = run(FILE_NAME_CHECK, raw)
    assert result.text == "        return 'No'\n"
    assert result.replace_end == result.replace_start
    assert applied(FILE_NAME_CHECK, raw).count("return 'No'") == 3


def test_cursor_at_column_0_gets_whole_lines() -> None:
    marked = "def f(x):\n|    return x\n"
    assert run(marked, "    x += 1\n    return x\n").text == "    x += 1\n"
    assert run(marked, "    x += 1\n    y = 2\n    return x\n").text == "    x += 1\n    y = 2\n"
    # Without a line break the model meant to write in front of the text.
    assert run(marked, "#").text == "#"


def test_cursor_at_column_0_is_block_scope() -> None:
    assert completion_scope("x = 1\n", 0) == "block"
    assert completion_scope("x = 1\n", 1) == "line"
    assert not stops("def f(x):\n|    return x\n", "    x += 1\n")
    assert stops("def f(x):\n|    return x\n", "    x += 1\n    return x\n")


def test_mid_line_completion_equal_to_the_next_line_is_kept() -> None:
    marked = "if a:\n    x = f(|)\n    x = f(1)\n"
    assert run(marked, "1").text == "1"


# --------------------------------------------------------------------------- joining the suffix

GAP = "def f(items):\n    total = 0\n    |\n    return total\n"


def test_blind_completion_in_a_gap_is_cut_to_its_first_statement() -> None:
    raw = "for item in items:\n        total += item\n    total *= 2\n    print(total)"
    blind = run(GAP, raw, suffix_aware=False)
    assert blind.text == "for item in items:\n        total += item"
    # A model that saw the suffix decided where to stop.
    assert run(GAP, raw).text == raw


def test_blind_completion_that_meets_the_suffix_is_cut_to_its_first_statement() -> None:
    # It wrote the document's next line after two of its own: a model that
    # does not see the suffix writes on through the file, and its lines before
    # the one it met are a guess at the file, not at the hole. Seen in httpx:
    # `url=url,` then `params=params,` (an argument further down the call).
    raw = "total += 1\n    total *= 2\n    return total\n"
    assert run(GAP, raw, suffix_aware=False).text == "total += 1"
    # A model that saw the suffix decided where its insertion ends.
    assert run(GAP, raw).text == "total += 1\n    total *= 2"


def test_blind_completion_ending_its_block_before_a_dedent_is_kept() -> None:
    marked = "def f(items):\n    for item in items:\n        |\n    return 1\n"
    raw = "a = item\n        b = a\n    return 2\n"
    assert run(marked, raw, suffix_aware=False).text == "a = item\n        b = a"


def test_blind_completion_that_runs_out_inside_the_last_block_is_cut() -> None:
    # The cursor is on the last line of a block: the document's next line is
    # outside it. A completion that stops there (out of tokens) never ended
    # the block, so it does not agree with the document: its first statement.
    marked = "class Part {\n  constructor(value) {\n    |\n  }\n}\n"
    raw = "this.value = value;\n    this.size = 1;\n    this.more = 2;"
    assert run(marked, raw, "javascript", suffix_aware=False).text == "this.value = value;"
    # Ended by its closing line, it meets the document and is kept.
    closed = raw + "\n  }\n"
    expected = "this.value = value;\n    this.size = 1;\n    this.more = 2;"
    assert run(marked, closed, "javascript", suffix_aware=False).text == expected
    # At the end of the file every line has room.
    assert run("def f():\n    |", "a = 1\n    b = 2", suffix_aware=False).text == "a = 1\n    b = 2"


def test_blind_completion_after_code_of_its_own_block_is_cut_even_when_it_ends_it() -> None:
    # A blank line at the end of a constructor that has code: the model wrote
    # the line, a second invented one, then closed the block. Only at a
    # block's start (the test above) is a blind block kept whole.
    marked = "class Part {\n  constructor(value) {\n    this.name = name;\n    |\n  }\n}\n"
    raw = "this.value = value;\n    this.isStringValue = isStringValue;\n  }\n"
    assert run(marked, raw, "javascript", suffix_aware=False).text == "this.value = value;"
    assert run(marked, raw, "javascript").text == (
        "this.value = value;\n    this.isStringValue = isStringValue;"
    )


def test_first_statement_spans_brackets_and_clauses() -> None:
    raw = "x = f(\n        1,\n    )\n    y = 2\n    z = 3"
    assert run(GAP, raw, suffix_aware=False).text == "x = f(\n        1,\n    )"
    raw = "if x:\n        a()\n    else:\n        b()\n    c()"
    assert run(GAP, raw, suffix_aware=False).text == "if x:\n        a()\n    else:\n        b()"
    js = "function f() {\n  |\n  return 1;\n}\n"
    raw = "if (x) {\n    a();\n  } else {\n    b();\n  }\n  c();"
    expected = "if (x) {\n    a();\n  } else {\n    b();\n  }"
    assert run(js, raw, "javascript", suffix_aware=False).text == expected


def test_duplicated_closing_line_is_dropped() -> None:
    marked = "function log(obj) {|\n}\n"
    assert run(marked, "\n  console.log(obj);\n};", "javascript").text == "\n  console.log(obj);"


# --------------------------------------------------------------------------- replace range


@pytest.mark.parametrize(
    ("marked", "raw", "language", "after"),
    [
        ("foo(|)\n", "bar())", "javascript", "foo(bar())\n"),
        ("foo(|)\n", "bar()", "javascript", "foo(bar())\n"),
        ("foo(|);\n", "x);", "javascript", "foo(x);\n"),
        ("foo(|);\n", "x)", "javascript", "foo(x);\n"),
        ("foo(|, 2)\n", "1, 2)", "python", "foo(1, 2)\n"),
        ('print("|")\n', 'hello")', "python", 'print("hello")\n'),
        ('print("|")\n', "hello", "python", 'print("hello")\n'),
        ("x = [|]\n", "1, 2]", "python", "x = [1, 2]\n"),
        ("def f(|):\n", "a, b):", "python", "def f(a, b):\n"),
        ("total = |+ 1\n", "count + 1", "python", "total = count + 1\n"),
        ("    |}\n", "return x;\n    }", "javascript", "    return x;\n    }\n"),
        ("function f() { | }\n", "return 1; }", "javascript", "function f() { return 1; }\n"),
    ],
)
def test_replace_range_covers_auto_closed_text(
    marked: str, raw: str, language: str, after: str
) -> None:
    assert applied(marked, raw, language) == after


def test_rust_lifetimes_are_not_quotes() -> None:
    marked = "fn first<'a>(x: &'a str) -> &'a str {|}\n"
    assert applied(marked, "\n    x\n}", "rust") == (
        "fn first<'a>(x: &'a str) -> &'a str {\n    x\n}\n"
    )


def test_jsx_closing_tag_covers_auto_closed_bracket() -> None:
    marked = "const a = (\n  <div>\n    hi\n  </|>\n);\n"
    assert applied(marked, "div>", "typescriptreact") == (
        "const a = (\n  <div>\n    hi\n  </div>\n);\n"
    )


def test_replace_range_never_leaves_the_cursor_line() -> None:
    result = run("foo(|)\nbar)\n", "x)\nbar)", "python")
    assert result.replace_end - result.replace_start <= 1


def test_syntax_stops_at_end_of_enclosing_statement() -> None:
    marked = "function f() { | }\n"
    raw = "return 1; } function g() { return 2;"
    assert applied(marked, raw, "javascript") == "function f() { return 1; }\n"
    # Indentation alone cannot see the end of a one-line block.
    assert run(marked, raw, "javascript", use_syntax=False).text == raw


# ----------------------------------------------------------- line endings, unicode, edges


def test_crlf_document_gets_crlf_completion() -> None:
    document = "def f():\r\n    \r\n    return 1\r\n"
    cursor = document.index("    \r\n") + 4
    result = postprocess_completion(document, cursor, "x = 1\n    y = 2\n", "python")
    assert result == PostProcessed("x = 1\r\n    y = 2", cursor, cursor)


def test_crlf_replace_range_stops_before_carriage_return() -> None:
    document = "foo()\r\nbar()\r\n"
    result = postprocess_completion(document, 4, "x)\r\n", "python")
    assert result == PostProcessed("x)", 4, 5)
    assert result.applied_to(document) == "foo(x)\r\nbar()\r\n"


def test_cursor_between_cr_and_lf() -> None:
    document = "x = \r\ny = 2\r\n"
    result = postprocess_completion(document, 5, "1", "python")
    assert result == PostProcessed("1", 5, 5)


def test_unicode_offsets_are_code_points() -> None:
    marked = "s = f('é😀|')\n"
    result = run(marked, "ü文字')")
    cursor = marked.index("|")
    assert result == PostProcessed("ü文字')", cursor, cursor + 2)
    assert applied(marked, "ü文字')") == "s = f('é😀ü文字')\n"


def test_unicode_in_indentation_rules() -> None:
    raw = "naïve = '日本'\n    return naïve\n\nprint('✓')"
    assert run("def f():\n    |\n", raw).text == "naïve = '日本'\n    return naïve"


@pytest.mark.parametrize(
    ("document", "cursor", "raw", "expected"),
    [
        ("", 0, "", PostProcessed("", 0, 0)),
        ("", 0, "hello\nworld", PostProcessed("hello\nworld", 0, 0)),
        ("", 5, "x", PostProcessed("x", 0, 0)),
        ("abc", -3, "x", PostProcessed("x", 0, 0)),
        ("abc", 99, "\n  \n", PostProcessed("", 3, 3)),
        ("abc\n", 4, "   ", PostProcessed("", 4, 4)),
        # Column 0 of a non-blank line: a line inserted above it, not glued onto it.
        ("x = 1\n", 0, "import os\n", PostProcessed("import os\n", 0, 0)),
    ],
)
def test_edge_inputs(document: str, cursor: int, raw: str, expected: PostProcessed) -> None:
    assert postprocess_completion(document, cursor, raw, None) == expected


def test_tabs_count_as_indentation() -> None:
    raw = "x = 1\n\treturn x\nprint(f())"
    assert run("def f():\n\t|\n", raw).text == "x = 1\n\treturn x"


def test_unknown_language_uses_indentation_only() -> None:
    raw = "a: 1\n  b: 2\nother: 3"
    assert run("root:\n  |\n", raw, "made-up-language").text == "a: 1\n  b: 2"


def test_invalid_scope_is_rejected() -> None:
    with pytest.raises(ValueError, match="scope"):
        postprocess_completion("", 0, "x", None, scope="word")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- should_stop


JS_FUNCTION = "function f() {\n  |\n}\nf();\n"


@pytest.mark.parametrize(
    ("marked", "partial", "language", "expected"),
    [
        (JS_FUNCTION, "a();", "javascript", False),  # no newline yet
        (JS_FUNCTION, "a();\n", "javascript", False),
        (JS_FUNCTION, "a();\n  b();\n", "javascript", False),
        (JS_FUNCTION, "a();\n}\n", "javascript", True),  # echoes the suffix's `}`
        (JS_FUNCTION, "a();\n}\nfunction g() {\n", "javascript", True),
        ("if (x) {\n  |\n}\n", "a();\n} else {\n", "javascript", False),  # may reopen
        ("if (x) {\n  |\n}\n", "a();\n} else {\n  b();\n", "javascript", False),
        ("def f():\n    |\n", "x = 1\n    return x\n\n", "python", False),
        ("def f():\n    |\n", "x = 1\n    return x\n\ndef g():\n", "python", True),
        ("x = foo(|bar)\n", "1, \n", "python", True),  # line scope: one line only
        ("def f():\n    |\n", "x = 1<|endoftext|>", "python", True),
        ("def f():\n    |\n", "x = 1\n    x = 1\n    x = 1\n", "python", True),
        ("def f(x):\n    |\n    return x\n", "x += 1\n    return x\n", "python", True),
        ("class T:|\n", "\n    def a(self):\n        return 1\n", "python", False),
        (
            "class T:|\n",
            "\n    def a(self):\n        return 1\n    def a(self):\n        return 1\n",
            "python",
            True,  # a block loop
        ),
    ],
)
def test_should_stop(marked: str, partial: str, language: str, expected: bool) -> None:
    assert stops(marked, partial, language) is expected


def test_should_stop_agrees_with_postprocess() -> None:
    # Once should_stop says stop, more text does not change the final result.
    marked = "def f():\n    |\n"
    partial = "x = 1\n    return x\n\ndef g():\n"
    assert stops(marked, partial)
    assert run(marked, partial).text == run(marked, partial + "    pass\n").text


# --------------------------------------------------------------------------- property

TOKENS = ["<fim_middle>", "<|endoftext|>", "<EOT>", "</s>", "<｜fim▁end｜>", "<|im_end|>"]
PIECES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["\n", "\r\n", "    ", "\t", "(", ")", "}", "{", "]", '"', "'", "`", "<", "/>", *TOKENS]
    ),
)
SOURCE = st.lists(PIECES, max_size=25).map("".join)
LANGUAGES = st.sampled_from(
    [None, "python", "javascript", "typescriptreact", "rust", "go", "java", "html", "text"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=SOURCE,
    cursor=st.integers(min_value=-5, max_value=400),
    raw=SOURCE,
    language=LANGUAGES,
    scope=st.sampled_from(["auto", "line", "block"]),
)
def test_postprocess_properties(
    document: str, cursor: int, raw: str, language: str | None, scope: Any
) -> None:
    result = postprocess_completion(document, cursor, raw, language, scope=scope)
    clamped = min(max(cursor, 0), len(document))
    assert result.replace_start == clamped
    assert 0 <= result.replace_start <= result.replace_end <= len(document)
    assert not contains_special_token(result.text)
    # The result is a prefix of the cleaned completion (line endings aside), with
    # a line break added when it inserts lines above the cursor's line (after a
    # last line whose trailing whitespace may have been dropped).
    cleaned = strip_special_tokens(raw).replace("\r\n", "\n")
    text = result.text.replace("\r\n", "\n")
    assert (cleaned + "\n").startswith(text) or (
        text.endswith("\n") and cleaned.startswith(text[:-1])
    )
    # The replaced range stays on the cursor's line.
    assert "\n" not in document[result.replace_start : result.replace_end]
    assert isinstance(should_stop(document, cursor, raw, language, scope=scope), bool)


# --------------------------------------------------------------------------- a body that follows


BODY_FOLLOWS = "def biggest(x, y):\n|\n        return x\n    return y\n"


@pytest.mark.parametrize("suffix_aware", [True, False])
def test_a_block_header_whose_body_follows_is_completed_alone(suffix_aware: bool) -> None:
    # HumanEval-style hole: the `if` line is missing, its body is there. The
    # model writes the header and a second body; only the header is wanted.
    raw = "    if x > y:\n        return x\n    else:\n        return y"
    result = run(BODY_FOLLOWS, raw, suffix_aware=suffix_aware)
    assert result.text == "    if x > y:"


def test_a_brace_block_header_whose_body_follows_is_completed_alone() -> None:
    marked = "function f(a) {\n|\n    return a;\n  }\n}\n"
    raw = "  if (a > 0) {\n    return a;\n  }\n  return 0;"
    assert run(marked, raw, "javascript").text == "  if (a > 0) {"


def test_a_block_is_kept_whole_when_no_body_follows() -> None:
    # The next line is at the header's own level: the new block needs its body.
    marked = "def biggest(x, y):\n|\n    return y\n"
    raw = "    if x > y:\n        return x"
    assert run(marked, raw).text == "    if x > y:\n        return x"


def test_a_header_typed_at_the_end_of_the_file_keeps_its_body() -> None:
    raw = "    if x > y:\n        return x"
    assert run("def biggest(x, y):\n|", raw).text == raw


# --------------------------------------------------------------------------- line end


def complete_at_marker(text: str, raw: str, language: str = "python") -> str:
    cursor = text.index(CURSOR)
    document = text.replace(CURSOR, "")
    return postprocess_completion(document, cursor, raw, language).text


@pytest.mark.parametrize(
    ("text", "raw", "expected"),
    [
        # The rest of a statement being typed is that line: no guessed lines after it.
        (
            'def kind(name):\n    return guess(name) or "application/octet-├\n\n\nX = 1\n',
            'stream"\n    else:\n        return None',
            'stream"',
        ),
        (
            "def area(r):\n    total = 3.14 * r├\n    return total\n",
            " * r\n    print(total)",
            " * r",
        ),
        ("let x = compute(a├\nfoo();\n", ", b);\nlet y = 2;", ", b);"),
        # Comments are the language's own: `//` divides in Python, `#` names a
        # private field in JavaScript.
        ("def mean(t, n):\n    q = (t├\n", " // n)\n    print(q)", " // n)"),
        ("let n = this.#count├\nfoo();\n", " + 1;\nlet y = 2;", " + 1;"),
        # A trailing comment is not the line's code.
        ("def f(x):\n    y = x├\n", " + 1  # add one (\n    print(y)", " + 1  # add one ("),
    ],
)
def test_a_line_being_typed_ends_with_its_statement(text: str, raw: str, expected: str) -> None:
    language = "javascript" if text.startswith("let") else "python"
    assert complete_at_marker(text, raw, language) == expected
    cursor = text.index(CURSOR)
    # The decode loop stops at that newline too.
    first_line = raw.split("\n", maxsplit=1)[0]
    assert should_stop(text.replace(CURSOR, ""), cursor, first_line + "\n", language)


@pytest.mark.parametrize(
    ("text", "raw", "expected"),
    [
        # A block header typed up to the cursor: its body follows.
        ("def double(x):├\n", "\n    return 2 * x\n\n\nprint(1)", "\n    return 2 * x"),
        ("def double(x├\n", "):\n    return 2 * x\n\n\nprint(1)", "):\n    return 2 * x"),
        # An open bracket or operator: the statement goes on.
        ("values = [1,├\n", " 2,\n    3]\nprint(values)", " 2,\n    3]"),
        ("total = first +├\n", " \\\n    second\n", " \\\n    second"),
        # A blank line in a block: a new statement, as many lines as its block takes.
        (
            "def f(x):\n    ├\n",
            "y = x + 1\n    return y\n\n\nprint(f(1))",
            "y = x + 1\n    return y",
        ),
    ],
)
def test_an_open_line_or_a_blank_one_goes_on_to_its_block(
    text: str, raw: str, expected: str
) -> None:
    assert complete_at_marker(text, raw) == expected


def test_the_closers_a_completion_replaces_are_found_in_bounded_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each candidate is scored by scanning the line after it: over a long line
    # of closers that was a scan per character (minutes for 200,000 of them).
    fed: list[int] = []
    original = postprocess._BracketScanner.feed

    def counting(self: postprocess._BracketScanner, text: str) -> None:
        fed.append(len(text))
        original(self, text)

    monkeypatch.setattr(postprocess._BracketScanner, "feed", counting)
    for closers in (")" * 100_000, '"' * 100_000, ", )" * 30_000):
        fed.clear()
        result = postprocess.postprocess_completion("f(" + closers, 2, "x)", "python")
        assert result.text
        assert sum(fed) < 40_000, (closers[:4], sum(fed))
    # Short lines keep the rule: what the completion closes itself replaces
    # the closers after the cursor.
    for code, cursor, raw, replaced in (("print(x)\n", 7, ")", 1), ('f(a, "b")\n', 5, '"b")', 4)):
        done = postprocess.postprocess_completion(code, cursor, raw, "python")
        assert (done.text, done.replace_end - done.replace_start) == (raw, replaced)
