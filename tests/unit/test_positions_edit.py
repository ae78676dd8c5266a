"""A line index follows edits: the same bounds as a fresh index, for every kind of edit."""

from __future__ import annotations

import random

from lsp_server.positions import LineIndex

PIECES = ["a", "bc", "\n", "\r", "\r\n", "é", "😀", " "]


def test_edited_indexes_equal_fresh_ones_for_random_edits() -> None:
    rng = random.Random(20261201)
    for _ in range(1500):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
        index = LineIndex(text)
        for _ in range(6):
            start = rng.randint(0, len(text))
            end = rng.randint(start, len(text))
            inserted = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 5)))
            text = text[:start] + inserted + text[end:]
            index = index.edited(text, start, end, inserted)
            fresh = LineIndex(text)
            assert index.line_count == fresh.line_count
            for line in range(fresh.line_count):
                for encoding in ("utf-8", "utf-16", "utf-32"):
                    for character in (0, 1, 3, 99):
                        assert index.offset(line, character, encoding) == fresh.offset(
                            line, character, encoding
                        )
            for offset in range(len(text) + 1):
                assert index.position(offset, "utf-16") == fresh.position(offset, "utf-16")


def test_an_edit_leaves_the_old_index_valid() -> None:
    text = "one\ntwo\nthree\n"
    index = LineIndex(text)
    edited = index.edited("one\ntwo\n2.5\nthree\n", 8, 8, "2.5\n")
    assert index.offset(2, 0, "utf-16") == 8  # "three" in the old text
    assert edited.offset(3, 0, "utf-16") == 12  # "three" after the insert
