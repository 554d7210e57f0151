"""The stage registry: stages checked (and named) when saved, fusion, scores."""

from __future__ import annotations

import asyncio

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.retrieval.execute import similarity
from mixpeek_orchestration.retrieval.retrievers import check_stages
from mixpeek_orchestration.retrieval.stages import (
    STAGES,
    StageParameters,
    fuse,
    parse_parameters,
)

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


def test_every_stage_is_validated_and_run_from_one_registry() -> None:
    """The stage ids a retriever may name are exactly the registry's, and each validates its
    parameters with the model it runs with."""
    assert sorted(STAGES) == [
        "attribute_filter", "classify", "deduplicate", "feature_search", "limit", "rerank",
        "sort_attribute",
    ]  # fmt: skip
    for stage_id, spec in STAGES.items():
        assert issubclass(spec.parameters, StageParameters), stage_id
        assert asyncio.iscoroutinefunction(spec.run), stage_id


@pytest.mark.parametrize(
    ("stage_id", "parameters", "named"),
    [
        ("limit", {"limit": -1}, "stages[0].config.parameters.limit"),
        ("limit", {"limit": 2, "page": 3}, "'page'"),
        ("limit", {"limit": "ten"}, "stages[0].config.parameters.limit"),
        ("sort_attribute", {"sort_direction": "up"}, "sort_direction"),
        ("feature_search", {"searches": [{"feature_uri": URI, "query": "x", "k": 3}]}, "'k'"),
        (
            "feature_search",
            {"searches": [{"feature_uri": URI, "query": "x"}], "fusion": "borda"},
            "fusion",
        ),
        ("attribute_filter", {"field": "a", "operator": "like", "value": 1}, "'like'"),
        ("attribute_filter", {"filters": {"AND": {"field": "a"}}}, "AND takes a list"),
        ("rerank", {"query": "q"}, "inference_name"),
    ],
)
def test_bad_stage_parameters_are_refused_naming_the_field(
    stage_id: str, parameters: dict[str, object], named: str
) -> None:
    with pytest.raises(MixpeekError) as caught:
        check_stages([{"config": {"stage_id": stage_id, "parameters": parameters}}], {URI})
    assert caught.value.http_status == 422
    assert named in caught.value.detail


def test_templates_stand_in_for_numbers_until_they_are_filled() -> None:
    """``{{INPUT.k}}`` passes where a number goes when the retriever is saved; at execution the
    filled value is checked by the same model."""
    check_stages([{"config": {"stage_id": "limit", "parameters": {"limit": "{{INPUT.k}}"}}}], set())
    assert parse_parameters("limit", {"limit": 3}, where="stages[0]").limit == 3  # type: ignore[attr-defined]
    with pytest.raises(MixpeekError, match="limit"):
        parse_parameters("limit", {"limit": "three"}, where="stages[0]")
