"""Answers kept in memory, reloaded while in use, dropped when they start failing or idle."""

from __future__ import annotations

import threading
import time

import pytest

from mixpeek_orchestration.storage.refreshing import Refreshing


class Store:
    def __init__(self) -> None:
        self.values = {"a": 1, "b": 2}
        self.loads: list[str] = []

    def load(self, key: str) -> int:
        self.loads.append(key)
        if key not in self.values:
            raise KeyError(key)
        return self.values[key]


def test_an_answer_is_loaded_once_then_read_from_memory() -> None:
    store = Store()
    cache = Refreshing(store.load, refresh_s=60)
    assert cache.peek("a") is None
    assert cache.get("a") == 1 and cache.get("a") == 1 and cache.peek("a") == 1
    assert store.loads == ["a"]
    with pytest.raises(KeyError):  # a failing load is not kept: each read asks again
        cache.get("missing")
    with pytest.raises(KeyError):
        cache.get("missing")
    assert store.loads == ["a", "missing", "missing"] and len(cache) == 1


def test_a_refresh_takes_changes_and_drops_answers_that_now_fail() -> None:
    store = Store()
    cache = Refreshing(store.load, refresh_s=60)
    cache.get("a"), cache.get("b")
    store.values["a"] = 10  # a new serving version
    del store.values["b"]  # a revoked key
    cache.refresh()
    assert cache.peek("a") == 10
    assert cache.peek("b") is None
    with pytest.raises(KeyError):
        cache.get("b")


def test_the_background_thread_keeps_answers_within_the_bound() -> None:
    store = Store()
    cache = Refreshing(store.load, refresh_s=0.05)
    assert cache.get("a") == 1
    store.values["a"] = 5
    deadline = time.monotonic() + 2
    while cache.peek("a") != 5:
        assert time.monotonic() < deadline, "never refreshed"
        time.sleep(0.01)


def test_idle_answers_leave_and_the_least_recently_read_goes_first() -> None:
    store = Store()
    store.values |= {"c": 3}
    cache = Refreshing(store.load, refresh_s=60, idle_s=0.0, max_entries=2)
    cache.get("a"), cache.get("b")
    cache.peek("a")  # b is now the least recently read
    cache.get("c")
    assert cache.peek("b") is None and cache.peek("a") == 1 and cache.peek("c") == 3
    time.sleep(0.01)
    cache.refresh()
    assert len(cache) == 0


def test_invalidate_wins_over_a_reload_begun_before_it() -> None:
    store, started, release = Store(), threading.Event(), threading.Event()
    cache: Refreshing[str, int] = Refreshing(store.load, refresh_s=60)
    cache.get("a")

    def slow(key: str) -> int:
        started.set()
        release.wait(5)
        return 1  # what the store said before the change

    cache._load = slow  # type: ignore[method-assign]
    reload = threading.Thread(target=cache.refresh)
    reload.start()
    assert started.wait(5)
    cache.invalidate(lambda key: key == "a")  # a change made in this process
    release.set()
    reload.join(5)
    assert cache.peek("a") is None
