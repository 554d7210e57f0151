"""Analytics as metadata-store pipelines: distinct values and grouped aggregations of
documents or objects.

The hosted ``/documents/distinct``, ``/documents/aggregate`` and ``/objects/aggregate`` bodies
name fields by dotted path (``metadata.topic``), group them (optionally by a date unit or into numeric ranges),
compute ``count`` / ``sum`` / ``avg`` ... per group and filter the groups (``having``). Each
becomes one aggregation pipeline that starts with the caller's scope, so nothing here can read
another collection or bucket; every field name is checked before it reaches the pipeline, so a body
cannot smuggle an operator (``$where``) in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

from pymongo.errors import OperationFailure

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")
ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FUNCTIONS = {
    "sum": "$sum",
    "avg": "$avg",
    "min": "$min",
    "max": "$max",
    "first": "$first",
    "last": "$last",
    "push": "$push",
    "add_to_set": "$addToSet",
}
COMPARISONS = frozenset({"gt", "gte", "lt", "lte", "eq", "ne"})
DATE_PARTS = {
    "year": "$year",
    "month": "$month",
    "week": "$week",
    "day": "$dayOfMonth",
    "dayOfWeek": "$dayOfWeek",
    "dayOfYear": "$dayOfYear",
    "hour": "$hour",
    "minute": "$minute",
    "second": "$second",
}
DATE_TRUNC_UNITS = frozenset({"year", "month", "week", "day", "hour", "minute", "second"})


@contextmanager
def refused_by_store() -> Iterator[None]:
    """A pipeline the store cannot run on these records (``date_part`` of a string, a sum
    of lists...) as a 422 with the store's reason, not a server error."""
    try:
        yield
    except OperationFailure as exc:
        reason = (exc.details or {}).get("errmsg") or str(exc)
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, f"cannot be aggregated so: {reason}"
        ) from None


def checked_field(path: Any, where: str) -> str:
    """A dotted document path, refused (422 naming ``where``) when it is anything else."""
    if not isinstance(path, str) or not FIELD.fullmatch(path):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"{where} {path!r} is not a document field (a dotted path such as metadata.topic)",
            field=where,
        )
    return path


def distinct_pipeline(
    scope: dict[str, Any], field: str, match: dict[str, Any], limit: int | None
) -> list[dict[str, Any]]:
    """Each value of ``field`` with how many documents hold it, most frequent first (missing
    and null values left out); a list field counts each of its elements. ``match`` is a store
    query (a body's filters translated by the caller)."""
    path = checked_field(field, "field")
    pipeline: list[dict[str, Any]] = [
        {"$match": {"$and": [scope, match]} if match else scope},
        {"$unwind": f"${path}"},
        {"$match": {path: {"$ne": None}}},
        {"$group": {"_id": f"${path}", "count": {"$sum": 1}}},
        {"$sort": {"count": -1, "_id": 1}},
    ]
    if limit:
        pipeline.append({"$limit": limit})
    return pipeline


def aggregation_pipeline(
    scope: dict[str, Any], match: dict[str, Any], body: dict[str, Any]
) -> list[dict[str, Any]]:
    """The pipeline of a hosted aggregation body (its ``filters`` already translated into the
    store query ``match``); its rows are ``{_id: {group...}, metric...}`` (see
    :func:`aggregation_rows`)."""
    operations = body.get("aggregations") or []
    if not operations:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "aggregations needs at least one operation",
            field="aggregations",
        )  # fmt: skip
    pipeline: list[dict[str, Any]] = [{"$match": {"$and": [scope, match]} if match else scope}]
    if body.get("unwind"):
        pipeline.append({"$unwind": f"${checked_field(body['unwind'], 'unwind')}"})
    group: dict[str, Any] = {}
    for spec in body.get("group_by") or []:
        path = checked_field(spec.get("field"), "group_by")
        alias = _alias(spec.get("alias") or path.replace(".", "_"), "group_by")
        group[alias] = _grouped(path, spec.get("date_trunc"), spec.get("date_part"))
    for bucket in body.get("range_buckets") or []:
        path = checked_field(bucket.get("field"), "range_buckets")
        group[path.replace(".", "_")] = _range(path, bucket)
    metrics: dict[str, Any] = {}
    distinct: dict[str, str] = {}
    for op in operations:
        alias = _alias(op.get("alias"), "aggregations")
        if alias in group or alias in metrics:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, f"alias {alias!r} is used twice", field="aggregations"
            )
        function = op.get("function")
        if function == "count":
            metrics[alias] = {"$sum": 1}
            continue
        if function == "count_distinct":
            path = checked_field(op.get("distinct_field") or op.get("field"), "aggregations")
            metrics[alias] = {"$addToSet": f"${path}"}
            distinct[alias] = path
            continue
        if function not in FUNCTIONS:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"aggregation function {function!r} is not one of "
                f"{['count', 'count_distinct', *FUNCTIONS]}",
                field="aggregations",
            )
        path = checked_field(op.get("field"), "aggregations")
        metrics[alias] = {FUNCTIONS[function]: f"${path}"}
    pipeline.append({"$group": {"_id": group or None, **metrics}})
    if distinct:  # a set's size, null left out as the hosted count does
        pipeline.append(
            {
                "$set": {
                    alias: {
                        "$size": {
                            "$filter": {"input": f"${alias}", "cond": {"$ne": ["$$this", None]}}
                        }
                    }
                    for alias in distinct
                }
            }
        )
    having = []
    for condition in body.get("having") or []:
        alias, operator = condition.get("field"), condition.get("operator")
        if alias not in metrics and alias not in group:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"having field {alias!r} is not an aggregation alias or group "
                f"(one of {sorted({*metrics, *group})})",
                field="having",
            )
        if operator not in COMPARISONS:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"having operator {operator!r} is not one of {sorted(COMPARISONS)}",
                field="having",
            )
        target = alias if alias in metrics else f"_id.{alias}"
        having.append({target: {f"${operator}": condition.get("value")}})
    if having:
        pipeline.append({"$match": {"$and": having}})
    if body.get("sort_by"):
        key = body["sort_by"]
        if key not in metrics and key not in group:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"sort_by {key!r} is not an aggregation alias or group "
                f"(one of {sorted({*metrics, *group})})",
                field="sort_by",
            )
        direction = body.get("sort_direction") or "desc"
        if direction not in ("asc", "desc"):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"sort_direction {direction!r} is not asc or desc",
                field="sort_direction",
            )
        pipeline.append(
            {"$sort": {key if key in metrics else f"_id.{key}": 1 if direction == "asc" else -1}}
        )
    if body.get("limit") is not None:
        if not isinstance(body["limit"], int) or body["limit"] < 1:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "limit must be a positive integer", field="limit"
            )
        pipeline.append({"$limit": body["limit"]})
    return pipeline


def aggregation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pipeline rows as the hosted results: ``{group: {...}, metrics: {...}}``."""
    return [
        {"group": row.get("_id") or {}, "metrics": {k: v for k, v in row.items() if k != "_id"}}
        for row in rows
    ]


def _alias(alias: Any, where: str) -> str:
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"{where} alias {alias!r} must be a plain name (letters, digits, _)",
            field=where,
        )
    return alias


def _grouped(path: str, trunc: Any, part: Any) -> Any:
    if trunc and part:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            "group_by takes date_trunc or date_part, not both",
            field="group_by",
        )
    if trunc:
        if trunc not in DATE_TRUNC_UNITS:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"date_trunc {trunc!r} is not one of {sorted(DATE_TRUNC_UNITS)}",
                field="group_by",
            )
        return {"$dateTrunc": {"date": f"${path}", "unit": trunc}}
    if part:
        if part not in DATE_PARTS:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"date_part {part!r} is not one of {sorted(DATE_PARTS)}",
                field="group_by",
            )
        return {DATE_PARTS[part]: f"${path}"}
    return f"${path}"


def _range(path: str, bucket: dict[str, Any]) -> dict[str, Any]:
    """A histogram label per value: ``<b0``, ``b0-b1`` ... ``>bn``; a value on a boundary goes
    into the lower bucket, a missing or non-numeric one into ``default_bucket``."""
    bounds = bucket.get("boundaries") or []
    if not bounds or not all(
        isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds
    ):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            "range_buckets boundaries must be a non-empty list of numbers",
            field="range_buckets",
        )
    if list(bounds) != sorted(bounds):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            "range_buckets boundaries must be sorted ascending",
            field="range_buckets",
        )
    value = f"${path}"
    branches = [{"case": {"$lte": [value, bounds[0]]}, "then": f"<{bounds[0]}"}]
    branches += [
        {"case": {"$lte": [value, high]}, "then": f"{low}-{high}"} for low, high in pairwise(bounds)
    ]
    return {
        "$cond": [
            {"$isNumber": value},
            {"$switch": {"branches": branches, "default": f">{bounds[-1]}"}},
            bucket.get("default_bucket") or "other",
        ]
    }
