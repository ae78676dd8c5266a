"""A live ``ai-ide serve`` on a loopback port for the SDK tests (all three languages).

The server runs in its own process over the tiny generated models, exactly as
a script author meets it: a real port, the first-start key file, real
llama.cpp generation. At most one inference runs at a time
(``rate_limits.max_concurrent_inference = 1``), so a test can make the
server answer 429 with ``Retry-After`` by holding one stream open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer, find_long_code, serve_tiny_models


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]
) -> Iterator[LiveServer]:
    """``ai-ide serve`` over the tiny models; stopped at the end of the session."""
    with serve_tiny_models(tmp_path_factory.mktemp("sdk-server"), tiny_models) as server:
        yield find_long_code(server)
