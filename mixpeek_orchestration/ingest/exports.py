"""A collection's documents as one downloadable file: JSON lines, CSV or Parquet, and its
vectors beside them as Parquet (``id``, ``feature_uri``, ``vector``).

A document's nested fields become dotted columns in CSV and Parquet (``metadata.topic``); a
column whose values are not of one type, or are lists or objects, is written as JSON text.
Files go to the object store under the namespace's ``exports/`` prefix and are read back
through a presigned URL; they are removed with the namespace.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.documents import vector_table
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.tenancy.accounts import Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.ingest.documents import Documents
    from mixpeek_orchestration.storage.objects import ObjectStore

FORMATS = {"json": ".jsonl", "csv": ".csv", "parquet": ".parquet"}
URL_TTL_S = 3600
HIDDEN = {"_id": 0, "org_id": 0, "seq": 0}  # bookkeeping, never exported
LINEAGE = ("source_object_id", "bucket_id", "source_blobs", "plugin_id", "feature_extractor",
           "batch_id", "run_id")  # fmt: skip


def exports_prefix(namespace: Namespace) -> str:
    return f"{namespace.org_id}/{namespace.namespace_id}/exports/"


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys: ``{"metadata": {"a": 1}}`` -> ``{"metadata.a": 1}``."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _cell(value: Any) -> Any:
    return json.dumps(value, default=str) if isinstance(value, (list, dict)) else value


def export_collection(
    documents: Documents,
    store: ObjectStore,
    namespace: Namespace,
    collection: dict[str, Any],
    *,
    fmt: str,
    include_vectors: bool = False,
    include_lineage: bool = False,
    select_fields: list[str] | None = None,
    sample_size: int | None = None,
) -> dict[str, Any]:
    """Write the collection's documents (the first ``sample_size`` of them, in the order
    they were made) and return presigned URLs to them."""
    if fmt not in FORMATS:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"export format {fmt!r} is not supported here: one of {sorted(FORMATS)}",
            field="format",
        )
    hidden = dict(HIDDEN) | ({} if include_lineage else dict.fromkeys(LINEAGE, 0))
    found = documents.documents.find(
        {**scope(namespace), "collection_id": collection["collection_id"]}, hidden
    ).sort("seq", 1)
    if sample_size:
        found = found.limit(sample_size)
    rows = [_selected(doc, select_fields) for doc in found]
    export_id = new_id("exp")
    base = f"{exports_prefix(namespace)}{collection['collection_id']}/{export_id}"
    with tempfile.TemporaryDirectory(prefix="mixpeek-export-") as scratch:
        path = Path(scratch) / f"documents{FORMATS[fmt]}"
        WRITERS[fmt](rows, path)
        info = store.put_file(f"{base}{FORMATS[fmt]}", path)
        answer: dict[str, Any] = {
            "export_id": export_id,
            "download_url": store.presign_get(info.key, expires_in=URL_TTL_S).url,
            "s3_path": info.key,
            "format": fmt,
            "document_count": len(rows),
            "file_size_bytes": info.size,
            "exported_at": now(),
        }
        if include_vectors:
            vectors = Path(scratch) / "vectors.parquet"
            count = _write_vectors(
                documents, namespace, collection, {r["document_id"] for r in rows}, vectors
            )
            stored = store.put_file(f"{base}.vectors.parquet", vectors)
            answer |= {
                "vectors_download_url": store.presign_get(stored.key, expires_in=URL_TTL_S).url,
                "vectors_s3_path": stored.key,
                "vector_count": count,
            }
    return answer


def _selected(doc: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return doc
    flat = flatten(doc)
    picked = {"document_id": doc["document_id"]}
    for field in fields:
        picked |= {k: v for k, v in flat.items() if k == field or k.startswith(f"{field}.")}
    return picked


def _write_json(rows: Iterable[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")


def _columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    flat = [flatten(r) for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    return columns, flat


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    columns, flat = _columns(rows)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for row in flat:
            writer.writerow({k: _cell(v) for k, v in row.items()})


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, flat = _columns(rows)
    arrays = {}
    for name in columns:
        values = [r.get(name) for r in flat]
        try:
            if any(isinstance(v, (list, dict)) for v in values):
                raise TypeError  # nested values: as JSON text
            arrays[name] = pa.array(values)
        except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[name] = pa.array([None if v is None else str(_cell(v)) for v in values])
    pq.write_table(pa.table(arrays) if arrays else pa.table({"document_id": []}), path)


WRITERS = {"json": _write_json, "csv": _write_csv, "parquet": _write_parquet}


def _write_vectors(
    documents: Documents,
    namespace: Namespace,
    collection: dict[str, Any],
    ids: set[str],
    path: Path,
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for feature, uri in zip(collection["features"], collection["feature_uris"], strict=True):
        if feature.get("feature_type", "embedding") != "embedding":
            continue
        table = documents.vectors.rows(
            vector_table(namespace.namespace_id, uri),
            filters={"collection_id": collection["collection_id"]},
            columns=["id", "vector"],
        )
        if not table.num_rows:
            continue
        table = table.filter(pa.array([i in ids for i in table.column("id").to_pylist()]))
        vectors = pa.array(table.column("vector").to_pylist(), pa.list_(pa.float32()))
        parts.append(
            pa.table(
                {"id": table.column("id"), "feature_uri": [uri] * table.num_rows, "vector": vectors}
            )
        )
    schema = pa.schema(
        [("id", pa.string()), ("feature_uri", pa.string()), ("vector", pa.list_(pa.float32()))]
    )
    merged = pa.concat_tables([p.cast(schema) for p in parts]) if parts else schema.empty_table()
    pq.write_table(merged, path)
    return int(merged.num_rows)
