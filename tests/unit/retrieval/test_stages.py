"""Retriever rules that need no server: stage checks, templates, filters, fusion, the cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.retrieval.cache import MemoryQueryCache, query_cache
from mixpeek_orchestration.retrieval.execute import (
    check_condition,
    fill_templates,
    fuse,
    matches,
    mongo_condition,
    similarity,
)
from mixpeek_orchestration.retrieval.retrievers import check_stages
from mixpeek_orchestration.settings import load_settings

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


def test_the_in_process_query_cache_is_a_bounded_lru() -> None:
    async def scenario() -> None:
        cache = MemoryQueryCache(size=2)
        await cache.put(("a",), [1.0])
        await cache.put(("b",), [2.0])
        assert await cache.get(("a",)) == [1.0]
        await cache.put(("c",), [3.0])
        assert await cache.get(("b",)) is None and await cache.get(("a",)) == [1.0]

    asyncio.run(scenario())


def test_a_redis_url_selects_the_shared_cache_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    assert query_cache(load_settings(data_dir=tmp_path)).backend == "memory"
    shared = query_cache(load_settings(data_dir=tmp_path, redis_url="redis://cache:6379/2"))
    assert shared.backend == "redis"
    with pytest.raises(MixpeekError, match="redis_url"):
        load_settings(data_dir=tmp_path, redis_url="http://cache:6379")


def test_filters_pushed_to_the_metadata_store_never_drop_a_match() -> None:
    assert mongo_condition({"field": "metadata.topic", "value": "food"}) == {
        "metadata.topic": "food"
    }
    both = {
        "AND": [
            {"field": "metadata.year", "operator": "gte", "value": 2020},
            {"field": "metadata.tag", "operator": "contains", "value": "x"},  # not pushed
            {"field": "score", "operator": "gt", "value": 0.5},  # computed, not stored
        ]
    }
    assert mongo_condition(both) == {"$and": [{"metadata.year": {"$gte": 2020}}]}
    either = {"OR": [{"field": "a", "value": 1}, {"field": "b", "operator": "ne", "value": 2}]}
    assert mongo_condition(either) == {}  # one branch cannot be pushed: the OR cannot
    assert mongo_condition({"field": "a", "operator": "in", "value": [1, 2]}) == {
        "a": {"$in": [1, 2]}
    }
    assert mongo_condition({"field": "a", "operator": "exists", "value": True}) == {
        "a": {"$ne": None}
    }
    assert mongo_condition({"field": "a", "operator": "exists", "value": False}) == {}


def test_a_malformed_filter_is_refused_before_it_meets_any_candidate() -> None:
    check_condition(
        {
            "AND": [
                {"field": "a", "value": 1},
                {"OR": [{"field": "b", "operator": "in", "value": [1]}]},
            ]
        }
    )
    for bad, named in [
        ({"AND": [{"field": "a", "value": 1}, {"field": "b", "operator": "like"}]}, "'like'"),
        ({"OR": [{"operator": "eq", "value": 1}]}, "'field'"),
        ({"AND": {"field": "a"}}, "AND takes a list"),
        ({"OR": ["a = 1"]}, "must be an object"),
    ]:
        with pytest.raises(MixpeekError, match=named) as caught:
            check_condition(bad)
        assert caught.value.http_status == 422
