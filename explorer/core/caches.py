"""`BoundedCache`: the one small, thread-safe, size-bounded mapping of the app's caches.

Gradio answers requests from several threads, so a cache that requests share takes a lock
for each read and write; and one a visitor can fill (uploads, sessions) keeps only its newest
entries, so memory stays bounded however long the app runs.
"""

from __future__ import annotations

import collections
import threading


class BoundedCache:
    """A thread-safe mapping that keeps at most `maxsize` entries, the oldest dropped first.

    "Oldest" is the least recently written entry, or with `lru=True` the least recently
    used one (a `get` that finds its key makes it the newest). A value is computed outside
    the cache: two threads that miss the same key at once both compute it, and the later
    `put` wins, which suits values that are the same either way.

    Args:
        maxsize: the most entries kept, at least 1.
        lru: whether a `get` that finds its key keeps it longer.

    Example:

    >>> cache = BoundedCache(2)
    >>> for key in "abc":
    ...     cache.put(key, key.upper())
    >>> cache.get("a"), cache.get("c"), len(cache)
    (None, 'C', 2)
    """

    def __init__(self, maxsize: int, lru: bool = False):
        if int(maxsize) < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = int(maxsize)
        self.lru = lru
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        """The value kept for `key`, else `default`."""
        with self._lock:
            if key not in self._items:
                return default
            if self.lru:
                self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        """Keeps `value` for `key` as the newest entry, dropping the oldest beyond `maxsize`."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def pop(self, key, default=None):
        """Removes `key` and returns its value, else `default`."""
        with self._lock:
            return self._items.pop(key, default)

    def clear(self) -> None:
        """Removes every entry."""
        with self._lock:
            self._items.clear()

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
