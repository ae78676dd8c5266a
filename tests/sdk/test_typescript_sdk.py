"""The TypeScript SDK's own tests (``node --test``) against the live server.

``npm test`` in sdk/typescript checks that the generated types match the
committed OpenAPI document, builds, type-checks the documented example, then
runs the unit and live tests. Without node and npm the test is skipped,
unless ``SDK_TESTS=required`` (as in CI), which makes their absence a failure.
"""

from __future__ import annotations

import subprocess

from tests.support.live_server import ROOT, LiveServer, require

PACKAGE = ROOT / "sdk" / "typescript"


def test_typescript_sdk(live_server: LiveServer) -> None:
    require("node", "npm")
    if not (PACKAGE / "node_modules" / ".bin" / "tsc").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, check=True, timeout=600
        )
    done = subprocess.run(
        ["npm", "test"],
        cwd=PACKAGE,
        env=live_server.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = "\n".join(line for line in done.stdout.splitlines() if line.startswith("# "))
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert "# fail 0" in summary and "# skipped 0" in summary, summary
