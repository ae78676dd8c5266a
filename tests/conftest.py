"""Shared fixtures: tiny generated GGUF models, settings, engines, an LSP client."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pytest_lsp import ClientServerConfig, LanguageClient

from engine.config import Settings, load_settings
from engine.engine import Engine
from engine.models.catalog import ModelSpec
from services.composition import Services, shutdown
from services.keys import ApiKeyStore
from services.store import Store
from tests.support.servers import (  # noqa: F401 (fixtures for every test module)
    postgres_server,
    redis_server,
    store_url,
)
from tests.support.tiny_models import build_model_set

# Keep the tests independent of a developer's own configuration.
for _name in [n for n in os.environ if n.startswith("AI_IDE_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The standard tiny models (different FIM families and weights), built once."""
    return build_model_set(tmp_path_factory.mktemp("models"))


def tiny_specs(models: dict[str, Path], context_length: int = 8192) -> list[ModelSpec]:
    """Catalog entries for the tiny models (8,192 cells: 2,048 for each of 4 slots)."""
    return [
        ModelSpec(id=name, name=name, path=path, context_length=context_length)
        for name, path in models.items()
    ]


def make_settings(data_dir: Path, models: dict[str, Path], **overrides: object) -> Settings:
    """Settings for tests: tiny models, a private data directory, two threads.

    Nothing is preloaded at start: each test decides what loads.
    """
    overrides.setdefault("preload", [])
    inference: dict[str, object] = {"n_threads": 2, "n_seq_max": 4}
    extra = overrides.pop("inference", None)
    if isinstance(extra, dict):
        inference.update(extra)
    return load_settings(
        None,
        data_dir=data_dir,
        models=tiny_specs(models),
        inference=inference,
        **overrides,
    )


def create_api_key(settings: Settings, name: str = "tests") -> str:
    """A new API key in the settings' store (what ``ai-ide keys create`` does)."""
    store = Store.from_settings(settings)
    try:
        return ApiKeyStore.in_data_dir(store, settings.data_dir).create(name).key
    finally:
        store.close()


def auth_headers(settings: Settings) -> dict[str, str]:
    """Headers that authenticate a REST client with a fresh API key."""
    return {"X-API-Key": create_api_key(settings)}


@pytest.fixture
def store_backend() -> str:
    """The store the ``settings`` fixture uses: SQLite unless a module asks for more.

    A module overrides this fixture with ``params=["sqlite", "postgresql"]``
    to run each of its tests on both stores.
    """
    return "sqlite"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tiny_models: dict[str, Path],
    store_backend: str,
) -> Settings:
    """Test settings over the tiny models (on a fresh PostgreSQL database if asked)."""
    return make_settings(tmp_path / "data", tiny_models, **store_overrides(request, store_backend))


def store_overrides(request: pytest.FixtureRequest, backend: str) -> dict[str, object]:
    """Settings overrides for ``backend``: none for SQLite, a fresh database for PostgreSQL."""
    if backend == "postgresql":
        return {"store": {"url": request.getfixturevalue("postgres_server").create_database()}}
    return {}


@pytest_asyncio.fixture
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    """An engine over the tiny models; closed (all models unloaded) afterwards."""
    instance = Engine(settings)
    try:
        yield instance
    finally:
        await instance.close()


@pytest_asyncio.fixture
async def services(engine: Engine, settings: Settings) -> AsyncIterator[Services]:
    """The services beside ``engine`` (not started); closed with it, in order."""
    instance = Services(engine, settings)
    try:
        yield instance
    finally:
        await shutdown(engine, instance)


@pytest.fixture(scope="session")
def default_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with only the embedded default model (Gemma 3 270M)."""
    return load_settings(
        None, data_dir=tmp_path_factory.mktemp("default"), inference={"n_threads": 2}
    )


@pytest.fixture(scope="session")
def lsp_config_file(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Path:
    """A TOML config for ``ai-ide lsp`` subprocesses: tiny models, private data dir."""
    directory = tmp_path_factory.mktemp("lsp")
    lines = [f'data_dir = "{directory / "data"}"', "", "[inference]", "n_threads = 2", ""]
    for name, path in tiny_models.items():
        lines += ["[[models]]", f'id = "{name}"', f'name = "{name}"', f'path = "{path}"', ""]
    config = directory / "ai-ide.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def lsp_server_command(config: Path, *extra: str) -> list[str]:
    """The command that starts the language server under test."""
    return [sys.executable, "-m", "lsp_server.cli", "lsp", "--config", str(config), *extra]


@pytest_asyncio.fixture
async def lsp_client(lsp_config_file: Path) -> AsyncIterator[LanguageClient]:
    """A pytest-lsp client connected to ``ai-ide lsp --no-http`` (not yet initialized)."""
    config = ClientServerConfig(server_command=lsp_server_command(lsp_config_file, "--no-http"))
    client = await config.start()
    assert isinstance(client, LanguageClient)
    try:
        yield client
    finally:
        await client.shutdown_session()
        await client.stop()
