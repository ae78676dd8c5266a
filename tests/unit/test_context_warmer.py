"""Finding the place a warm-up is for in a document edited since (pure text)."""

from __future__ import annotations

import pytest

from engine.completion.warming import place_after_edits

TEXT = "first line\ncursor line\nlast line\n"
AT = TEXT.index("line\nlast")  # on "cursor line", before "line"


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (TEXT, AT),
        (TEXT.replace("last", "final"), AT),  # below the cursor's line
        (TEXT + "more\n", AT),
        (TEXT.replace("first", "1st"), AT - 2),  # above it: moved by the change
        ("zero\n" + TEXT, AT + 5),
        (TEXT.replace("first line\n", ""), AT - 11),
        (TEXT.replace("cursor line", "cursor  line"), None),  # on its line
        (TEXT.replace("cursor line\n", "cursor line"), None),  # its newline
        (TEXT.replace("first line\n", "first line"), None),  # the newline before it
        (TEXT.replace("cursor", "xcursor"), None),  # at its start
        (TEXT.replace("cursor line", "cursor linex"), None),  # at its end
        ("", None),
    ],
)
def test_a_place_is_found_again_after_edits_away_from_its_line(
    new: str, expected: int | None
) -> None:
    assert place_after_edits(TEXT, new, AT) == expected
    if expected is not None:
        assert new[expected:].startswith("line\n")
