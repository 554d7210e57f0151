"""Many documents at once against the real metadata server and vector store, in a database of
their own: batch deletes take their vectors with them, batch updates fail one document at a
time, distinct values and aggregations run as store pipelines inside one collection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.ingest.documents import Documents, vector_table
from mixpeek_orchestration.retrieval.filters import store_query
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.vectors import VectorStore
from mixpeek_orchestration.tenancy.accounts import Namespace
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration

NS = Namespace("ns_ops", "ops", "org_ops", "", datetime.now(UTC))
OTHER = Namespace("ns_else", "else", "org_ops", "", datetime.now(UTC))
URI = "mixpeek://ops@1.0.0/ops_embedding"
COLLECTION = {
    "collection_id": "col_ops",
    "namespace_id": NS.namespace_id,
    "features": [{"feature_name": "ops_embedding", "embedding_dim": 2}],
    "feature_uris": [URI],
}
TOPICS = ["sport", "sport", "food", "food", "food", "space"]


@pytest.fixture()
def documents(stack: RunningStack, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    metadata = MetadataStore(stack.settings.mongo_uri or "", f"docops_{request.node.name[:40]}")
    metadata.client.drop_database(metadata.db.name)
    docs = Documents(metadata, VectorStore(tmp_path / "vectors"))
    docs.ensure_indexes()
    rows = []
    for i, topic in enumerate(TOPICS):
        rows.append(
            {
                "org_id": NS.org_id, "namespace_id": NS.namespace_id, "collection_id": "col_ops",
                "document_id": f"doc_{i}", "source_object_id": f"obj_{i}", "seq": i,
                "status": "completed", "feature_refs": [URI], "errors": [],
                "metadata": {"topic": topic, "length": 10 * i, "tags": ["a", f"t{i % 2}"],
                             "day": datetime(2026, 1 + i % 2, 1 + i, tzinfo=UTC)},
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
            }
        )  # fmt: skip
    # the same ids' neighbours: another namespace's document no operation may touch
    rows.append(rows[0] | {"namespace_id": OTHER.namespace_id, "document_id": "doc_else"})
    docs.documents.insert_many(rows)
    docs.vectors.upsert(
        vector_table(NS.namespace_id, URI),
        pa.table(
            {
                "id": [f"doc_{i}" for i in range(len(TOPICS))],
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array([float(v) for i in range(len(TOPICS)) for v in (i, 1)], pa.float32()),
                    2,
                ),
                "collection_id": ["col_ops"] * len(TOPICS),
                "object_id": [f"obj_{i}" for i in range(len(TOPICS))],
            }
        ),
    )
    yield docs
    metadata.client.drop_database(metadata.db.name)


def vector_ids(docs: Documents) -> set[str]:
    table = docs.vectors.rows(vector_table(NS.namespace_id, URI), columns=["id"])
    return set(table.column("id").to_pylist())


def test_distinct_values_count_each_value_inside_the_collection(documents: Documents) -> None:
    topics = documents.distinct(NS, "col_ops", "metadata.topic")
    assert topics["values"] == [
        {"value": "food", "count": 3},
        {"value": "sport", "count": 2},
        {"value": "space", "count": 1},
    ]  # the other namespace's "sport" is not counted
    assert topics["total_distinct"] == 3
    top = documents.distinct(NS, "col_ops", "metadata.topic", limit=1)
    assert top["values"] == [{"value": "food", "count": 3}] and top["total_distinct"] == 3
    tags = documents.distinct(NS, "col_ops", "metadata.tags")  # a list counts each element
    assert {v["value"]: v["count"] for v in tags["values"]} == {"a": 6, "t0": 3, "t1": 3}
    filtered = documents.distinct(
        NS, "col_ops", "metadata.topic", match=store_query({"metadata.length": [0, 50]})
    )
    assert filtered["values"] == [{"value": "space", "count": 1}, {"value": "sport", "count": 1}]
    with pytest.raises(MixpeekError, match="not a document field") as refused:
        documents.distinct(NS, "col_ops", "$where")
    assert refused.value.fields["field"] == "field"


def test_aggregations_group_filter_sort_and_bucket(documents: Documents) -> None:
    answer = documents.aggregate(
        NS,
        "col_ops",
        {
            "group_by": [{"field": "metadata.topic", "alias": "topic"}],
            "aggregations": [
                {"function": "count", "alias": "n"},
                {"function": "sum", "field": "metadata.length", "alias": "total"},
                {"function": "avg", "field": "metadata.length", "alias": "mean"},
                {"function": "max", "field": "metadata.length", "alias": "longest"},
                {"function": "count_distinct", "field": "metadata.tags", "alias": "kinds"},
            ],
            "having": [{"field": "n", "operator": "gte", "value": 2}],
            "sort_by": "total",
            "sort_direction": "asc",
        },
    )
    assert answer["total_groups"] == 2
    assert answer["results"] == [
        {"group": {"topic": "sport"},
         "metrics": {"n": 2, "total": 10, "mean": 5.0, "longest": 10, "kinds": 2}},
        {"group": {"topic": "food"},
         "metrics": {"n": 3, "total": 90, "mean": 30.0, "longest": 40, "kinds": 2}},
    ]  # fmt: skip

    counted = documents.aggregate(
        NS, "col_ops", {"aggregations": [{"function": "count", "alias": "n"}]},
        store_query({"AND": [{"field": "metadata.topic", "operator": "ne", "value": "food"}]}),
    )  # fmt: skip
    assert counted["results"] == [{"group": {}, "metrics": {"n": 3}}]

    histogram = documents.aggregate(
        NS,
        "col_ops",
        {
            "range_buckets": [{"field": "metadata.length", "boundaries": [0, 20, 40]}],
            "aggregations": [{"function": "count", "alias": "n"}],
            "sort_by": "metadata_length",
            "sort_direction": "asc",
        },
    )
    assert {r["group"]["metadata_length"]: r["metrics"]["n"] for r in histogram["results"]} == {
        "<0": 1, "0-20": 2, "20-40": 2, ">40": 1,
    }  # fmt: skip

    monthly = documents.aggregate(
        NS,
        "col_ops",
        {
            "group_by": [{"field": "metadata.day", "alias": "month", "date_part": "month"}],
            "aggregations": [{"function": "count", "alias": "n"}],
            "sort_by": "month",
            "sort_direction": "asc",
        },
    )
    assert [(r["group"]["month"], r["metrics"]["n"]) for r in monthly["results"]] == [
        (1, 3),
        (2, 3),
    ]

    for bad, named in [
        ({"aggregations": []}, "aggregations"),
        ({"aggregations": [{"function": "median", "field": "x", "alias": "m"}]}, "aggregations"),
        ({"aggregations": [{"function": "sum", "field": "$x", "alias": "m"}]}, "aggregations"),
        ({"aggregations": [{"function": "count", "alias": "n"}], "sort_by": "nope"}, "sort_by"),
        ({"aggregations": [{"function": "count", "alias": "n"}],
          "having": [{"field": "n", "operator": "regex", "value": 1}]}, "having"),
        ({"aggregations": [{"function": "count", "alias": "n"}],
          "range_buckets": [{"field": "metadata.length", "boundaries": [5, 1]}]}, "range_buckets"),
    ]:  # fmt: skip
        with pytest.raises(MixpeekError) as refused:
            documents.aggregate(NS, "col_ops", bad)
        assert refused.value.fields["field"] == named, bad
    with pytest.raises(MixpeekError, match="cannot be aggregated so"):  # the store's own refusal
        documents.aggregate(
            NS, "col_ops",
            {"group_by": [{"field": "metadata.topic", "alias": "m", "date_part": "month"}],
             "aggregations": [{"function": "count", "alias": "n"}]},
        )  # fmt: skip


def test_batch_delete_takes_the_vectors_and_names_what_it_could_not_find(
    documents: Documents,
) -> None:
    results = documents.delete_many(NS, COLLECTION, doc_ids=["doc_0", "doc_1", "doc_none"])
    assert results == [
        {"document_id": "doc_0", "success": True},
        {"document_id": "doc_1", "success": True},
        {"document_id": "doc_none", "success": False, "error": "document 'doc_none' not found"},
    ]
    assert vector_ids(documents) == {"doc_2", "doc_3", "doc_4", "doc_5"}
    by_filter = documents.delete_many(NS, COLLECTION, match=store_query({"metadata.topic": "food"}))
    assert sorted(r["document_id"] for r in by_filter) == ["doc_2", "doc_3", "doc_4"]
    assert vector_ids(documents) == {"doc_5"}
    assert [d["document_id"] for d in documents.documents.find({}, {"document_id": 1})] == [
        "doc_5", "doc_else",
    ]  # fmt: skip
    # another namespace's id is not found from this one
    assert documents.delete_many(NS, COLLECTION, doc_ids=["doc_else"])[0]["success"] is False


def test_batch_updates_fail_one_document_at_a_time_and_bulk_updates_merge(
    documents: Documents,
) -> None:
    results = documents.update_each(
        NS,
        "col_ops",
        [("doc_0", {"reviewed": True}), ("doc_none", {"x": 1}), ("doc_1", {"status": "done"}),
         ("doc_2", {"metadata": {"topic": "cooking"}})],
    )  # fmt: skip
    assert [(r["document_id"], r["success"]) for r in results] == [
        ("doc_0", True), ("doc_none", False), ("doc_1", False), ("doc_2", True),
    ]  # fmt: skip
    assert "written by the platform" in results[2]["error"]
    assert documents.get(NS, "col_ops", "doc_0")["metadata"]["reviewed"] is True
    assert documents.get(NS, "col_ops", "doc_0")["metadata"]["topic"] == "sport"  # merged
    assert documents.get(NS, "col_ops", "doc_1")["status"] == "completed"
    assert documents.get(NS, "col_ops", "doc_2")["metadata"]["topic"] == "cooking"

    changed = documents.update_matching(
        NS, "col_ops", store_query({"metadata.topic": "food"}), {"shelf": "kitchen"}
    )
    assert changed == 2
    shelves = documents.distinct(NS, "col_ops", "metadata.shelf")
    assert shelves["values"] == [{"value": "kitchen", "count": 2}]
    assert documents.find(OTHER, "doc_else")["metadata"].get("shelf") is None
    dollar = documents.update_each(NS, "col_ops", [("doc_3", {"$set": {"status": "failed"}})])
    assert dollar[0]["success"] is False and "start with $" in dollar[0]["error"]
    for bad in ({"status": "x"}, {"a.b": 1}, {"$set": 1}, {}):
        with pytest.raises(MixpeekError):
            documents.update_matching(NS, "col_ops", {}, bad)


def test_diagnostics_say_why_a_document_is_or_is_not_searchable(documents: Documents) -> None:
    ok = documents.diagnostics(NS, COLLECTION, "doc_0")
    assert ok["visibility_reason"]["searchable"] is True and ok["missing_vectors"] == []
    documents.vectors.delete(vector_table(NS.namespace_id, URI), {"id": ["doc_1"]})
    lost = documents.diagnostics(NS, COLLECTION, "doc_1")
    assert lost["visibility_reason"]["searchable"] is False and lost["missing_vectors"] == [URI]
    assert "reprocess" in lost["visibility_reason"]["reason"]
    documents.documents.update_one(
        {"document_id": "doc_2"},
        {"$set": {"status": "failed", "errors": [{"message": "boom", "code": "x"}]}},
    )
    failed = documents.diagnostics(NS, COLLECTION, "doc_2")
    assert failed["visibility_reason"]["reason"] == "its status is failed: boom"
    assert failed["recent_failures"]["failures"][0]["error"] == "boom"
    with pytest.raises(MixpeekError, match="not found"):
        documents.diagnostics(NS, COLLECTION, "doc_else")


def test_a_document_brought_in_whole_is_written_with_its_vectors_or_not_at_all(
    documents: Documents,
) -> None:
    collection = COLLECTION | {
        "feature_extractor": {"plugin_id": "ops_1_0_0", "feature_extractor_name": "ops",
                              "version": "1.0.0"},
    }  # fmt: skip
    made = documents.create(
        NS, collection, metadata={"topic": "geology"}, vectors={URI: [0.5, 0.5]}
    )
    assert made["status"] == "completed" and made["feature_refs"] == [URI]
    assert made["document_id"] in vector_ids(documents)
    assert documents.list(NS, "col_ops")["results"][-1]["document_id"] == made["document_id"]
    by_name = documents.create(NS, collection, metadata={}, vectors={"ops_embedding": [1, 0]})
    assert by_name["document_id"] in vector_ids(documents)
    bare = documents.create(NS, collection, metadata={"note": "no vector"}, vectors={})
    assert bare["feature_refs"] == [] and bare["document_id"] not in vector_ids(documents)
    before = documents.documents.count_documents({})
    for vectors, why in [
        ({URI: [1.0]}, "must be 2 finite numbers"),
        ({URI: [1.0, float("nan")]}, "must be 2 finite numbers"),
        ({"other": [1.0, 2.0]}, "not an embedding feature"),
    ]:
        with pytest.raises(MixpeekError, match=why):
            documents.create(NS, collection, metadata={}, vectors=vectors)
    with pytest.raises(MixpeekError, match="start with"):
        documents.create(NS, collection, metadata={"$where": 1}, vectors={})
    assert documents.documents.count_documents({}) == before
    assert len(vector_ids(documents)) == len(TOPICS) + 2
