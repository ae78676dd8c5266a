"""The committed dashboard bundle is what its sources build to.

``lsp_server/sidecar/dashboard/static`` ships as package data so that
``pip install`` needs no Node; this test rebuilds it from ``src/`` and the
locked npm packages (esbuild, uPlot, swagger-ui-dist) into a temporary folder
and compares every file. It needs node and the dashboard's node_modules
(``npm ci`` in lsp_server/sidecar/dashboard): without them it skips, or fails
when ``DASHBOARD_TESTS=required`` (as in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lsp_server.sidecar.pages import STATIC_DIR
from tests.support.live_server import ROOT

DASHBOARD = STATIC_DIR.parent


def _require_build_tools() -> str:
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not installed"
    elif not (DASHBOARD / "node_modules" / "esbuild").is_dir():
        reason = f"no node_modules in {DASHBOARD} (run npm ci there)"
    if reason is None:
        assert node is not None
        return node
    if os.environ.get("DASHBOARD_TESTS") == "required":
        pytest.fail(f"DASHBOARD_TESTS=required but {reason}")
    pytest.skip(reason)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_committed_bundle_matches_its_sources(tmp_path: Path) -> None:
    node = _require_build_tools()
    out = tmp_path / "static"
    subprocess.run(
        [node, "build.mjs", str(out)], cwd=DASHBOARD, check=True, timeout=120, capture_output=True
    )
    built, committed = tree(out), tree(STATIC_DIR)
    assert sorted(built) == sorted(committed), "files differ: rebuild with npm run build"
    stale = [name for name in built if built[name] != committed[name]]
    assert not stale, f"stale committed files (run npm run build in {DASHBOARD}): {stale}"


def test_the_build_uses_the_locked_packages() -> None:
    manifest = json.loads((DASHBOARD / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((DASHBOARD / "package-lock.json").read_text(encoding="utf-8"))
    for name, version in manifest["devDependencies"].items():
        # Exact versions, so the committed bundle can be rebuilt byte for byte.
        assert version[0].isdigit(), f"{name} is not pinned: {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_package_data_ships_every_built_file() -> None:
    """``pip install`` gives a working dashboard: pyproject's globs cover all of static/."""
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["lsp_server"]
    package = ROOT / "lsp_server"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    built = {p for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert built and built <= shipped, sorted(str(p) for p in built - shipped)
    # The sources, node_modules and README screenshots stay out of the package.
    assert not any("node_modules" in p.parts or "screenshots" in p.parts for p in shipped)
