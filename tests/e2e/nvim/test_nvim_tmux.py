"""The Neovim plugin as a person uses it: a real Neovim 0.12 in tmux.

Keys go in with ``tmux send-keys``; each step waits (with a bounded timeout)
for the screen or the buffer to show the outcome. Every screen read and every
probe of the editor fails the test on a Lua error, an "Error in ..." message
or a "Press ENTER" prompt (see ``tests/support/tmux_nvim.py``). The language
server is ``ai-ide lsp`` on a tiny model run by llama.cpp.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.nvim_helpers import nvim_binary
from tests.support.tmux_nvim import TmuxNvim, tmux_binary

pytestmark = [pytest.mark.nvim, pytest.mark.timeout(600)]

MODEL = "tiny-starcoder"
SHAPES = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\n"
PRICING = (
    "def total_price(price, quantity, tax_rate):\n"
    "    return price * quantity * (1 + tax_rate)\n"
    "\n\n"
    "def report(items):\n"
    "    total = sum(items)\n"
    "    count = len(items)\n"
    "    print(total / count)\n"
)


@pytest.fixture
def editor(tmp_path: Path, lsp_config_file: Path) -> Iterator[TmuxNvim]:
    """A Neovim in tmux whose ai_ide plugin starts ``ai-ide lsp`` on the tiny models."""
    tmux_binary()
    server = [sys.executable, "-m", "lsp_server.cli", "lsp", "--config", str(lsp_config_file)]
    session = TmuxNvim(
        nvim_binary(),
        tmp_path,
        [*server, "--no-http"],
        setup={"model": MODEL, "max_tokens": 16},
    )
    try:
        yield session
    finally:
        session.close()


def project_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "project" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def model_loaded(state: dict[str, Any]) -> bool:
    return bool(state.get("client")) and f"{MODEL} loaded" in state.get("statusline", "")


def ghost_fits(state: dict[str, Any]) -> bool:
    """A drawn suggestion sits at the cursor (the plugin drops it otherwise)."""
    ghost = state.get("ghost")
    if not ghost or not state.get("mode", "").startswith("i"):
        return True
    return [ghost["row"], ghost["col"]] == state["cursor"]


def settle(editor: TmuxNvim, polls: int = 8) -> dict[str, Any]:
    """Reads the editor a few times (each read checks for errors), as time passes."""
    state: dict[str, Any] = {}
    for _ in range(polls):
        state = editor.wait_for(lambda s: True, "the editor to answer", timeout=60)
        assert ghost_fits(state), state
    return state


def wait_ghost(editor: TmuxNvim, what: str) -> dict[str, Any]:
    state = editor.wait_for(lambda s: s.get("ghost") and ghost_fits(s), what, timeout=120)
    return state


def test_everyday_edits_never_show_an_error(editor: TmuxNvim, tmp_path: Path) -> None:
    editor.start(project_file(tmp_path, "shapes.py", SHAPES))
    editor.wait_for(model_loaded, "the model to load (statusline)")
    editor.keys("G")
    editor.type("o")
    editor.type("def square(x", pause=0.05)
    shown = wait_ghost(editor, "a suggestion after `def square(x`")
    suggestion = shown["ghost"]["text"]

    # Typing what the suggestion starts with keeps the rest of it drawn.
    first = suggestion[0]
    if len(suggestion) > 1 and first.isprintable() and first not in "\n\t ;":
        line_before = shown["text"].split("\n")[shown["cursor"][0]]
        editor.type(first)
        state = editor.wait_for(
            lambda s: s["text"].split("\n")[s["cursor"][0]] == line_before + first,
            "the typed character",
        )
        assert state["ghost"] is not None and state["ghost"]["text"] == suggestion[1:], state
        suggestion = suggestion[1:]

    # Typing something else drops it at once: the old text is never drawn
    # shifted over what was typed (`def square(x):umber(n):`).
    other = "Q" if not suggestion.startswith("Q") else "Z"
    before = editor.state()["text"]
    editor.type(other)
    state = editor.wait_for(lambda s: s["text"] != before, "the mismatching character")
    assert state["ghost"] is None or state["ghost"]["text"] not in (suggestion, suggestion[1:])
    assert ghost_fits(state), state

    # Backspace at the end of the line while a suggestion shows.
    wait_ghost(editor, "a suggestion before Backspace")
    editor.keys("BSpace")
    settle(editor)

    # <C-u> while a suggestion shows.
    wait_ghost(editor, "a suggestion before <C-u>")
    editor.keys("C-u")
    state = settle(editor)
    assert state["mode"].startswith("i")

    # Enter on an auto-indented blank line: Python indents after the colon,
    # the second Enter leaves that line empty again.
    editor.type("def square(x):")
    editor.keys("Enter")
    editor.wait_for(lambda s: s["text"].endswith("def square(x):\n    "), "the auto-indent")
    editor.keys("Enter")
    settle(editor)
    editor.keys("Enter")

    # Fast typing: a whole line at once.
    editor.type("    return x * x  # the square")
    editor.wait_for(lambda s: "return x * x  # the square" in s["text"], "the fast typing")
    settle(editor)
    editor.keys("Escape")
    state = editor.wait_for(lambda s: s["mode"] == "n", "Normal mode")
    assert state["ghost"] is None
    assert "Error" not in state["messages"] and "E5" not in state["messages"], state["messages"]


def test_accepting_is_its_own_undo_step_and_only_the_edited_buffer_asks(
    editor: TmuxNvim, tmp_path: Path
) -> None:
    helper = project_file(tmp_path, "helper.py", "def helper():\n    return 42\n")
    shapes = project_file(tmp_path, "shapes.py", SHAPES)
    editor.start(helper)
    editor.wait_for(model_loaded, "the model to load")
    editor.command(f"edit {shapes}")
    editor.wait_for(
        lambda s: s["file"] == str(shapes) and (s.get("client") or {}).get("attached"),
        "shapes.py to attach",
    )
    # Every completion counts as slow from here: the status line says so.
    editor.lua(
        "vim.lsp.get_clients({ name = 'ai_ide' })[1]:notify('workspace/didChangeConfiguration',"
        " { settings = { aiIde = { thinkingDelayMs = 0 } } })"
    )
    editor.keys("G")
    editor.type("o")
    editor.type("def cube(y", pause=0.05)
    state = wait_ghost(editor, "a suggestion after `def cube(y`")
    editor.wait_for(lambda s: s["thinking_seen"], '"ai-ide: thinking…" in the status line')
    typed = state["text"]
    editor.keys("Tab")
    accepted = editor.wait_for(lambda s: s["text"] != typed, "<Tab> to accept")["text"]
    assert accepted.startswith(typed) and len(accepted) > len(typed)
    editor.type("  # done")
    editor.wait_for(lambda s: s["text"].endswith("  # done"), "typing after the suggestion")
    editor.keys("Escape")
    editor.wait_for(lambda s: s["mode"] == "n", "Normal mode")

    # One `u` per step: what was typed after, the suggestion, what was typed before.
    editor.type("u")
    editor.wait_for(lambda s: s["text"] == accepted, "undo of the typing after the suggestion")
    editor.type("u")
    editor.wait_for(lambda s: s["text"] == typed, "undo of the accepted suggestion alone")
    editor.type("u")
    editor.wait_for(lambda s: s["text"] == SHAPES[:-1], "undo of the typing before")

    # Typing in shapes.py never asked for suggestions in the hidden helper.py.
    requests = editor.state()["requests"]
    assert requests.get(shapes.as_uri(), 0) > 0, requests
    assert requests.get(helper.as_uri(), 0) == 0, requests

    # :bd of the other buffer keeps the status line's model state.
    editor.command(f"bdelete {helper}")
    state = editor.wait_for(lambda s: s["file"] == str(shapes), "shapes.py after :bd")
    assert f"ai-ide: {MODEL} loaded" in state["statusline"]
    editor.wait_screen(f"ai-ide: {MODEL} loaded", "the status line after :bd")


def select_and_act(editor: TmuxNvim, line: int, col: int, keys: list[str], title: str) -> None:
    """Selects from (line, col) with ``keys``, opens the code actions, picks ``title``.

    Each step waits for the editor to show it took the keys (the cursor
    placed, Visual mode on). A menu without ``title`` is reported with what
    the editor selected and told the server, closed, and asked for once more
    (the refactoring is listed from the server's copy of the text; a second
    miss fails the test with both reports).
    """
    reports: list[str] = []
    for _ in range(2):
        editor.command(f"call cursor({line}, {col})")
        editor.wait_for(
            lambda s: s.get("mode") == "n" and s.get("cursor") == [line - 1, col - 1],
            f"the cursor at {line}:{col}",
        )
        editor.keys(*keys)
        editor.wait_for(lambda s: s.get("mode") in ("v", "V"), "Visual mode")
        editor.type("gra")
        screen = editor.wait_screen("Type number", f"the code action menu for {title!r}")
        if title in screen:
            number = next(
                row.split(":", 1)[0].strip() for row in screen.splitlines() if row.endswith(title)
            )
            editor.type(number)
            editor.keys("Enter")
            return
        # What the editor selected, and what it told the server, decide the menu.
        state = editor.state()
        keep = ("mode", "cursor", "text", "client", "events")
        reports.append(
            f"{title!r} not in the menu:\n{screen}\nthe editor's state:\n"
            + json.dumps({k: state.get(k) for k in keep}, indent=1)
        )
        warnings.warn(reports[-1], stacklevel=2)
        editor.keys("Escape")  # closes the menu; Visual mode is back
        editor.wait_for(lambda s: s.get("mode") in ("v", "V", "n"), "the menu to close")
        editor.keys("Escape")
        editor.wait_for(lambda s: s.get("mode") == "n", "Normal mode")
    raise AssertionError("\n\n".join(reports))


def test_a_killed_server_comes_back_with_every_buffer(editor: TmuxNvim, tmp_path: Path) -> None:
    path = project_file(tmp_path, "pricing.py", PRICING)
    editor.start(path)
    editor.wait_for(model_loaded, "the model to load")
    first = editor.language_server_pid()
    assert first is not None
    os.kill(first, signal.SIGTERM)
    # Typing on, in Insert mode, as the server restarts: the restart must not
    # disturb the typing, and the new server must follow it (with a client-less
    # moment, Neovim stops tracking the buffer's changes for good).
    editor.keys("g", "g", "O")
    editor.type("# edited while the server was down", pause=0.1)
    editor.keys("Escape")
    state = editor.wait_for(
        lambda s: "restarting it" in s["messages"], "the message that it restarts"
    )
    assert "the server stopped (signal 15); restarting it" in state["messages"]
    editor.wait_for(
        lambda s: model_loaded(s) and editor.language_server_pid() not in (None, first),
        "a new server with the model loaded",
    )
    # Stopped again soon after: this restart waits a second (backoff); typing
    # during that wait must reach the next server too.
    second = editor.language_server_pid()
    assert second is not None
    os.kill(second, signal.SIGTERM)
    editor.wait_for(lambda s: "restarting in 1 s" in s["messages"], "the backoff message")
    editor.keys("G", "o")
    editor.type("# typed while it waited", pause=0.05)
    editor.keys("Escape")
    editor.wait_for(
        lambda s: model_loaded(s) and editor.language_server_pid() not in (None, first, second),
        "a third server with the model loaded",
    )

    # The new server has the text as it is now: a refactoring computed on it
    # applies cleanly (on a stale copy it corrupted the buffer).
    line = PRICING.splitlines()[1]
    select_and_act(
        editor, 3, line.index("price") + 1, ["v", f"{len('price * quantity') - 1}l"],
        "Extract variable",
    )  # fmt: skip
    state = editor.wait_for(lambda s: "product" in s["text"], "Extract variable to apply")
    assert state["text"].startswith(
        "# edited while the server was down\n"
        "def total_price(price, quantity, tax_rate):\n"
        "    product = price * quantity\n"
        "    return product * (1 + tax_rate)\n"
    ), state["text"]
    assert state["mode"] == "n"

    # A linewise selection of two statements: Extract function, and Visual mode ends.
    report = state["text"].split("\n").index("    total = sum(items)") + 1
    select_and_act(editor, report, 1, ["V", "j"], "Extract function")
    state = editor.wait_for(lambda s: "return total, count" in s["text"], "Extract function")
    assert re.search(
        r"\n    total, count = \w+\(items\)\n    print\(total / count\)", state["text"]
    )
    assert "# typed while it waited" in state["text"]
    assert state["mode"] == "n"


def test_an_edit_for_an_older_version_is_refused(editor: TmuxNvim, tmp_path: Path) -> None:
    path = project_file(tmp_path, "pricing.py", PRICING)
    editor.start(path)
    editor.wait_for(model_loaded, "the model to load")
    # From here the server hears of no change: its copy stays at this version
    # while the buffer moves on (a lost notification).
    editor.lua("ai_ide_probe.drop('textDocument/didChange', true)")
    editor.keys("G")
    editor.type("o")
    editor.type("# a note the server never saw")
    editor.keys("Escape")
    edited = editor.wait_for(lambda s: s["mode"] == "n" and "never saw" in s["text"], "the edit")
    line = PRICING.splitlines()[1]
    select_and_act(
        editor, 2, line.index("price") + 1, ["v", f"{len('price * quantity') - 1}l"],
        "Extract variable",
    )  # fmt: skip
    state = editor.wait_for(
        lambda s: "Extract variable not applied" in s["messages"], "the refusal message"
    )
    assert "the file changed" in state["messages"]
    assert state["text"] == edited["text"], "a stale edit was applied"
    editor.wait_screen("not applied", "the refusal on the screen")

    # :AiIdeRestart gives a server with the buffer as it is: the action applies.
    editor.lua("ai_ide_probe.drop('textDocument/didChange', false)")
    before = editor.language_server_pid()
    editor.command("AiIdeRestart")
    editor.wait_for(
        lambda s: model_loaded(s) and editor.language_server_pid() not in (None, before),
        "the restarted server",
    )
    select_and_act(
        editor, 2, line.index("price") + 1, ["v", f"{len('price * quantity') - 1}l"],
        "Extract variable",
    )  # fmt: skip
    state = editor.wait_for(lambda s: "product = price" in s["text"], "Extract variable")
    assert state["text"].endswith("# a note the server never saw")
