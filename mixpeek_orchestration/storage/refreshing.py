"""Reads of the metadata store kept in memory and refreshed in the background.

The realtime path reads the same few records on every call (the caller's key, its namespace,
the serving version): each read is a round trip to the metadata server and a thread hop, and
together they cost more than a model's query. :class:`Refreshing` answers them from memory and
reloads each answer in use every ``refresh_s`` on a thread of its own, so an answer is never
older than ``refresh_s`` plus one round of reloads, and the request path never waits for one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Refreshing(Generic[K, V]):
    """Answers of ``load(key)``, reloaded every ``refresh_s`` while in use.

    A load that raises is not kept: the caller gets the error (an unknown key stays unknown at
    the store's cost). A reload that raises drops the answer, so the next read loads it itself
    and gets the error (a revoked key, a deleted namespace). An answer nobody read for
    ``idle_s`` is dropped; past ``max_entries`` the least recently read one is.
    """

    def __init__(
        self,
        load: Callable[[K], V],
        *,
        refresh_s: float = 0.5,
        idle_s: float = 120.0,
        max_entries: int = 10_000,
        name: str = "lookups",
    ) -> None:
        self._load = load
        self.refresh_s, self.idle_s, self.max_entries, self.name = (
            refresh_s,
            idle_s,
            max_entries,
            name,
        )
        self._entries: dict[K, tuple[V, float]] = {}  # answer, when last read (monotonic)
        self._lock = threading.Lock()
        self._generation = 0  # bumped by invalidate: a reload begun before it is not kept
        self._thread: threading.Thread | None = None

    def peek(self, key: K) -> V | None:
        """The answer in memory (``None``: not there; the caller loads it with :meth:`get`)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries[key] = (entry[0], time.monotonic())
        return entry[0]

    def get(self, key: K) -> V:
        """The answer, loaded now if it is not in memory (this blocks: call it off the loop)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], time.monotonic())
            return entry[0]
        generation = self._generation
        value = self._load(key)
        with self._lock:
            if generation == self._generation:
                if len(self._entries) >= self.max_entries:
                    del self._entries[min(self._entries, key=lambda k: self._entries[k][1])]
                self._entries[key] = (value, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._refresh_forever, name=f"refresh-{self.name}", daemon=True
                )
                self._thread.start()
        return value

    def invalidate(self, match: Callable[[K], bool] | None = None) -> None:
        """Forget the answers whose key ``match`` accepts (all of them: ``None``), at once."""
        with self._lock:
            self._generation += 1
            for key in [k for k in self._entries if match is None or match(k)]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def refresh(self) -> None:
        """One round: reload every answer in use, drop idle ones and those that now raise."""
        now = time.monotonic()
        for key, (_, read_at) in list(self._entries.items()):
            if now - read_at > self.idle_s:
                with self._lock:
                    self._entries.pop(key, None)
                continue
            generation = self._generation
            try:
                value = self._load(key)
            except Exception:
                with self._lock:
                    self._entries.pop(key, None)
                continue
            with self._lock:
                current = self._entries.get(key)
                if current is not None and generation == self._generation:
                    self._entries[key] = (value, current[1])

    def _refresh_forever(self) -> None:
        while True:
            time.sleep(self.refresh_s)
            try:
                self.refresh()
            except Exception:  # never let the thread die: answers would go stale
                logger.exception("refreshing %s failed", self.name)
