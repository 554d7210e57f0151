"""The SPEC §3 batch rows: ingestion and ``mixpeek plugin test`` build them with one builder.

One fixture holds a blob of every type; each goes through the ingestion path (an object's blob,
its file in a real local object store) and through the plugin-test path (a sample record naming
the same data), and both batches must be the same, column by column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel

from mixpeek_orchestration.batch.rows import BASE_COLUMNS, sample_batch
from mixpeek_orchestration.ingest.documents import document_id
from mixpeek_orchestration.ingest.engine import build_rows
from mixpeek_orchestration.sdk._manifest import manifest_from_namespace
from mixpeek_orchestration.storage.objects import LocalObjectStore


class Inputs(BaseModel):
    text: str | None = None
    image_url: str | None = None
    caption: str | None = None  # neither a text nor a URL field: always None


TYPES = ["text", "json", "image", "video", "audio", "pdf", "document"]
DECLARED = ["text", "image", "video", "audio", "document"]  # text takes json, document pdf
MANIFEST = manifest_from_namespace(
    {
        "metadata": {"feature_extractor_name": "rows", "version": "1", "category": "multimodal"},
        "input_schema": Inputs,
        "output_schema": Inputs,
        "supported_input_types": DECLARED,
        "features": [{"feature_name": "v", "feature_type": "embedding", "embedding_dim": 2}],
    }
)
# (blob type, MIME type, how it is stored: inline text, a stored file, or a remote URL)
BLOBS = [
    ("text", "text/plain", "inline"),
    ("text", "text/plain", "stored"),
    ("json", "application/json", "inline"),
    ("json", "application/json", "stored"),
    ("image", "image/png", "stored"),
    ("image", "image/jpeg", "url"),
    ("video", "video/mp4", "stored"),
    ("audio", "audio/wav", "stored"),
    ("pdf", "application/pdf", "stored"),
    ("document", "application/msword", "stored"),
]


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects", signing_key=b"k", public_url="http://api")


def ingestion_batch(store: LocalObjectStore) -> pd.DataFrame:
    objects = []
    for index, (kind, mime, where) in enumerate(BLOBS):
        blob: dict[str, Any] = {
            "blob_id": f"blob_{index}",
            "property": f"p_{kind}",
            "type": kind,
            "mime_type": mime,
        }
        if where == "inline":
            blob["text"] = '{"a": 1}' if kind == "json" else "a sunny day"
        elif where == "url":
            blob["url"] = "https://example.com/cat.jpg"
        else:
            key = f"org/ns/buckets/b/files/f{index}"
            body = (
                b'{"a": 1}' if kind == "json" else b"a sunny day" if kind == "text" else b"\0" * 8
            )
            store.put_bytes(key, body)
            blob |= {"key": key, "size_bytes": len(body)}
        objects.append({"object_id": f"obj_{index}", "blobs": [blob]})
    collection = {
        "collection_id": "col_1",
        "supported_input_types": DECLARED,
        "feature_extractor": {"plugin_id": MANIFEST.plugin_id, "input_mappings": {}},
        "input_schema": MANIFEST.describe()["input_schema"],
    }
    return build_rows(collection, objects, store)  # type: ignore[arg-type]


def as_samples(batch: pd.DataFrame) -> list[dict[str, Any]]:
    """The plugin-test sample records naming exactly what ingestion handed the plugin."""
    return [{column: row[column] for column in BASE_COLUMNS} for row in batch.to_dict("records")]


def test_ingestion_and_plugin_test_build_the_same_rows_for_every_blob_type(
    store: LocalObjectStore,
) -> None:
    ingested = ingestion_batch(store)
    assert sorted(set(ingested["blob_type"])) == sorted(TYPES)
    tested = sample_batch(as_samples(ingested), MANIFEST)
    assert list(tested.columns) == list(ingested.columns)
    pd.testing.assert_frame_equal(tested, ingested)


def test_the_rows_follow_the_contract(store: LocalObjectStore) -> None:
    frame = ingestion_batch(store)
    assert tuple(frame.columns) == (*BASE_COLUMNS, "text", "image_url", "caption")
    batch = frame.set_index("blob_id")
    assert batch.loc["blob_0", "text"] == "a sunny day" == batch.loc["blob_1", "text"]
    assert batch.loc["blob_3", "data"] == '{"a": 1}'  # a stored JSON file: its text
    for binary in ("blob_4", "blob_6", "blob_7", "blob_8", "blob_9"):
        url = batch.loc[binary, "data"]
        assert url.startswith("http://api/v1/storage/org/ns/buckets/") and "signature=" in url
        assert batch.loc[binary, "image_url"] == url and pd.isna(batch.loc[binary, "text"])
    assert batch.loc["blob_5", "image_url"] == "https://example.com/cat.jpg"
    assert batch["caption"].isna().all()
    assert batch.loc["blob_0", "document_id"] == document_id("col_1", "obj_0", "blob_0")


def test_sample_records_given_by_their_input_fields(tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG" + b"\0" * 12)
    batch = sample_batch(
        [{"text": "hello", "caption": "kept"}, {"image_url": str(image)}, {"data": "a.json"}],
        MANIFEST,
    )
    text, picture, json_file = batch.to_dict("records")
    assert (text["data"], text["text"], text["caption"], text["blob_type"]) == (
        "hello", "hello", "kept", "text",
    )  # fmt: skip
    assert (picture["blob_type"], picture["image_url"], picture["size_bytes"]) == (
        "image", str(image), 16,
    )  # fmt: skip
    assert (json_file["blob_type"], json_file["mime_type"]) == ("json", "application/json")
