"""Query-embedding caches: in process by default, Redis when ``MIXPEEK_REDIS_URL`` is set.

A retriever's query is encoded by the realtime deployment of the plugin version that produced
the feature URI; the vector for (namespace, feature URI, input mode, value) never changes, since
a version's archive never does, so it is cached. In process, the cache is a bounded LRU; with
Redis, every API replica shares one cache and entries expire after ``ttl_s``.

A cache that fails (Redis down, timeouts) never fails a query: the lookup counts as a miss,
the error is counted and logged, and the query is encoded as if nothing were cached.

Example:
    >>> cache = query_cache(settings)              # MemoryQueryCache or RedisQueryCache
    >>> await cache.get(("ns_1", uri, "text", "cats"))
    None
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

from mixpeek_orchestration.health import ComponentHealth

if TYPE_CHECKING:
    from mixpeek_orchestration.settings import MixpeekSettings

logger = logging.getLogger(__name__)
CacheKey = tuple[str, ...]


class QueryCache(Protocol):
    backend: str
    errors: int

    async def get(self, key: CacheKey) -> list[float] | None: ...

    async def put(self, key: CacheKey, vector: list[float]) -> None: ...

    def health(self) -> ComponentHealth: ...


class MemoryQueryCache:
    """A bounded LRU of query vectors, private to this process."""

    backend = "memory"

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.errors = 0
        self.items: OrderedDict[CacheKey, list[float]] = OrderedDict()

    async def get(self, key: CacheKey) -> list[float] | None:
        vector = self.items.get(key)
        if vector is not None:
            self.items.move_to_end(key)
        return vector

    async def put(self, key: CacheKey, vector: list[float]) -> None:
        self.items[key] = vector
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def health(self) -> ComponentHealth:
        return ComponentHealth.ok(f"in-process LRU, {len(self.items)}/{self.size} entries")


class RedisQueryCache:
    """Query vectors in Redis as little-endian float64 bytes, under ``prefix`` + a key hash.

    Args:
        url: ``redis://[user:password@]host:port/db`` (or ``rediss://``).
        ttl_s: how long an entry lives.
        timeout_s: a slower answer counts as a miss, so a sick cache costs at most this much.
    """

    backend = "redis"

    def __init__(
        self, url: str, *, ttl_s: int = 86_400, timeout_s: float = 0.25, prefix: str = "mixpeek:"
    ) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.prefix = f"{prefix}query-vector:"
        self.errors = 0
        self._clients: dict[int, Any] = {}  # one client per event loop (a client binds to one)

    def _client(self) -> Any:
        import redis.asyncio as aioredis

        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients[loop] = aioredis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
            )
        return self._clients[loop]

    def _key(self, key: CacheKey) -> str:
        return self.prefix + hashlib.sha256("\x1f".join(key).encode()).hexdigest()

    def _failed(self, action: str, exc: Exception) -> None:
        self.errors += 1
        logger.warning(
            "query cache %s at %s failed (counted as a miss): %s: %s",
            action, self._safe_url, type(exc).__name__, exc,
        )  # fmt: skip

    @property
    def _safe_url(self) -> str:
        from urllib.parse import urlparse

        parsed = urlparse(self.url)
        return f"{parsed.scheme}://{parsed.hostname}:{parsed.port or 6379}{parsed.path}"

    async def get(self, key: CacheKey) -> list[float] | None:
        import numpy as np

        try:
            raw = await self._client().get(self._key(key))
        except Exception as exc:  # a cache failure is a miss, never a failed query
            self._failed("read", exc)
            return None
        if raw is None:
            return None
        return np.frombuffer(raw, dtype="<f8").tolist()  # type: ignore[no-any-return]

    async def put(self, key: CacheKey, vector: list[float]) -> None:
        import numpy as np

        try:
            await self._client().set(
                self._key(key), np.asarray(vector, dtype="<f8").tobytes(), ex=self.ttl_s
            )
        except Exception as exc:
            self._failed("write", exc)

    def health(self) -> ComponentHealth:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        try:
            version = client.info("server").get("redis_version", "?")
        finally:
            client.close()
        return ComponentHealth.ok(f"Redis {version} at {self._safe_url}")


def query_cache(settings: MixpeekSettings) -> QueryCache:
    """Redis when ``MIXPEEK_REDIS_URL`` is set, otherwise an in-process LRU."""
    if settings.redis_url:
        return RedisQueryCache(
            settings.redis_url.get_secret_value(), ttl_s=settings.query_cache_ttl_s
        )
    return MemoryQueryCache(settings.query_cache_size)
