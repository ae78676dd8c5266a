"""A bounded LRU cache of completion results, with its hit rate."""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CacheStats:
    """Measured cache figures."""

    entries: int
    hits: int
    misses: int
    memory_bytes: int

    @property
    def hit_rate(self) -> float | None:
        """Hits over lookups; None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


def cache_key(*parts: object) -> str:
    """A stable digest of the parts that determine a result."""
    digest = hashlib.blake2b(digest_size=20)
    for part in parts:
        digest.update(repr(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()


class LruCache(Generic[T]):
    """Least-recently-used cache with a fixed number of entries; thread-safe."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._items: OrderedDict[str, tuple[T, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._bytes = 0

    def get(self, key: str) -> T | None:
        """The cached value, counting a hit or a miss."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._items.move_to_end(key)
            self._hits += 1
            return entry[0]

    def put(self, key: str, value: T, size_hint: str = "") -> None:
        """Store a value; the oldest entry goes when the cache is full."""
        if self._max <= 0:
            return
        size = sys.getsizeof(key) + sys.getsizeof(size_hint)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > self._max:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted

    def stats(self) -> CacheStats:
        """Entries, hits, misses and the memory held by keys and texts."""
        with self._lock:
            return CacheStats(len(self._items), self._hits, self._misses, self._bytes)
