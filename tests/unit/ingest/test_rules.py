"""Ingestion rules that need no server: parameters, ids, table names, cursors, rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.buckets import decode_cursor, encode_cursor, page
from mixpeek_orchestration.ingest.collections import check_parameters
from mixpeek_orchestration.ingest.documents import document_id, vector_table
from mixpeek_orchestration.ingest.engine import _arrow_safe, accepts, build_rows

SCHEMA = {
    "type": "object",
    "properties": {"threshold": {"type": "number", "minimum": 0, "maximum": 1}},
    "additionalProperties": False,
}


def test_parameters_within_the_schema_pass() -> None:
    check_parameters(SCHEMA, {"threshold": 0.3})
    check_parameters(SCHEMA, {})
    check_parameters(None, {})


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"threshold": 5}, "feature_extractor.parameters.threshold"),
        ({"threshold": "high"}, "feature_extractor.parameters.threshold"),
        ({"treshold": 0.2}, "feature_extractor.parameters"),
    ],
)
def test_parameters_outside_the_schema_are_refused_naming_the_field(
    parameters: dict[str, object], field: str
) -> None:
    with pytest.raises(MixpeekError) as caught:
        check_parameters(SCHEMA, parameters)
    assert caught.value.code is ErrorCode.INVALID_PARAMETERS
    assert caught.value.to_response()["field"] == field


def test_a_plugin_without_parameters_refuses_some() -> None:
    with pytest.raises(MixpeekError, match="takes no parameters"):
        check_parameters(None, {"x": 1})


def test_document_ids_are_stable_per_collection_object_and_blob() -> None:
    a = document_id("col_1", "obj_1", "blob_1")
    assert a == document_id("col_1", "obj_1", "blob_1")
    assert (
        len({a, document_id("col_2", "obj_1", "blob_1"), document_id("col_1", "obj_1", "blob_2")})
        == 3
    )


def test_vector_tables_are_per_namespace_and_feature_uri() -> None:
    uri = "mixpeek://my_extractor@1.0.0/my_extractor_embedding"
    assert vector_table("ns_a", uri) == "ns_a__my_extractor__1_0_0__my_extractor_embedding"
    assert vector_table("ns_a", uri) != vector_table("ns_b", uri)
    with pytest.raises(MixpeekError, match="not a feature URI"):
        vector_table("ns_a", "mixpeek://../x@1/y")


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(41)) == 41
    assert decode_cursor(None) == -1
    with pytest.raises(MixpeekError, match="cursor"):
        decode_cursor("not-a-cursor")
    result = page([{"seq": i} for i in range(4)], 3)
    assert [r["seq"] for r in result["results"]] == [0, 1, 2]
    assert decode_cursor(result["pagination"]["next_cursor"]) == 2
    assert page([{"seq": 1}], 3)["pagination"]["next_cursor"] is None


def test_blob_types_a_plugin_accepts() -> None:
    assert accepts({"supported_input_types": ["text"]}, "text")
    assert accepts({"supported_input_types": ["document"]}, "pdf")
    assert not accepts({"supported_input_types": ["text"]}, "image")


def test_rows_follow_the_processor_contract() -> None:
    collection = {
        "collection_id": "col_1",
        "supported_input_types": ["text"],
        "feature_extractor": {"plugin_id": "my_extractor_1_0_0", "input_mappings": {}},
        "input_schema": {"properties": {"text": {"type": "string"}}},
    }
    objects = [
        {
            "object_id": "obj_1",
            "blobs": [
                {"blob_id": "b1", "property": "content", "type": "text", "text": "hello", "mime_type": "text/plain"},
                {"blob_id": "b2", "property": "photo", "type": "image", "key": "k", "mime_type": "image/png"},
            ],
        }
    ]  # fmt: skip
    frame = build_rows(collection, objects, platform=None)  # type: ignore[arg-type]
    assert len(frame) == 1  # the image is not this plugin's input
    row = frame.iloc[0]
    assert (row["data"], row["text"], row["blob_property"]) == ("hello", "hello", "content")
    assert row["document_id"] == document_id("col_1", "obj_1", "b1")
    assert row["feature_extractor_id"] == "my_extractor_1_0_0"


def test_vectors_become_lists_so_failed_rows_still_convert() -> None:
    frame = pd.DataFrame({"v": [np.ones(3, dtype=np.float32), None], "label": ["a", None]})
    out = _arrow_safe(frame)
    assert out["v"].tolist() == [[1.0, 1.0, 1.0], None]
