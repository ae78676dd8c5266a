"""Remote models' HTTP client: no import search on the request path."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

# httpcore's own check, which its connection pool runs several times a request.
from httpcore._synchronization import current_async_library


class _Spy(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        self.searched.append(fullname)
        return None


async def test_httpcore_tells_asyncio_apart_without_searching_for_a_module() -> None:
    # Without sniffio installed, each call failed an import, which searches
    # every sys.path entry again.
    assert current_async_library() == "asyncio"
    spy = _Spy()
    sys.meta_path.insert(0, spy)
    try:
        for _ in range(3):
            assert current_async_library() == "asyncio"
    finally:
        sys.meta_path.remove(spy)
    assert spy.searched == []
