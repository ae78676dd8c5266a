"""The Rust SDK's own tests (``cargo test``) and the documented Rust example, live.

Built offline from Debian's crate sources (sdk/rust/.cargo/config.toml); the
build directory is ``$CARGO_TARGET_DIR``, else ``~/.cache/ai-ide-ci/cargo-target``,
so that later runs only rebuild the SDK. Without cargo the tests are skipped,
unless ``SDK_TESTS=required`` (as in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.live_server import ROOT, LiveServer, live_copy, require

CRATE = ROOT / "sdk" / "rust"


def cargo_env(server: LiveServer) -> dict[str, str]:
    env = server.env()
    env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "ai-ide-ci" / "cargo-target"))
    env["AI_IDE_REQUIRE_LIVE"] = "1"
    return env


def test_generated_rust_types_match_the_openapi_document() -> None:
    done = subprocess.run(
        [sys.executable, str(CRATE / "generate_types.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rust_sdk(live_server: LiveServer) -> None:
    require("cargo")
    done = subprocess.run(
        ["cargo", "test", "--quiet", "--", "--test-threads=1"],
        cwd=CRATE,
        env=cargo_env(live_server),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    assert "skipped" not in output, output[-4000:]
    # Unit tests, live tests and doc tests all ran.
    assert output.count("test result: ok") >= 3, output[-4000:]


def test_the_documented_rust_example_runs(live_server: LiveServer, tmp_path: Path) -> None:
    require("cargo")
    # The committed example with the live key in place, built as its own crate
    # over the SDK (same target directory: only the example itself compiles).
    crate = tmp_path / "documented-example"
    (crate / "src").mkdir(parents=True)
    (crate / ".cargo").mkdir()
    shutil.copy(CRATE / ".cargo" / "config.toml", crate / ".cargo" / "config.toml")
    shutil.copy(CRATE / "Cargo.lock", crate / "Cargo.lock")
    (crate / "Cargo.toml").write_text(
        "[package]\n"
        'name = "documented-example"\nversion = "0.0.0"\nedition = "2021"\n\n'
        "[dependencies]\n"
        f'ai-ide-sdk = {{ path = "{CRATE}" }}\n'
        'tokio = { version = "1.24", features = ["macros", "rt-multi-thread"] }\n',
        encoding="utf-8",
    )
    (crate / "src" / "main.rs").write_text(live_copy("rust", live_server), encoding="utf-8")
    done = subprocess.run(
        ["cargo", "run", "--quiet"],
        cwd=crate,
        env=cargo_env(live_server),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "Available models: ModelList" in done.stdout, done.stdout
    assert "tiny-qwen" in done.stdout
    assert "Completion: " in done.stdout


def test_sdk_tests_are_not_skipped_in_ci() -> None:
    if os.environ.get("SDK_TESTS") == "required":
        assert shutil.which("cargo") and shutil.which("node") and shutil.which("npm")
