"""Checks of one ingestion batch, read back from the stores after it was written.

The ingestion service runs them next to the batch (it has the stores open); the Dagster asset
reports them as the partition's asset checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from mixpeek_orchestration.ingest.documents import Documents
    from mixpeek_orchestration.ingest.engine import IngestionReport

CHECKED_OBJECTS = 2000
"""Objects of a batch whose vectors are read back (a sample of larger batches)."""


class BatchCheck(TypedDict):
    check_name: str
    passed: bool
    severity: str  # ERROR | WARN
    metadata: dict[str, Any]


def batch_checks(
    documents: Documents,
    collection: Mapping[str, Any],
    batch: Mapping[str, Any],
    report: IngestionReport,
) -> list[BatchCheck]:
    """Vector dimensions and finite values of what was stored, and one document per blob."""
    import numpy as np

    dims_ok, finite_ok, detail = True, True, {}
    features = collection.get("features", [])
    for feature, uri in zip(features, collection.get("feature_uris", []), strict=True):
        if feature.get("feature_type", "embedding") != "embedding":
            continue  # no vectors: a label or a score
        rows = documents.vectors_of_objects(collection, uri, batch["object_ids"][:CHECKED_OBJECTS])
        if rows.num_rows == 0:
            continue
        column = rows["vector"].combine_chunks()
        width = column.type.list_size
        vectors = np.asarray(column.flatten(), dtype=np.float32).reshape(rows.num_rows, width)
        expected = int(feature.get("embedding_dim") or width)
        dims_ok &= width == expected
        finite_ok &= bool(np.isfinite(vectors).all())
        detail[uri] = {"vectors": rows.num_rows, "dim": int(width), "declared": expected}
    # the documents this batch wrote (counted by batch, not by a 2,000-id $in)
    seq_range = (batch["first_seq"], batch["last_seq"]) if "first_seq" in batch else None
    stored = documents.count_of_batch(batch["collection_id"], batch["batch_id"], seq_range)
    return [
        BatchCheck(
            check_name="vector_dimensions",
            passed=dims_ok,
            severity="ERROR",
            metadata={"tables": detail},
        ),
        BatchCheck(check_name="finite_values", passed=finite_ok, severity="ERROR", metadata={}),
        BatchCheck(
            check_name="documents_match_blobs",
            passed=stored == report.rows,
            severity="WARN",
            metadata={"documents": stored, "blobs": report.rows},
        ),
    ]
