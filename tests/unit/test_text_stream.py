"""Detokenization and stop policy of one generation, on byte pieces (no model)."""

from __future__ import annotations

import pytest

from engine.runtime import text_stream
from engine.runtime.messages import BlockStop, SamplingParams
from engine.runtime.text_stream import TextStream, held_back


def test_split_utf8_characters_are_joined_before_they_show() -> None:
    stream = TextStream(SamplingParams(max_tokens=10), None, 0.0)
    euro = "€".encode()
    assert stream.feed(euro[:2], 1, 0.0) is None
    assert stream.delta() == ""
    assert stream.feed(euro[2:], 2, 0.0) is None
    assert stream.delta() == "€"


def test_a_stop_string_cuts_the_text_and_is_never_streamed() -> None:
    stream = TextStream(SamplingParams(max_tokens=10, stop=["END"]), None, 0.0)
    shown = []
    for n, piece in enumerate([b"ab", b"cE", b"N"], start=1):
        assert stream.feed(piece, n, 0.0) is None
        shown.append(stream.delta())
    assert shown == ["ab", "c", ""]  # "E", then "EN", might start "END"
    assert stream.feed(b"Dx", 4, 0.0) == "stop"
    assert stream.close("stop") == ""
    assert stream.text == "abc"


def test_held_back_is_the_longest_stop_prefix_at_the_end() -> None:
    assert held_back("abcEN", ["END", "Nope"]) == 2
    assert held_back("abc", ["END"]) == 0
    assert held_back("x\n", ["\n\n"]) == 1
    assert held_back("abab", ["ababX", "bX"]) == 4
    assert held_back("ab", ["", "b"]) == 0


def test_length_time_budget_and_end_of_generation() -> None:
    params = SamplingParams(max_tokens=2, time_budget_ms=100.0)
    assert TextStream(params, None, 0.0).feed(None, 1, 0.0) == "eos"
    stream = TextStream(params, None, 10.0)
    assert stream.feed(b"a", 1, 10.05) is None
    assert stream.feed(b"b", 2, 10.05) == "length"
    assert TextStream(params, None, 10.0).feed(b"a", 1, 10.2) == "time_budget"


def test_the_block_end_is_judged_at_each_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The judgement itself is the post-processor's (tested there); this is the wiring.
    asked: list[tuple[str, int, str, str | None]] = []

    def judge(document: str, cursor: int, partial: str, language: str | None) -> bool:
        asked.append((document, cursor, partial, language))
        return partial.count("\n") == 2

    monkeypatch.setattr(text_stream, "should_stop", judge)
    block = BlockStop(document="def f(x):\n    ", cursor=14, language="python")
    stream = TextStream(SamplingParams(max_tokens=50), block, 0.0)
    assert stream.feed(b"return x", 1, 0.0) is None
    assert stream.feed(b"\n", 2, 0.0) is None
    assert stream.feed(b"  y", 3, 0.0) is None
    assert stream.feed(b"\n", 4, 0.0) == "block_end"
    assert asked == [
        (block.document, 14, "return x\n", "python"),
        (block.document, 14, "return x\n  y\n", "python"),
    ]


def test_close_delivers_what_was_held_back() -> None:
    stream = TextStream(SamplingParams(max_tokens=10, stop=["END"]), None, 0.0)
    stream.feed(b"abE", 1, 0.0)
    assert stream.delta() == "ab"
    assert stream.close("length") == "E"
    assert stream.close("length") == ""
