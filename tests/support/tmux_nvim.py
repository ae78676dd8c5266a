"""A real Neovim in tmux, driven as a person drives it: keys in, screens out.

Keys go in with ``tmux send-keys`` and the screen comes back with ``tmux
capture-pane``. What a screen cannot show exactly (the buffer's text, where
ghost text sits, the requests the plugin sent) comes from
``tests/e2e/nvim/tmux_probe.lua`` over ``nvim --server SOCKET --remote-expr``.
Every wait polls with a bounded timeout: nothing depends on how fast the
machine is.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.nvim_helpers import PLUGIN

PROBE = Path(__file__).resolve().parents[1] / "e2e" / "nvim" / "tmux_probe.lua"
WIDTH, HEIGHT = 120, 32
# Messages that must never appear: Lua errors from the plugin or Neovim's
# LSP client, and the prompt that swallows the next key.
FORBIDDEN = ("Press ENTER", "Error in ", "E5108", "E5107", "stack traceback", "Invalid 'col'")


def tmux_binary() -> str:
    """The tmux on PATH; without one the test is skipped, or fails with E2E_TMUX=required.

    ``.ci/run`` installs tmux after the main test run and runs these tests then
    (required) when the main run had to skip them.
    """
    found = shutil.which("tmux")
    if not found:
        message = "tmux is needed for the tmux Neovim tests (apt-get install -y tmux)"
        if os.environ.get("E2E_TMUX") == "required":
            pytest.fail(message)
        pytest.skip(message)
    return found


def lua_string(value: str) -> str:
    """A Lua long-bracket string literal holding ``value`` verbatim."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    return f"[{'=' * level}[{value}]{'=' * level}]"


@dataclass
class TmuxNvim:
    """One Neovim in a private tmux server, with the plugin set up."""

    nvim: str
    root: Path
    server_cmd: list[str]
    setup: dict[str, Any] = field(default_factory=dict)
    screens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tmux = tmux_binary()
        self.socket = self.root / "tmux.sock"
        self.listen = self.root / "nvim.sock"
        self.home = self.root / "home"

    # ------------------------------------------------------------ lifecycle

    def start(self, file: Path) -> None:
        """Starts ``nvim file`` in a new tmux session of WIDTH x HEIGHT."""
        options = {"cmd": self.server_cmd, **self.setup}
        init = self.root / "init.lua"
        init.write_text(
            "\n".join(
                [
                    f"vim.opt.runtimepath:prepend({lua_string(str(PLUGIN))})",
                    "vim.o.swapfile = false",
                    "vim.o.laststatus = 2",
                    "vim.o.statusline = \"%f %m%=%{v:lua.require'ai_ide'.statusline()} \"",
                    "vim.opt.shortmess:append('I')",
                    f"dofile({lua_string(str(PROBE))})",
                    f"require('ai_ide').setup(vim.json.decode({lua_string(json.dumps(options))}))",
                ]
            ),
            encoding="utf-8",
        )
        env = {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_STATE_HOME": str(self.home / "state"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "TERM": "tmux-256color",
        }
        script = self.root / "nvim.sh"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        script.write_text(
            "#!/bin/sh\n"
            + exports
            + f"cd {shlex.quote(str(file.parent))}\n"
            + f"exec {shlex.quote(self.nvim)} -u {shlex.quote(str(init))} "
            + f"--listen {shlex.quote(str(self.listen))} {shlex.quote(str(file))}\n",
            encoding="utf-8",
        )
        script.chmod(0o755)
        self._tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "ai", "-x", str(WIDTH), "-y", str(HEIGHT),
            str(script),
        )  # fmt: skip
        self.wait_for(lambda s: s.get("file") == str(file), "Neovim to open the file", timeout=60)

    def close(self) -> None:
        """Ends this test's tmux server (and the Neovim and language server in it)."""
        server = self.language_server_pid()
        subprocess.run(
            [self.tmux, "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )
        if server is not None:
            try:
                psutil.Process(server).wait(timeout=30)
            except psutil.TimeoutExpired:
                psutil.Process(server).kill()
            except psutil.NoSuchProcess:
                pass

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            [self.tmux, "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    # ------------------------------------------------------------ input

    def keys(self, *keys: str) -> None:
        """Named keys (``Escape``, ``Enter``, ``BSpace``, ``Tab``, ``C-u``...)."""
        self._tmux("send-keys", "-t", "ai", *keys)

    def type(self, text: str, *, pause: float = 0.0) -> None:
        """Types ``text`` literally: at once (fast typing), or a key at a time with ``pause``."""
        if pause <= 0:
            self._tmux("send-keys", "-t", "ai", "-l", text)
            return
        for char in text:
            self._tmux("send-keys", "-t", "ai", "-l", char)
            time.sleep(pause)

    def command(self, line: str) -> None:
        """An Ex command from Normal mode: ``:line<CR>``."""
        self.type(":" + line)
        self.keys("Enter")

    # ------------------------------------------------------------ output

    def screen(self) -> str:
        """The visible screen, as text; kept for failure messages."""
        text = self._tmux("capture-pane", "-p", "-t", "ai")
        self.screens.append(text)
        del self.screens[:-5]
        self.check_screen(text)
        return text

    def check_screen(self, text: str) -> None:
        """Fails on any message a user must never see."""
        for bad in FORBIDDEN:
            assert bad not in text, f"the screen shows {bad!r}:\n{text}"

    def state(self) -> dict[str, Any]:
        """The probe's view of the editor (buffer text, mode, ghost text, requests...)."""
        result = subprocess.run(
            [
                self.nvim,
                "--server",
                str(self.listen),
                "--remote-expr",
                "v:lua.ai_ide_probe.state()",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "HOME": str(self.home)},
        )
        if result.returncode != 0 or not result.stdout.strip():
            return {}
        state: dict[str, Any] = json.loads(result.stdout)
        for bad in FORBIDDEN:
            assert bad not in state["messages"], f":messages shows {bad!r}:\n{state['messages']}"
        return state

    def lua(self, expression: str) -> str:
        """Evaluates a Lua expression in the editor (for test set-up only)."""
        result = subprocess.run(
            [
                self.nvim,
                "--server",
                str(self.listen),
                "--remote-expr",
                f"luaeval({json.dumps(expression)})",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={**os.environ, "HOME": str(self.home)},
        )
        return result.stdout

    def wait_for(
        self,
        condition: Callable[[dict[str, Any]], Any],
        what: str,
        *,
        timeout: float = 120,
        screen: Callable[[str], bool] | None = None,
    ) -> dict[str, Any]:
        """Polls state (and the screen) until ``condition(state)`` (and ``screen``) hold."""
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            text = self.screen() if self.socket.exists() else ""
            state = self.state() if self.listen.exists() else {}
            if state and condition(state) and (screen is None or screen(text)):
                return state
            time.sleep(0.2)
        last = self.screens[-1] if self.screens else "(no screen)"
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what}\nstate: "
            f"{json.dumps({k: v for k, v in state.items() if k != 'messages'})[:3000]}\n"
            f"messages: {state.get('messages', '')[-2000:]}\nscreen:\n{last}"
        )

    def wait_screen(self, needle: str, what: str, *, timeout: float = 120) -> str:
        """Polls the screen until it shows ``needle``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if needle in text:
                return text
            time.sleep(0.2)
        last = self.screens[-1] if self.screens else "(no screen)"
        raise AssertionError(f"timed out waiting for {what} ({needle!r}) on the screen:\n{last}")

    # ------------------------------------------------------------ the server

    def language_server_pid(self) -> int | None:
        """The ``ai-ide lsp`` process Neovim started, if one runs."""
        try:
            pane = int(self._tmux("display-message", "-p", "-t", "ai", "#{pane_pid}").strip())
            children = psutil.Process(pane).children(recursive=True)
        except (AssertionError, ValueError, psutil.NoSuchProcess):
            return None
        for child in children:
            try:
                if "lsp_server.cli" in " ".join(child.cmdline()):
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None
