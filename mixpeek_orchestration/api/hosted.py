"""What the hosted API's clients send and expect, in one place: request bodies that carry the
hosted defaults, list parameters, and the list envelope.

The official client is generated from the hosted OpenAPI document: its request models always
send their defaults (``mode`` on a namespace, ``skip_duplicates`` on an object, ...), and its list
models require ``pagination`` and ``total_count``. A request model here names the hosted fields it
accepts without acting on them (``hosted_fields``); any other unknown key is still refused with a
422 naming it.

Example:
    >>> class NamespaceCreate(HostedRequest):
    ...     hosted_fields = frozenset({"mode", "scope"})
    ...     namespace_name: str
    >>> NamespaceCreate.model_validate({"namespace_name": "n", "mode": "standard"}).namespace_name
    'n'
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from fastapi import Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.storage.pages import decode_position, encode_position

MAX_PAGE = 1000
OFFSET = ("offset",)
"""What a cursor of a list held whole holds (``storage.pages`` encodes it)."""


class HostedRequest(BaseModel):
    """A request body that refuses unknown keys, except the hosted fields it names."""

    model_config = ConfigDict(extra="forbid")

    hosted_fields: ClassVar[frozenset[str]] = frozenset()
    """Keys the hosted API defines that this install accepts and does not act on."""

    @model_validator(mode="before")
    @classmethod
    def _drop_hosted_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.hosted_fields:
            return {k: v for k, v in data.items() if k not in cls.hosted_fields}
        return data


LIST_FIELDS = frozenset(
    {"limit", "page_size", "offset", "page", "cursor", "next_cursor", "after", "include_total"}
)
"""The hosted list parameters, as query parameters or in a list request's body."""


class ListParams(BaseModel):
    """Which page of a list: ``limit`` (alias ``page_size``) and either an opaque ``cursor``
    (aliases ``next_cursor``, ``after``) or an ``offset`` (or a 1-based ``page``)."""

    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    cursor: str | None = None
    offset: int = Field(default=0, ge=0)

    def merged(self, body: dict[str, Any] | None) -> ListParams:
        """These parameters overridden by the same ones given in a list request's body."""
        if not body:
            return self
        given = {k: body.get(k) for k in LIST_FIELDS if k != "include_total"}
        return _resolve(self, **given)


def _resolve(
    base: ListParams,
    *,
    limit: Any = None,
    page_size: Any = None,
    offset: Any = None,
    page: Any = None,
    cursor: Any = None,
    next_cursor: Any = None,
    after: Any = None,
) -> ListParams:
    size = next((v for v in (limit, page_size) if v is not None), base.limit)
    if not isinstance(size, int) or not 1 <= size <= MAX_PAGE:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"limit must be an integer from 1 to {MAX_PAGE}",
            field="limit",
        )
    if isinstance(page, int) and page >= 1 and offset is None:
        offset = (page - 1) * size
    if offset is not None and (not isinstance(offset, int) or offset < 0):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "offset must be a non-negative integer", field="offset"
        )
    token = next((v for v in (cursor, next_cursor, after) if v is not None), base.cursor)
    if token is not None and not isinstance(token, str):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "cursor must be a string", field="cursor")
    return ListParams(limit=size, cursor=token, offset=base.offset if offset is None else offset)


def list_params(
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
    page_size: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
    offset: Annotated[int | None, Query(ge=0)] = None,
    page: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
    next_cursor: str | None = None,
    after: str | None = None,
    include_total: bool | None = None,  # totals are always counted here
) -> ListParams:
    """The hosted list query parameters (a list route's dependency)."""
    return _resolve(
        ListParams(),
        limit=limit,
        page_size=page_size,
        offset=offset,
        page=page,
        cursor=cursor,
        next_cursor=next_cursor,
        after=after,
    )


ListParamsDep = Annotated[ListParams, Depends(list_params)]
ListBody = Annotated[dict[str, Any] | None, Body(description="the hosted list request")]
"""A hosted list request's body: its paging keys count (filters and sorts are read by the
routes that have them)."""


def listing(items: list[dict[str, Any]], params: ListParams | None = None) -> dict[str, Any]:
    """A page of a list held whole (namespaces, buckets, collections, retrievers), in the
    hosted envelope: ``results``, ``total_count``, ``pagination``; ``total`` is this project's
    name for ``total_count``."""
    params = params or ListParams(limit=MAX_PAGE)
    position = decode_position(params.cursor, OFFSET)
    start = int(position["offset"]) if position is not None else params.offset
    end = start + params.limit
    more = end < len(items)
    return envelope(
        items[start:end],
        total=len(items),
        limit=params.limit,
        next_cursor=encode_position({"offset": end}) if more else None,
        offset=start,
    )


def envelope(
    results: list[dict[str, Any]],
    *,
    total: int | None,
    limit: int,
    next_cursor: str | None,
    offset: int = 0,
) -> dict[str, Any]:
    """The hosted list envelope around one page of ``results``."""
    pagination: dict[str, Any] = {
        "limit": limit,
        "page_size": limit,
        "page": offset // limit + 1,
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }
    if total is not None:
        pagination["total"] = total
        pagination["total_pages"] = max(1, -(-total // limit))
    return {
        "results": results,
        "total": total,
        "total_count": total if total is not None else len(results),
        "pagination": pagination,
    }
