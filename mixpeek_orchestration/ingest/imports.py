"""Documents from another system's records: infer a mapping, check it, import with it.

A record (one exported object, ``{"id": ..., "title": ..., "embedding": [...]}``) becomes a
document through a mapping from its fields (dotted paths) to targets:

- ``metadata``: the value at ``path`` of the document's metadata (``metadata.brand``);
- ``vector``: the vector of the feature ``index`` (a list of numbers, or base64 of
  ``float32`` / ``float16`` values when ``dtype`` says so);
- ``identity``: the record's id, kept as the document's ``source_object_id``;
- ``ignore``: left out.

``parent`` targets (a document made from another document) and ``explode`` (many documents
from one record) need document lineage this project does not have; they are refused by name.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

KINDS = frozenset({"metadata", "vector", "identity", "parent", "ignore"})
DTYPES = {"float32-base64": "<f4", "float16-base64": "<f2"}
SAMPLES = 3


def value_at(record: Mapping[str, Any], path: str) -> Any:
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _paths(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping) and value:
            out |= _paths(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _vector_dim(value: Any, known: set[int]) -> tuple[int, str] | None:
    """``(dim, dtype)`` when the value reads as a vector: a list of numbers (of a known
    dimension, or at least 8 long), or base64 of float32 / float16 values of a known one."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        if len(value) in known or (not known and len(value) >= 8):
            return len(value), "float32"
        return None
    if isinstance(value, str) and len(value) >= 12:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        for dtype, size in (("float32-base64", 4), ("float16-base64", 2)):
            if len(raw) % size == 0 and len(raw) // size in known:
                return len(raw) // size, dtype
    return None


def _type_of(value: Any) -> str:
    """The hosted source type of one value (lists are ``object`` there, it has no array)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return "string"
        return "datetime"
    if isinstance(value, (list, Mapping)):
        return "object"
    return "null"


def _field_type(kinds: set[str]) -> str:
    """One type for the values of a field: integers among floats are floats; any other mix
    is ``object`` (a warning names it)."""
    if len(kinds) == 1:
        return next(iter(kinds))
    return "float" if kinds == {"integer", "float"} else "object"


def infer(
    rows: list[dict[str, Any]],
    *,
    sample_size: int = 100,
    known_dims: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Each field of the sample rows with its type and a suggested target: a vector for a
    field that reads as one (matched to the index of its dimension when ``known_dims`` has
    one), the record's id for ``id`` / ``_id``, metadata for the rest."""
    known = dict(known_dims or {})
    by_dim = {dim: name for name, dim in known.items()}
    seen: dict[str, list[Any]] = {}
    for row in rows[:sample_size]:
        for path, value in _paths(row).items():
            seen.setdefault(path, []).append(value)
    fields, warnings = [], []
    for path, values in seen.items():
        present = [v for v in values if v is not None]
        vector = next((d for v in present if (d := _vector_dim(v, set(by_dim)))), None)
        kinds = {_type_of(v) for v in present} or {"null"}
        distinct = len({repr(v) for v in present})
        field: dict[str, Any] = {
            "path": path,
            "type": "vector" if vector else _field_type(kinds),
            # high: at least half the sampled values differ (ids, titles); low: categories
            "cardinality": "high" if distinct * 2 >= max(len(present), 1) else "low",
            "sample": present[0] if present and not vector else None,
        }
        if not vector and _field_type(kinds) == "object" and kinds - {"object"}:
            warnings.append(f"{path} holds values of several types: {sorted(kinds)}")
        if vector:
            dim, dtype = vector
            index = by_dim.get(dim)
            field |= {"dim": dim, "dtype": dtype}
            field["suggested_target"] = {
                "kind": "vector",
                "index": index,
                "dim": dim,
                "dtype": dtype,
            }
            if index is None:
                warnings.append(f"{path} looks like a {dim}-dimensional vector of no known index")
        elif path in ("id", "_id", "object_id"):
            field["suggested_target"] = {"kind": "identity", "role": "source_object_id"}
        else:
            field["suggested_target"] = {"kind": "metadata", "path": f"metadata.{path}"}
        fields.append(field)
    return {"fields": fields, "warnings": warnings}


def mapping_errors(
    mapping: Mapping[str, Any],
    *,
    source_types: Mapping[str, str] | None = None,
    known_dims: Mapping[str, int] | None = None,
) -> list[dict[str, str]]:
    """Every way a mapping cannot be imported with (``{field, error}`` each)."""
    errors: list[dict[str, str]] = []
    claimed: dict[str, str] = {}
    known = dict(known_dims or {})
    for item in mapping.get("fields") or []:
        source, target = item.get("source_field"), item.get("target") or {}
        kind, where = target.get("kind"), str(source)

        def refuse(error: str, where: str = where) -> None:
            errors.append({"field": where, "error": error})

        if source_types is not None and source not in source_types:
            refuse(f"{source!r} is not a field of the source")
        if kind not in KINDS:
            refuse(f"target kind {kind!r} is not one of {sorted(KINDS)}")
            continue
        key = kind
        if kind == "parent":
            refuse("parent targets need document lineage, which this install does not keep")
        elif kind == "metadata":
            key = target.get("path") or ""
            if not key.startswith("metadata.") or key == "metadata.":
                refuse("a metadata target needs a path such as metadata.brand")
        elif kind == "vector":
            index, dim, dtype = target.get("index"), target.get("dim"), target.get("dtype")
            key = f"vector:{index}"
            if not index:
                refuse("a vector target needs an index (a feature name)")
            elif known and index not in known:
                refuse(f"index {index!r} is not one of {sorted(known)}")
            elif known and dim not in (None, known[index]):
                refuse(f"index {index!r} has {known[index]} dimensions, not {dim}")
            if dtype not in (None, "float32", *DTYPES):
                refuse(f"dtype {dtype!r} is not one of {['float32', *DTYPES]}")
        expected = target.get("expected_type")
        found = (source_types or {}).get(source)
        if expected and found and found != expected:
            refuse(f"{source!r} is {found}, the target expects {expected}")
        if kind != "ignore" and key in claimed:
            refuse(f"{claimed[key]!r} already maps to that target")
        claimed.setdefault(key, where)
    return errors


def reconstruct(record: Mapping[str, Any], mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The document a record becomes: ``{metadata, vectors, source_object_id}`` (the
    mapping already checked)."""
    import numpy as np

    metadata: dict[str, Any] = {}
    vectors: dict[str, list[float]] = {}
    source_object_id = None
    for item in mapping.get("fields") or []:
        target = item["target"]
        value = value_at(record, item["source_field"])
        if value is None or target["kind"] == "ignore":
            continue
        if target["kind"] == "metadata":
            node = metadata
            *parents, leaf = target["path"].removeprefix("metadata.").split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        elif target["kind"] == "vector":
            dtype = target.get("dtype")
            if dtype in DTYPES:
                try:
                    raw = base64.b64decode(value, validate=True)
                    value = np.frombuffer(raw, dtype=DTYPES[dtype]).astype(np.float32).tolist()
                except (binascii.Error, ValueError, TypeError):
                    raise MixpeekError(
                        ErrorCode.INVALID_REQUEST,
                        f"{item['source_field']} is not base64 of {dtype.removesuffix('-base64')}",
                        field=item["source_field"],
                    ) from None
            vectors[target["index"]] = value
        elif target["kind"] == "identity":
            source_object_id = str(value)
    return {"metadata": metadata, "vectors": vectors, "source_object_id": source_object_id}
