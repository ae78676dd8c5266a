"""A live ``ai-ide serve`` for the SDK tests: where it listens and how to reach it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LiveServer:
    """Where the server listens and how to authenticate."""

    root_url: str  # http://127.0.0.1:PORT
    api_key: str
    data_dir: Path

    @property
    def base_url(self) -> str:
        """The SDKs' base URL (the API root, ``.../v1``)."""
        return f"{self.root_url}/v1"

    def env(self) -> dict[str, str]:
        """Environment for a child test runner (node, cargo) aimed at this server."""
        return {
            **os.environ,
            "AI_IDE_BASE_URL": self.base_url,
            "AI_IDE_API_KEY": self.api_key,
            "AI_IDE_TEST_MODEL": "tiny-qwen",
            "AI_IDE_TEST_LONG_MODEL": "tiny-codellama",
        }


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
