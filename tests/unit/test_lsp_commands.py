"""Pure helpers of the language server's commands."""

from __future__ import annotations

from lsp_server.features.commands import comment_above


def test_comment_above_counts_lines_as_editors_do() -> None:
    # A form feed or U+2028 inside a line is not a line break for an editor.
    text = "x = '\u2028'  # odd\n\f\n# add two numbers\ny = 1\n"
    assert comment_above(text, 3) == "add two numbers"
    assert comment_above("# sum them\r\n", 1) == "sum them"  # the line after the last
    assert comment_above("# a\r# b\rz = 1\r", 2) == "a\nb"
    assert comment_above("", 0) is None
