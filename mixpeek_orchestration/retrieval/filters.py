"""Retriever inputs and filters: ``{{INPUT.x}}`` templates, and the filter language stages share.

A filter is ``{field, operator, value}`` (``eq`` by default) or ``{AND: [...]}`` /
``{OR: [...]}`` of filters, over dotted document paths (``metadata.year``). The same rules
check a filter when a retriever is saved (:func:`check_condition`), select candidates
(:func:`matches`) and push what the metadata store can answer down to it
(:func:`mongo_condition`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.aggregations import checked_field

TEMPLATE = re.compile(r"\{\{\s*INPUT\.([A-Za-z0-9_.]+)\s*\}\}")


def fill_templates(value: Any, inputs: dict[str, Any]) -> Any:
    """Replace ``{{INPUT.x}}`` in every string of ``value`` with ``inputs["x"]``."""
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value.strip())
        if whole:
            return _lookup(inputs, whole.group(1))
        return TEMPLATE.sub(lambda m: str(_lookup(inputs, m.group(1))), value)
    if isinstance(value, dict):
        return {k: fill_templates(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_templates(v, inputs) for v in value]
    return value


def _lookup(data: dict[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"inputs has no {path!r} (used as {{{{INPUT.{path}}}}})",
                field="inputs",
            )
        current = current[part]
    return current


def field_value(doc: dict[str, Any], path: str) -> Any:
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "in": lambda a, b: a in b,
    "nin": lambda a, b: a not in b,
    "contains": lambda a, b: a is not None and b in a,
    "exists": lambda a, b: (a is not None) == bool(b),
}


def check_condition(condition: Any) -> None:
    """Refuse a malformed filter up front (422 naming what is wrong), so that a filter that
    happens to meet no candidate is not silently accepted."""
    if not isinstance(condition, dict):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"a filter must be an object, not {condition!r}",
            field="filters",
        )
    for combine in ("AND", "OR"):
        if combine in condition:
            if not isinstance(condition[combine], list):
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST, f"filters {combine} takes a list", field="filters"
                )
            for part in condition[combine]:
                check_condition(part)
            return
    if not isinstance(condition.get("field"), str):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "a filter needs a 'field'", field="filters")
    _operator(condition)


def _operator(condition: dict[str, Any]) -> Callable[[Any, Any], bool]:
    """The comparison a leaf condition names (``eq`` by default); 422 for an unknown one."""
    operator = condition.get("operator", "eq")
    if operator not in OPERATORS:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"filter operator {operator!r} is not one of {sorted(OPERATORS)}",
            field="filters",
        )
    return OPERATORS[operator]


def matches(doc: dict[str, Any], condition: dict[str, Any]) -> bool:
    """``{field, operator, value}``, or ``{AND: [...]}`` / ``{OR: [...]}`` of them."""
    if "AND" in condition:
        return all(matches(doc, c) for c in condition["AND"])
    if "OR" in condition:
        return any(matches(doc, c) for c in condition["OR"])
    compare = _operator(condition)
    try:
        return compare(field_value(doc, condition["field"]), condition.get("value"))
    except TypeError:
        return False
    except KeyError:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "a filter needs a 'field'", field="filters"
        ) from None


def mongo_condition(condition: dict[str, Any]) -> dict[str, Any]:
    """A metadata-store query matching at least every document ``matches`` accepts.

    Operators whose MongoDB meaning is at least as wide as :data:`OPERATORS` (``eq``, the
    comparisons, ``in`` over a list, ``exists: true``) are pushed down; the rest become
    "anything" (``{}``), and the exact rules still run on what comes back. ``score`` is computed
    by the search, never stored, so it is never pushed.
    """
    if "AND" in condition:
        parts = [p for p in (mongo_condition(c) for c in condition["AND"]) if p]
        return {"$and": parts} if parts else {}
    if "OR" in condition:
        parts = [mongo_condition(c) for c in condition["OR"]]
        return {"$or": parts} if parts and all(parts) else {}
    field, operator = condition.get("field"), condition.get("operator", "eq")
    value = condition.get("value")
    if not isinstance(field, str) or field == "score" or field.startswith(("score.", "$")):
        return {}
    if operator == "eq":
        return {field: value}
    if operator in ("gt", "gte", "lt", "lte") and value is not None:
        return {field: {f"${operator}": value}}
    if operator == "in" and isinstance(value, list):
        return {field: {"$in": value}}
    if operator == "exists" and value:
        return {field: {"$ne": None}}
    return {}


def mongo_query(condition: dict[str, Any]) -> dict[str, Any]:
    """The metadata-store query matching exactly what :func:`matches` accepts (a list of
    documents pages in the store, so nothing may be left to check afterwards); the filter is
    checked first (422 naming what is wrong)."""
    check_condition(condition)
    return _exact(condition)


def _exact(condition: dict[str, Any]) -> dict[str, Any]:
    if "AND" in condition:
        parts = [_exact(c) for c in condition["AND"]]
        return {"$and": parts} if parts else {}
    if "OR" in condition:
        parts = [_exact(c) for c in condition["OR"]]
        return {"$or": parts} if parts else {"_id": {"$exists": False}}
    field, operator = condition["field"], condition.get("operator", "eq")
    value = condition.get("value")
    if field == "score" or field.startswith(("score.", "$")):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"filter field {field!r} is not a stored field of a document",
            field="filters",
        )
    if operator in ("in", "nin") and not isinstance(value, list):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, f"filter operator {operator!r} takes a list", field="filters"
        )
    if operator == "eq":
        return {field: value}
    if operator == "contains":
        if isinstance(value, str):  # a substring of a string, or an element of a list
            return {"$or": [{field: value}, {field: {"$regex": re.escape(value)}}]}
        return {field: value}
    if operator == "exists":
        return {field: {"$ne": None}} if value else {field: None}
    return {field: {f"${operator}": value}}  # ne, gt, gte, lt, lte, in, nin


def store_query(filters: dict[str, Any] | None) -> dict[str, Any]:
    """A store query for a body's ``filters``: the hosted filter form
    (``{"AND": [{"field", "operator", "value"}]}``) or plain ``{field: value}`` equalities
    (a list value matches any of its elements)."""
    filters = {k: v for k, v in (filters or {}).items() if k != "case_sensitive"}
    if not filters:  # (case_sensitive: the hosted logical operator's option, always sent)
        return {}
    if any(key in filters for key in ("AND", "OR", "field")):
        return mongo_query(filters)
    query: dict[str, Any] = {}
    for path, value in filters.items():
        checked_field(path, "filters")
        if isinstance(value, dict):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"filter {path!r} takes a value or a list of values; for operators use "
                '{"AND": [{"field": ..., "operator": ..., "value": ...}]}',
                field="filters",
            )
        query[path] = {"$in": value} if isinstance(value, list) else value
    return query
