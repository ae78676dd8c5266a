"""Server-Sent Events of ``POST /inference/completion`` with ``options.stream``.

A stream is ``token`` events (text deltas), then one ``done`` event carrying
the whole :class:`~ai_ide.wire.inference.CompletionResponse`, or an ``error``
event carrying the error envelope when generation fails after the first token.
An error before the first token is an ordinary error response instead.
"""

from __future__ import annotations

from typing import Literal, get_args

from ai_ide.wire.common import WireModel

StreamEventType = Literal["token", "done", "error"]
STREAM_EVENT_TYPES: tuple[str, ...] = get_args(StreamEventType)


class TokenEvent(WireModel):
    """A piece of generated text (the ``data`` of a ``token`` event)."""

    text: str
