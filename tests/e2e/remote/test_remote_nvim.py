"""A remote model answers inline completion in a real editor: headless Neovim over ``ai-ide lsp``.

The language server's catalog names one model served by a real llama-server
on loopback (tiny-starcoder, through ``/infill``); the Neovim plugin asks for
it by id, and the ghost text it shows must be what the same remote model
gives for the same document through an in-process engine.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.completion.pipeline import CompletionRequest
from engine.config import load_settings
from engine.engine import Engine
from engine.models.catalog import ModelSpec
from engine.runtime.messages import SamplingParams
from tests.conftest import lsp_server_command
from tests.e2e.nvim.test_nvim import COMPLETION_DOC, MAX_TOKENS, run_nvim, write
from tests.support.nvim_helpers import nvim_binary
from tests.support.remote_engines import llama_server_process

pytestmark = pytest.mark.nvim


@pytest.fixture(scope="module")
def nvim() -> str:
    """Path of a Neovim >= 0.12."""
    binary = nvim_binary()
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    match = re.search(r"NVIM v(\d+)\.(\d+)", out)
    assert match and (int(match.group(1)), int(match.group(2))) >= (0, 12), out[:200]
    return binary


@pytest.fixture(scope="module")
def llama(tiny_models: dict[str, Path]) -> Iterator[str]:
    """llama-server on tiny-starcoder."""
    with llama_server_process(tiny_models["tiny-starcoder"]) as (base, _):
        yield base


async def test_remote_model_answers_inline_completion_in_neovim(
    nvim: str, tmp_path: Path, llama: str
) -> None:
    path = write(tmp_path, "geometry.py", COMPLETION_DOC)
    cursor = COMPLETION_DOC.index("    return \n") + len("    return ")
    data = tmp_path / "data"
    config = tmp_path / "ai-ide.toml"
    config.write_text(
        "\n".join(
            [
                f'data_dir = "{data}"',
                "",
                "[[models]]",
                'id = "remote"',
                'name = "tiny-starcoder on llama-server"',
                'backend = "llama-server"',
                f'url = "{llama}"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    settings = load_settings(
        None,
        data_dir=tmp_path / "engine-data",
        preload=[],
        models=[ModelSpec(id="remote", name="remote", backend="llama-server", url=llama)],
    )
    engine = Engine(settings)
    try:
        expected = await engine.complete(
            CompletionRequest(
                code=COMPLETION_DOC,
                cursor=cursor,
                language="python",
                file_path=path.as_uri(),
                model_id="remote",
                params=SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0),
            )
        )
    finally:
        await engine.close()
    suggestion = expected.completion.text
    assert suggestion, "the remote model should suggest something here"
    assert expected.completion.generation.used_fim

    results = run_nvim(
        nvim,
        tmp_path,
        "inline_completion",
        path,
        lsp_server_command(config, "--no-http"),
        setup={"model": "remote"},
    ).check()

    assert results["client"]["inline_completion"] is True
    # The ghost text is the remote model's suggestion, and <Tab> accepts it.
    assert results["ghost_text"] == suggestion
    accepted = (
        COMPLETION_DOC[:cursor] + suggestion + COMPLETION_DOC[expected.completion.replace_end :]
    )
    assert results["after"] + "\n" == accepted
