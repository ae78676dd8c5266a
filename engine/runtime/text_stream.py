"""One generation's text as its tokens arrive: detokenization and when to stop.

Token pieces are bytes that may split a UTF-8 character, so they go through
an incremental decoder and the text only grows. Each new token is checked
against the request's stops (end of generation, stop strings, the end of the
block the completion started in, max_tokens, the time budget), and streaming
holds back any tail that might be the start of a stop string, so a stop
string is never shown.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

from engine.completion.postprocess import should_stop
from engine.runtime.messages import BlockStop, FinishReason, SamplingParams


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters might be the start of a stop sequence."""
    hold = 0
    last = text[-1:]
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), hold, -1):
            # Only a prefix ending in the text's last character can be its tail.
            if stop[k - 1] == last and text.endswith(stop[:k]):
                hold = k
                break
    return hold


class TextStream:
    """The decoded text of one generation, its stop policy and what was streamed."""

    __slots__ = ("_block", "_decoder", "_params", "_started", "emitted", "text")

    def __init__(self, params: SamplingParams, block: BlockStop | None, started: float) -> None:
        self._params = params
        self._block = block
        self._started = started  # the time budget counts from admission
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""
        self.emitted = 0  # characters already delivered as token events

    def feed(self, piece: bytes | None, n_generated: int, now: float) -> FinishReason | None:
        """Add the piece of the ``n_generated``-th token; say why to stop, if it is time.

        ``piece`` is None for an end-of-generation or control token.
        """
        finish: FinishReason | None
        if piece is None:
            finish = "eos"
        else:
            self.text += self._decoder.decode(piece)
            finish = self._check_stops()
        params = self._params
        if finish is None and n_generated >= params.max_tokens:
            finish = "length"
        budget = params.time_budget_ms
        if finish is None and budget is not None and (now - self._started) * 1000.0 >= budget:
            finish = "time_budget"
        return finish

    def _check_stops(self) -> FinishReason | None:
        params = self._params
        text = self.text
        if params.stop:
            window = max(len(s) for s in params.stop) + 16
            start = max(0, len(text) - window)
            cut = min(
                (i for i in (text.find(s, start) for s in params.stop if s) if i >= 0),
                default=-1,
            )
            if cut >= 0:
                self.text = text[:cut]
                return "stop"
        block = self._block
        if (
            block is not None
            and text.endswith("\n")
            and should_stop(block.document, block.cursor, text, block.language)
        ):
            return "block_end"
        return None

    def delta(self) -> str:
        """New text that is safe to stream (empty if none); marks it delivered."""
        safe = len(self.text) - held_back(self.text, self._params.stop)
        if safe <= self.emitted:
            return ""
        out = self.text[self.emitted : safe]
        self.emitted = safe
        return out

    def close(self, reason: FinishReason) -> str:
        """Finish decoding; return the text not yet delivered (held back or flushed)."""
        tail = self._decoder.decode(b"", final=True)
        if reason != "stop" and tail:
            self.text += tail
        rest = self.text[self.emitted :]
        self.emitted = len(self.text)
        return rest
