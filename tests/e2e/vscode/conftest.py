"""The ``vscode`` marker: tests that drive a real VS Code (code-server in Chromium)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (``-m vscode`` selects, ``-m 'not vscode'`` skips them)."""
    config.addinivalue_line("markers", "vscode: drives the extension in code-server via Chromium")
