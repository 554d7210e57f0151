"""Retriever rules that need no server: stage checks, templates, filters, fusion, the cache."""

from __future__ import annotations

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.retrieval.execute import (
    EmbeddingCache,
    fill_templates,
    fuse,
    matches,
    similarity,
)
from mixpeek_orchestration.retrieval.retrievers import check_stages

URI = "mixpeek://my_extractor@1.0.0/my_extractor_embedding"


def search(uri: str = URI) -> dict[str, object]:
    return {
        "config": {
            "stage_id": "feature_search",
            "parameters": {"searches": [{"feature_uri": uri, "query": "x"}]},
        }
    }


def test_stages_are_checked_and_named() -> None:
    stages = check_stages(
        [search(), {"config": {"stage_id": "limit", "parameters": {"limit": 2}}}], {URI}
    )
    assert [s["stage_name"] for s in stages] == ["feature_search_0", "limit_1"]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "non-empty"),
        ([{"config": {"stage_id": "teleport"}}], "teleport"),
        ([search("mixpeek://nope@1.0.0/x")], "mixpeek://nope@1.0.0/x"),
        ([{"config": {"stage_id": "feature_search", "parameters": {}}}], "searches"),
        ([{"stage_name": "s"}], "config"),
    ],
)
def test_bad_stages_are_refused_naming_the_problem(stages: list[object], message: str) -> None:
    with pytest.raises(MixpeekError, match=message):
        check_stages(stages, {URI})


def test_templates_fill_whole_values_and_substrings() -> None:
    inputs = {"q": "cats", "n": 3, "user": {"id": "u1"}}
    filled = fill_templates(
        {
            "value": "{{INPUT.q}}",
            "top_k": "{{ INPUT.n }}",
            "t": "about {{INPUT.q}} for {{INPUT.user.id}}",
        },
        inputs,
    )
    assert filled == {"value": "cats", "top_k": 3, "t": "about cats for u1"}
    with pytest.raises(MixpeekError, match=r"INPUT\.missing"):
        fill_templates(["{{INPUT.missing}}"], inputs)


def test_filters_cover_every_operator_and_nesting() -> None:
    doc = {"metadata": {"topic": "pets", "n": 5, "tags": ["a", "b"]}}
    assert matches(doc, {"field": "metadata.topic", "operator": "eq", "value": "pets"})
    assert matches(doc, {"field": "metadata.n", "operator": "gte", "value": 5})
    assert not matches(doc, {"field": "metadata.n", "operator": "lt", "value": 5})
    assert matches(doc, {"field": "metadata.topic", "operator": "in", "value": ["pets", "food"]})
    assert matches(doc, {"field": "metadata.tags", "operator": "contains", "value": "b"})
    assert matches(doc, {"field": "metadata.missing", "operator": "exists", "value": False})
    assert not matches(doc, {"field": "metadata.missing", "operator": "gt", "value": 1})
    assert matches(
        doc,
        {
            "OR": [
                {"field": "metadata.n", "value": 1},
                {"AND": [{"field": "metadata.topic", "value": "pets"}]},
            ]
        },
    )
    with pytest.raises(MixpeekError, match="regex"):
        matches(doc, {"field": "metadata.n", "operator": "regex", "value": 1})


def test_fusion_methods() -> None:
    a = [("d1", 0.9), ("d2", 0.5)]
    b = [("d2", 0.8), ("d3", 0.7)]
    rrf = fuse([a, b], "rrf", [1.0, 1.0])
    assert max(rrf, key=rrf.__getitem__) == "d2"  # in both lists
    assert fuse([a, b], "max", [1.0, 1.0]) == {"d1": 0.9, "d2": 0.8, "d3": 0.7}
    weighted = fuse([a, b], "weighted", [2.0, 1.0])
    assert weighted["d1"] == pytest.approx(1.8) and weighted["d2"] == pytest.approx(1.8)
    with pytest.raises(MixpeekError, match="fusion"):
        fuse([a], "borda", [1.0])


def test_similarity_is_higher_for_closer_vectors() -> None:
    for metric in ("cosine", "l2", "dot"):
        assert similarity(0.1, metric) > similarity(0.5, metric)


def test_the_embedding_cache_is_a_bounded_lru() -> None:
    cache = EmbeddingCache(size=2)
    cache.put(("a",), [1.0])
    cache.put(("b",), [2.0])
    assert cache.get(("a",)) == [1.0]
    cache.put(("c",), [3.0])
    assert cache.get(("b",)) is None and cache.get(("a",)) == [1.0]
