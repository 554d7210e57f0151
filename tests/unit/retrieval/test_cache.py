"""Query-vector caches: the in-process LRU and the choice of backend from settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.retrieval.cache import MemoryQueryCache, query_cache
from mixpeek_orchestration.settings import load_settings


def test_the_in_process_query_cache_is_a_bounded_lru() -> None:
    async def scenario() -> None:
        cache = MemoryQueryCache(size=2)
        await cache.put(("a",), [1.0])
        await cache.put(("b",), [2.0])
        assert await cache.get(("a",)) == [1.0]
        await cache.put(("c",), [3.0])
        assert await cache.get(("b",)) is None and await cache.get(("a",)) == [1.0]

    asyncio.run(scenario())


def test_a_redis_url_selects_the_shared_cache_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    assert query_cache(load_settings(data_dir=tmp_path)).backend == "memory"
    shared = query_cache(load_settings(data_dir=tmp_path, redis_url="redis://cache:6379/2"))
    assert shared.backend == "redis"
    with pytest.raises(MixpeekError, match="redis_url"):
        load_settings(data_dir=tmp_path, redis_url="http://cache:6379")
