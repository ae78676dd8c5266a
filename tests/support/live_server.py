"""A live ``ai-ide serve`` for the SDK tests: where it listens and how to reach it."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "sdk" / "examples"
EXAMPLE_FILES = {
    "python": "documented_example.py",
    "typescript": "documented-example.mjs",
    "rust": "documented_example.rs",
}
KEY_PLACEHOLDER = "your-api-key"
URL_PLACEHOLDER = "https://api.rust-ai-ide.dev/v1"


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


def live_copy(language: str, server: LiveServer) -> str:
    """A committed documented example with the live server's key (and URL) in place."""
    text = (EXAMPLES / EXAMPLE_FILES[language]).read_text(encoding="utf-8")
    return text.replace(KEY_PLACEHOLDER, server.api_key).replace(URL_PLACEHOLDER, server.base_url)


def require(*tools: str) -> None:
    """Skip without these tools, or fail when ``SDK_TESTS=required`` (as in CI)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed"
    if os.environ.get("SDK_TESTS") == "required":
        pytest.fail(f"SDK_TESTS=required but {reason}")
    pytest.skip(reason)
