"""Cursor pages: the one way lists are paged (opaque cursors holding the last item's sort keys).

Example:
    >>> items = list(collection.find(...).sort("seq").limit(limit + 1))
    >>> page(items, limit)["pagination"]["next_cursor"]
"""

from __future__ import annotations

import base64
import json
from typing import Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError


def encode_position(values: dict[str, Any]) -> str:
    """An opaque cursor holding the sort keys of the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def decode_position(cursor: str | None, keys: tuple[str, ...] = ("seq",)) -> dict[str, Any] | None:
    """The sort keys a cursor holds (``None`` for the first page); 422 for a foreign cursor."""
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return {key: values[key] for key in keys}
    except (ValueError, KeyError, TypeError):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "cursor is not one this API returned", field="cursor"
        ) from None


def encode_cursor(seq: int) -> str:
    return encode_position({"seq": seq})


def decode_cursor(cursor: str | None) -> int:
    position = decode_position(cursor)
    return -1 if position is None else int(position["seq"])


def page(
    items: list[dict[str, Any]], limit: int, keys: tuple[str, ...] = ("seq",)
) -> dict[str, Any]:
    """A page of ``limit`` items from ``limit + 1`` fetched, with the next cursor if any."""
    more = len(items) > limit
    items = items[:limit]
    last = items[-1] if more and items else None
    return {
        "results": items,
        "pagination": {
            "limit": limit,
            "next_cursor": encode_position({k: last[k] for k in keys}) if last else None,
            "has_more": more,
        },
    }
