"""Importing another system's records: inferred mappings, every mapping error named, and
records rebuilt as documents (base64 vectors decoded)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.ingest.imports import infer, mapping_errors, reconstruct

VECTOR = [0.5, -0.25, 1.0, 0.0]
ROWS = [
    {"id": "a1", "title": "Boots", "shop": {"brand": "acme"}, "emb": VECTOR, "price": 3},
    {"id": "a2", "title": "Hat", "shop": {"brand": "acme"}, "emb": VECTOR, "price": 2.5},
    {"id": "a3", "title": "Cap", "shop": {"brand": "acme"}, "emb": VECTOR, "price": "n/a"},
]
MAPPING = {
    "fields": [
        {"source_field": "id", "target": {"kind": "identity", "role": "source_object_id"}},
        {"source_field": "title", "target": {"kind": "metadata", "path": "metadata.title"}},
        {
            "source_field": "shop.brand",
            "target": {"kind": "metadata", "path": "metadata.shop.brand"},
        },
        {"source_field": "emb", "target": {"kind": "vector", "index": "embedding", "dim": 4}},
    ]
}


def test_a_mapping_is_inferred_from_sample_rows() -> None:
    inferred = infer(ROWS, known_dims={"embedding": 4})
    by_path = {f["path"]: f for f in inferred["fields"]}
    assert by_path["id"]["suggested_target"] == {"kind": "identity", "role": "source_object_id"}
    assert by_path["id"]["cardinality"] == "high"
    assert by_path["shop.brand"]["suggested_target"] == {
        "kind": "metadata",
        "path": "metadata.shop.brand",
    }
    assert by_path["shop.brand"]["cardinality"] == "low"
    assert by_path["emb"]["type"] == "vector"
    assert by_path["title"]["type"] == "string" and by_path["price"]["type"] == "object"
    assert any("price" in w for w in inferred["warnings"])
    assert infer([{"n": 1}, {"n": 2.5}])["fields"][0]["type"] == "float"
    assert infer([{"at": "2026-12-01T10:00:00"}])["fields"][0]["type"] == "datetime"
    assert by_path["emb"]["suggested_target"]["index"] == "embedding"
    packed = base64.b64encode(np.asarray(VECTOR, np.float16).tobytes()).decode()
    halves = infer([{"v": packed}], known_dims={"embedding": 4})["fields"][0]
    assert (halves["type"], halves["dtype"]) == ("vector", "float16-base64")
    unknown = infer([{"v": [0.1] * 16}])
    assert unknown["fields"][0]["type"] == "vector" and unknown["warnings"]


def test_every_mapping_error_is_named() -> None:
    assert mapping_errors(MAPPING, known_dims={"embedding": 4}) == []
    bad = {"fields": [
        {"source_field": "x", "target": {"kind": "metadata", "path": "brand"}},
        {"source_field": "y", "target": {"kind": "vector", "index": "other"}},
        {"source_field": "z", "target": {"kind": "vector", "index": "embedding", "dim": 8}},
        {"source_field": "p", "target": {"kind": "parent"}},
        {"source_field": "q", "target": {"kind": "teleport"}},
        {"source_field": "title", "target": {"kind": "metadata", "path": "metadata.t",
                                             "expected_type": "number"}},
        {"source_field": "title", "target": {"kind": "metadata", "path": "metadata.t"}},
    ]}  # fmt: skip
    errors = mapping_errors(bad, source_types={"title": "string", "x": "string"},
                            known_dims={"embedding": 4})  # fmt: skip
    fields = [e["field"] for e in errors]
    assert fields.count("y") == 2 and fields.count("title") == 2  # unknown source + index
    assert {"x", "z", "p", "q"} <= set(fields)
    assert any("already maps" in e["error"] for e in errors)


def test_a_record_is_rebuilt_as_a_document() -> None:
    doc = reconstruct(ROWS[0], MAPPING)
    assert doc == {
        "metadata": {"title": "Boots", "shop": {"brand": "acme"}},
        "vectors": {"embedding": VECTOR},
        "source_object_id": "a1",
    }
    packed = base64.b64encode(np.asarray(VECTOR, np.float32).tobytes()).decode()
    mapping = {"fields": [{"source_field": "v", "target": {"kind": "vector", "index": "e",
                                                           "dtype": "float32-base64"}}]}  # fmt: skip
    assert reconstruct({"v": packed}, mapping)["vectors"] == {"e": VECTOR}
    with pytest.raises(MixpeekError, match="not base64"):
        reconstruct({"v": "!!!"}, mapping)
