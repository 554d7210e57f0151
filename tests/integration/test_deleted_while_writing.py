"""A collection (or its namespace) deleted while one of its batches is writing keeps nothing of
that batch: the real metadata server and vector store, in a database and namespace of their own,
with the delete landing between the writer's check and its write."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from mixpeek_orchestration.ingest.buckets import Buckets
from mixpeek_orchestration.ingest.collections import Collections
from mixpeek_orchestration.ingest.documents import Documents, vector_table
from mixpeek_orchestration.ingest.engine import IngestionEngine, IngestionReport
from mixpeek_orchestration.plugins.registry import PluginRegistry
from mixpeek_orchestration.storage.metadata import MetadataStore
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration

URI = "mixpeek://racer@1.0.0/racer_embedding"
NS = "ns_deleted_while_writing"


@pytest.fixture()
def engine(stack: RunningStack, request: pytest.FixtureRequest) -> Any:
    platform = stack.platform()
    metadata = MetadataStore(stack.settings.mongo_uri or "", f"race_{request.node.name[:40]}")
    metadata.client.drop_database(metadata.db.name)
    documents = Documents(metadata, platform.vectors)
    buckets = Buckets(metadata, platform.objects)
    registry = PluginRegistry(metadata, platform.objects)
    collections = Collections(metadata, buckets, registry, documents)
    engine = IngestionEngine(
        collections=collections,
        registry=registry,
        buckets=buckets,
        documents=documents,
        vectors=platform.vectors,
        objects=platform.objects,
        ray=platform.ray,
        step_plans=platform.step_plans,
        overrides=platform.overrides,
        warm_idle_s=1,
        sandbox=platform.sandbox,
    )
    yield engine
    metadata.client.drop_database(metadata.db.name)
    if platform.vectors.has_table(vector_table(NS, URI)):
        platform.vectors.drop(vector_table(NS, URI))


def collection() -> dict[str, Any]:
    return {
        "org_id": "org_race",
        "namespace_id": NS,
        "collection_id": "col_race",
        "collection_name": "race",
        "feature_extractor": {
            "feature_extractor_name": "racer",
            "version": "1.0.0",
            "plugin_id": "racer_1_0_0",
        },
        "features": [{"feature_name": "racer_embedding", "embedding_dim": 2}],
        "feature_uris": [URI],
    }


def block(n: int) -> pa.Table:
    ids = [f"obj_{i}" for i in range(n)]
    return pa.table(
        {
            "document_id": [f"doc_{i}" for i in range(n)],
            "object_id": ids,
            "blob_id": [f"blob_{i}" for i in range(n)],
            "blob_property": ["content"] * n,
            "blob_type": ["text"] * n,
            "mime_type": ["text/plain"] * n,
            "racer_embedding": [[1.0, float(i)] for i in range(n)],
        }
    )


def write(engine: IngestionEngine, record: dict[str, Any]) -> IngestionReport:
    report = IngestionReport(
        batch_id="b", collection_id="col_race", plugin_id="racer_1_0_0", objects=3
    )
    objects = {f"obj_{i}": {"bucket_id": "bkt", "seq": i} for i in range(3)}
    engine._write_as_processed(
        report,
        iter([block(3)]),
        collection=record,
        objects=objects,
        output_fields=["racer_embedding"],
        batch_id="b",
        run_id=None,
        started=0.0,
    )
    return report


@pytest.mark.parametrize("delete", ["collection", "namespace"])
def test_a_delete_that_lands_during_a_write_leaves_nothing_of_it(
    engine: IngestionEngine, delete: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = collection()
    engine.collections.collections.insert_one(dict(record))
    documents = engine.documents
    real_write = documents.write

    def deleted_meanwhile(*args: Any, **kwargs: Any) -> dict[str, int]:
        # the writer has checked the collection: now the delete runs, all of it, before the
        # write lands (what the API's delete and the namespace cascade do, in their order)
        engine.collections.collections.delete_one({"collection_id": "col_race"})
        documents.delete_collection(record)
        if delete == "namespace":
            for table in engine.vectors.table_names():
                if table.startswith(f"{NS}__"):
                    engine.vectors.drop(table)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(documents, "write", deleted_meanwhile)
    with pytest.raises(RuntimeError, match="col_race was deleted"):
        write(engine, record)

    assert documents.documents.count_documents({"collection_id": "col_race"}) == 0
    table = vector_table(NS, URI)
    # the write created the table again; nothing uses it any more, so it goes too
    assert not engine.vectors.has_table(table)


def test_a_write_to_a_live_collection_is_kept(engine: IngestionEngine) -> None:
    record = collection()
    engine.collections.collections.insert_one(dict(record))
    report = write(engine, record)
    assert (report.completed, report.failed, report.vectors) == (3, 0, 3)
    assert engine.documents.documents.count_documents({"collection_id": "col_race"}) == 3
    assert engine.vectors.count(vector_table(NS, URI)) == 3
