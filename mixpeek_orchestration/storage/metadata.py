"""Metadata store: the one adapter over MongoDB (any server speaking its wire protocol).

Everything the platform records (organisations, plugins, versions, collections, documents) goes
through :class:`MetadataStore`. Locally the server is a separate process started by
``mixpeek up``; in production it is a replica set or Atlas, set with ``MIXPEEK_MONGO_URI``.

Example:
    >>> store = MetadataStore("mongodb://127.0.0.1:27017", "mixpeek")
    >>> store.collection("plugins").insert_one({"plugin_id": "my_extractor_1_0_0"})
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.health import ComponentHealth

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection
    from pymongo.database import Database


class MetadataStore:
    """A lazily connected pymongo client bound to one database.

    Args:
        uri: a ``mongodb://`` or ``mongodb+srv://`` URI.
        database: the database holding the platform's collections.
        timeout_ms: server selection and connect timeout, so an unreachable server fails fast.
    """

    def __init__(self, uri: str, database: str, *, timeout_ms: int = 5000) -> None:
        self.uri = uri
        self.database_name = database
        self.timeout_ms = timeout_ms

    @cached_property
    def client(self) -> MongoClient[dict[str, Any]]:
        from pymongo import MongoClient

        return MongoClient(
            self.uri,
            serverSelectionTimeoutMS=self.timeout_ms,
            connectTimeoutMS=self.timeout_ms,
            appname="mixpeek",
            tz_aware=True,
        )

    @property
    def db(self) -> Database[dict[str, Any]]:
        return self.client[self.database_name]

    def collection(self, name: str) -> Collection[dict[str, Any]]:
        return self.db[name]

    def ping(self) -> dict[str, Any]:
        return self.client.admin.command("ping")

    def health(self) -> ComponentHealth:
        self.ping()
        version = self.client.server_info().get("version", "?")
        return ComponentHealth.ok(
            f"MongoDB wire protocol, server {version}, db {self.database_name}"
        )

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
