from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.storage.vectors import VectorStore, where_clause


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    return VectorStore(tmp_path / "vectors")


def test_upsert_replaces_rows_with_the_same_id(store: VectorStore) -> None:
    rows = [
        {"id": "a", "vector": [1.0, 0.0, 0.0], "collection": "c1"},
        {"id": "b", "vector": [0.0, 1.0, 0.0], "collection": "c1"},
        {"id": "c", "vector": [0.0, 0.0, 1.0], "collection": "c2"},
    ]
    assert store.upsert("ns__feat", rows) == 3
    store.upsert("ns__feat", [{"id": "a", "vector": [0.0, 0.9, 0.1], "collection": "c1"}])
    assert store.count("ns__feat") == 3
    hits = store.search("ns__feat", [0.0, 1.0, 0.0], k=2)
    assert [h["id"] for h in hits] == ["b", "a"]
    assert hits[0]["_distance"] == pytest.approx(0.0, abs=1e-6)


def test_two_writers_creating_one_table_both_land(
    store: VectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches of a new collection write at once: the one that finds the table created
    by the other since it looked merges into it instead of failing."""
    store.upsert("ns__feat", [{"id": "a", "vector": [1.0, 0.0, 0.0], "collection": "c1"}])
    monkeypatch.setattr(store, "has_table", lambda _table: False)  # looked before it existed
    assert store.upsert("ns__feat", [{"id": "b", "vector": [0.0, 1.0, 0.0], "collection": "c1"}])
    monkeypatch.undo()
    assert store.count("ns__feat") == 2


def test_search_with_prefilter_and_delete(store: VectorStore) -> None:
    store.upsert(
        "t", [{"id": str(i), "vector": [float(i), 1.0], "group": i % 2} for i in range(10)]
    )
    hits = store.search("t", [1.0, 1.0], k=10, filters={"group": 1})
    assert {h["group"] for h in hits} == {1} and len(hits) == 5
    assert store.count("t", filters={"id": ["1", "2", "3"]}) == 3
    store.delete("t", {"group": 1})
    assert store.count("t") == 5
    with pytest.raises(MixpeekError, match="needs filters"):
        store.delete("t", {})
    store.drop("t")
    assert not store.has_table("t")
    assert store.count("t") == 0


def test_rows_without_key_and_bad_table_names_are_refused(store: VectorStore) -> None:
    with pytest.raises(MixpeekError, match="key column"):
        store.upsert("t", [{"vector": [1.0]}])
    for name in ["../escape", "a/b", "", "-x"]:
        with pytest.raises(MixpeekError):
            store.has_table(name)


def test_health(store: VectorStore) -> None:
    assert store.health().status == "ok"


def test_a_large_table_gets_an_ann_index_that_still_finds_the_nearest(store: VectorStore) -> None:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(20_000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = pa.table(
        {
            "id": [f"d{i}" for i in range(len(vectors))],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 16),
            "collection_id": ["c1" if i % 2 else "c2" for i in range(len(vectors))],
        }
    )
    store.upsert("big", table.slice(0, 19_999))
    assert not store.ensure_index("big")  # below the threshold: exact search, no index
    store.upsert("big", table.slice(19_999))
    assert store.ensure_index("big") and store.has_index("big")
    assert not store.ensure_index("big")  # built once
    indexed = {tuple(i.columns) for i in store.db.open_table("big").list_indices()}
    assert indexed == {("vector",), ("collection_id",)}
    found = 0
    for row in rng.choice(len(vectors), 20, replace=False):
        query = vectors[row] + rng.normal(0, 0.01, 16).astype(np.float32)
        hits = store.search("big", query, k=5, filters={"collection_id": "c1"}, columns=["id"])
        assert set(hits[0]) == {"id", "_distance"}
        assert all(int(h["id"][1:]) % 2 for h in hits)  # the prefilter held
        found += hits[0]["id"] == f"d{row}" if row % 2 else 1
    assert found >= 18


def test_filter_values_are_escaped_by_one_rule(store: VectorStore) -> None:
    """Quotes in a value never end the literal; a column name is an identifier or refused."""
    store.upsert(
        "t",
        [
            {"id": "o'brien", "vector": [1.0, 0.0], "object_id": "x"},
            {"id": "plain", "vector": [0.0, 1.0], "object_id": "y' OR '1'='1"},
        ],
    )
    assert [r["id"] for r in store.search("t", [1.0, 0.0], filters={"id": ["o'brien"]})] == [
        "o'brien"
    ]
    assert store.count("t", filters={"object_id": ["x' OR '1'='1"]}) == 0
    assert store.count("t", filters={"object_id": "y' OR '1'='1"}) == 1
    assert store.count("t", filters={"id": []}) == 0  # an empty list matches nothing
    assert where_clause({"id": ["a'b"], "n": 3}) == "`id` IN ('a''b') AND `n` = 3"
    with pytest.raises(MixpeekError, match="vector column"):
        where_clause({"id) OR (1": 1})
    assert store.rows("t", filters={"object_id": ["x"]}, columns=["id"]).to_pylist() == [
        {"id": "o'brien"}
    ]
