"""A Server-Sent Events decoder (the subset the API sends: event and data lines)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerSentEvent:
    """One event: its type and its JSON data."""

    event: str
    data: Any


class SSEDecoder:
    """Feed it lines; it returns an event at each blank line that ends one."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        """One line without its line break."""
        if not line:
            if not self._data:
                self._event = "message"
                return None
            event = ServerSentEvent(self._event, json.loads("\n".join(self._data)))
            self._event, self._data = "message", []
            return event
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None
