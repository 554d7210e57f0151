"""The ingestion engine's rules that need no cluster: accepted blob types, rows, Arrow."""

from __future__ import annotations

from mixpeek_orchestration.ingest.documents import document_id
from mixpeek_orchestration.ingest.engine import accepts, build_rows, processed_blobs


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
    frame = build_rows(collection, objects, store=None)  # type: ignore[arg-type]
    assert len(frame) == 1  # the image is not this plugin's input
    row = frame.iloc[0]
    assert (row["data"], row["text"], row["blob_property"]) == ("hello", "hello", "content")
    assert row["document_id"] == document_id("col_1", "obj_1", "b1")
    assert row["feature_extractor_id"] == "my_extractor_1_0_0"


def test_an_object_with_no_blob_for_the_plugin_is_skipped() -> None:
    """Reconciliation calls such an object ``skipped``, not missing: no document is owed."""
    collection = {
        "supported_input_types": ["text"],
        "feature_extractor": {"input_mappings": {"text": "caption"}},
    }
    photo = {"blobs": [{"property": "photo", "type": "image"}]}
    captioned = {"blobs": [{"property": "photo", "type": "image"},
                           {"property": "caption", "type": "text"}]}  # fmt: skip
    note = {"blobs": [{"property": "note", "type": "text"}]}  # not the mapped property
    assert processed_blobs(collection, photo) == []
    assert processed_blobs(collection, captioned) == [{"property": "caption", "type": "text"}]
    assert processed_blobs(collection, note) == []
    unmapped = collection | {"feature_extractor": {}}
    assert processed_blobs(unmapped, note) == note["blobs"]
