"""The VS Code extension in a real VS Code: code-server, driven by Chromium.

The built ``editors/vscode/ai-ide.vsix`` is installed into a private
code-server (VS Code 1.100 in the browser), whose settings point
``aiIde.server.command`` at this environment's ``ai-ide``, serving the tiny
test models with llama.cpp. ``editors/vscode/e2e/drive.mjs`` then uses the
editor through Chromium (keyboard, menus, status bar) and records what it saw;
screenshots of each step are kept (``E2E_SCREENSHOTS``, default
``editors/vscode/test-results/``).

Needs code-server 4.100.3 (``CODE_SERVER``, or where ``editors/vscode/e2e/install-deps.sh``
caches it),
Chromium (``CHROMIUM`` or ``chromium`` on PATH), the extension's node_modules
(for playwright-core) and the .vsix (``npm run package``). Without them the
test is skipped, unless ``E2E_VSCODE=required`` (as in ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
EXTENSION = REPO / "editors" / "vscode"
VSIX = EXTENSION / "ai-ide.vsix"
DRIVER = EXTENSION / "e2e" / "drive.mjs"
CODE_SERVER_VERSION = "4.100.3"
# Where editors/vscode/e2e/install-deps.sh (run by .ci/run) caches it.
CACHE = Path.home() / ".cache" / "ai-ide-ci"
MODEL = "tiny-starcoder"
SHAPES = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\n"
PRICING = (
    "def total_price(price, quantity, tax_rate):\n    return price * quantity * (1 + tax_rate)\n"
)

pytestmark = [pytest.mark.vscode, pytest.mark.timeout(1500)]


def _missing(what: str) -> None:
    if os.environ.get("E2E_VSCODE") == "required":
        pytest.fail(f"{what} (E2E_VSCODE=required)")
    pytest.skip(what)


def _tools() -> dict[str, str]:
    cached = sorted(
        CACHE.glob(f"code-server-{CODE_SERVER_VERSION}-node*/node_modules/.bin/code-server")
    )
    code_server = os.environ.get("CODE_SERVER") or (str(cached[-1]) if cached else "")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or ""
    node = shutil.which("node") or ""
    if not code_server or not Path(code_server).exists():
        _missing(
            f"code-server {CODE_SERVER_VERSION} not found (CODE_SERVER or {CACHE}); "
            "editors/vscode/e2e/install-deps.sh installs it"
        )
    if not chromium:
        _missing("Chromium not found (apt-get install -y chromium)")
    if not node or not (EXTENSION / "node_modules" / "playwright-core").is_dir():
        _missing("node and editors/vscode/node_modules (npm ci) are needed")
    if not VSIX.exists():
        _missing("editors/vscode/ai-ide.vsix is not built (npm run package)")
    return {"code_server": code_server, "chromium": chromium, "node": node}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"code-server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"code-server did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def code_server(tmp_path: Path, lsp_config_file: Path) -> Iterator[dict[str, Any]]:
    """A private code-server with the .vsix installed and a workspace folder."""
    tools = _tools()
    user_data, extensions, folder = tmp_path / "user", tmp_path / "extensions", tmp_path / "ws"
    (user_data / "User").mkdir(parents=True)
    folder.mkdir()
    (folder / "shapes.py").write_text(SHAPES, encoding="utf-8")
    (folder / "pricing.py").write_text(PRICING, encoding="utf-8")
    ai_ide = Path(sys.executable).with_name("ai-ide")
    settings = {
        # What a user sets: the server command (the extension adds the sidecar
        # flag and vscode-languageclient adds --stdio).
        "aiIde.server.command": [
            str(ai_ide),
            "lsp",
            "--config",
            str(lsp_config_file),
            "--log-level",
            "debug",
        ],
        "aiIde.model": MODEL,
        "aiIde.maxTokens": 16,
        "aiIde.sidecar.enabled": False,
        "workbench.startupEditor": "none",
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "update.mode": "none",
        "workbench.tips.enabled": False,
        "files.hotExit": "off",
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "editor.autoClosingBrackets": "never",
        "chat.disableAIFeatures": True,
    }
    (user_data / "User" / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    common = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    subprocess.run(
        [tools["code_server"], *common, "--install-extension", str(VSIX)],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    port = _free_port()
    log = (tmp_path / "code-server.log").open("wb")
    process = subprocess.Popen(
        [
            tools["code_server"],
            *common,
            "--auth", "none",
            "--bind-addr", f"127.0.0.1:{port}",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            str(folder),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole below
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", process)
        yield {
            **tools,
            "url": f"http://127.0.0.1:{port}",
            "folder": folder,
            "config": lsp_config_file,
            "log": tmp_path / "code-server.log",
            "user_data": user_data,
        }
    finally:
        # code-server, its extension hosts and the language servers they started.
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with_group = process.pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(with_group, signal.SIGKILL)
        log.close()


def test_the_extension_in_vscode(code_server: dict[str, Any], tmp_path: Path) -> None:
    screenshots = Path(os.environ.get("E2E_SCREENSHOTS") or EXTENSION / "test-results")
    if screenshots.exists():
        shutil.rmtree(screenshots)
    out = tmp_path / "drive.json"
    config = {
        "url": code_server["url"],
        "folder": str(code_server["folder"]),
        "configPath": str(code_server["config"]),
        "screenshots": str(screenshots),
        "out": str(out),
        "model": MODEL,
        "chromium": code_server["chromium"],
    }
    config_file = tmp_path / "drive-config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    run = subprocess.run(
        [code_server["node"], str(DRIVER), str(config_file)],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    # The extension's output channel and the extension host's log, kept with
    # the screenshots (CI artifacts) for whoever reads a failure.
    logs = screenshots / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for log in (code_server["user_data"] / "logs").rglob("*.log"):
        if "AI IDE" in log.name or log.name in ("exthost.log", "remoteexthost.log"):
            shutil.copy(log, logs / f"{log.parent.name}-{log.name}")
    shutil.copy(code_server["log"], logs / "code-server.log")
    server_log = code_server["log"].read_text(errors="replace")[-3000:]
    assert run.returncode == 0 and "error" not in results, (
        f"{results.get('error')}\nsteps: {results.get('steps')}\n"
        f"notifications: {results.get('notifications')}\nstatus: {results.get('lastStatus')}\n"
        f"stdout: {run.stdout[-3000:]}\nstderr: {run.stderr[-3000:]}\ncode-server: {server_log}\n"
        f"screenshots: {screenshots}"
    )

    # The server started from the extension's command line (with --stdio).
    assert results["firstServer"], "no language server process was found"
    assert results["status"]["loaded"].startswith("check") and MODEL in results["status"]["loaded"]

    # Ghost text appeared and Tab put it into the file.
    ghost = results["ghost"].replace("\xa0", " ")  # the DOM shows spaces as no-break spaces
    saved = results["shapesAfter"]
    assert saved.startswith(SHAPES + "def square(x"), saved
    assert len(saved) > len(SHAPES + "def square(x")
    assert ghost.split("\n")[0].strip()[:8] in saved

    # Extract variable from the refactor menu; the tiny model's proposal is
    # not a name, so the derived one is used.
    assert re.fullmatch(
        r"def total_price\(price, quantity, tax_rate\):\n"
        r"    product = price \* quantity\n"
        r"    return product \* \(1 \+ tax_rate\)\n",
        results["pricingAfter"],
    ), results["pricingAfter"]

    # The stale edit was refused with a message; only the typing reached the file.
    assert "Extract variable" in results["refusal"]
    assert results["pricingRefused"] == results["pricingAfter"] + "# typed while the model ran\n"

    # Killed: a message, the status bar, then a new server with the model.
    assert "restarting it in" in results["restartMessage"]
    assert MODEL in results["status"]["reloaded"]
    assert set(results["secondServer"]).isdisjoint(results["firstServer"])
    assert results["ghostAfterRestart"]

    # A crash loop ends with a message; Restart Server still works after it.
    assert results["crashLoop"]["killed"] >= 5
    assert "not restarted" in results["gaveUp"]
    assert MODEL in results["status"]["afterManualRestart"]
    assert results["thirdServer"]
    shots = sorted(p.name for p in screenshots.glob("*.png"))
    assert len(shots) >= 8, shots
