"""The arrows point down: faces import services and the engine, services import the engine.

The wire contract (``ai_ide.wire``) is a leaf: it imports no first-party
package, so the server, the SDK and scripts share it without the engine. The
SDK client (``ai_ide.client``) speaks HTTP only and never imports the server
side; of the server side, only the faces (the script commands and the
shared-engine backend) use it.

Read from the source with ``ast`` (imports inside functions count too), so a
lazy import cannot hide an upward arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the first-party packages it must never import
FORBIDDEN = {
    "engine": ("services", "lsp_server", "ai_ide"),
    "services": ("lsp_server", "ai_ide.client"),
    "lsp_server": (),
    "ai_ide": ("engine", "services", "lsp_server"),
    "ai_ide/wire": ("ai_ide.client",),
}
SOURCE_ROOTS = {"ai_ide": ROOT / "sdk" / "python"}


def _forbidden(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _parse(path: Path) -> ast.Module:
    source = path.read_text(encoding="utf-8")
    try:
        return ast.parse(source, filename=str(path))
    except SystemError:
        # CPython 3.11 can report a spurious "AST constructor recursion depth
        # mismatch" when other threads run (python/cpython#106905); the
        # source itself is fine, so a second parse succeeds.
        return ast.parse(source, filename=str(path))


def imported_modules(path: Path) -> set[str]:
    tree = _parse(path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    top = package.split("/", maxsplit=1)[0]
    files = sorted((SOURCE_ROOTS.get(top, ROOT) / package).rglob("*.py"))
    assert files, f"no modules found under {package}/"
    upward = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in sorted(imported_modules(path))
        if _forbidden(module, FORBIDDEN[package])
    ]
    assert upward == []


def test_the_server_uses_the_contract_not_the_sdk_client() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for package in ("engine", "services")
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if _forbidden(module, ("ai_ide.client",))
    ]
    assert offenders == []


# A remote runner's transport, as llama.cpp is a local runner's: the one
# module of the engine that talks HTTP, as a client of a remote inference
# engine (DESIGN: runners of three kinds behind one message interface).
REMOTE_RUNNER_TRANSPORT = ROOT / "engine" / "remote" / "http.py"


def test_the_engine_uses_no_sqlite_and_no_http() -> None:
    """Storage (SQLite, PostgreSQL, Redis) and HTTP belong to the services and faces."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "engine").rglob("*.py"))
        for module in sorted(imported_modules(path))
        if module.split(".")[0]
        in ("sqlite3", "sqlalchemy", "psycopg", "redis", "httpx", "fastapi", "starlette", "jwt")
        and not (path == REMOTE_RUNNER_TRANSPORT and module.split(".")[0] == "httpx")
    ]
    assert offenders == []
