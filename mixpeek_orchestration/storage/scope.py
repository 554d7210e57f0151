"""Namespace scope: every record carries ``org_id`` and ``namespace_id``, every query filters
on both, so another organisation's ids answer 404."""

from __future__ import annotations

from typing import Protocol


class Scoped(Protocol):
    @property
    def org_id(self) -> str: ...

    @property
    def namespace_id(self) -> str: ...


def scope(namespace: Scoped) -> dict[str, str]:
    """The query (and record fields) of one namespace of one organisation."""
    return {"org_id": namespace.org_id, "namespace_id": namespace.namespace_id}
