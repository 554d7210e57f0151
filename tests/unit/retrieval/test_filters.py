"""Retriever inputs and filters: templates, every operator, push-down, up-front checks."""

from __future__ import annotations

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.retrieval.filters import (
    check_condition,
    fill_templates,
    matches,
    mongo_condition,
    store_query,
)


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


def test_a_hosted_filter_becomes_an_exact_store_query() -> None:
    from mixpeek_orchestration.retrieval.filters import mongo_query

    assert mongo_query({"AND": [{"field": "metadata.topic", "operator": "eq", "value": "x"}]}) == {
        "$and": [{"metadata.topic": "x"}]
    }
    assert mongo_query({"field": "n", "operator": "nin", "value": [1]}) == {"n": {"$nin": [1]}}
    assert mongo_query({"field": "n", "operator": "ne", "value": 1}) == {"n": {"$ne": 1}}
    assert mongo_query({"field": "n", "operator": "exists", "value": False}) == {"n": None}
    assert mongo_query({"OR": []}) == {"_id": {"$exists": False}}  # OR of nothing: nothing
    contains = mongo_query({"field": "t", "operator": "contains", "value": "a.b"})
    assert contains == {"$or": [{"t": "a.b"}, {"t": {"$regex": r"a\.b"}}]}
    for bad, named in (
        ({"field": "n", "operator": "like", "value": 1}, "like"),
        ({"field": "n", "operator": "in", "value": 1}, "takes a list"),
        ({"field": "score", "operator": "gt", "value": 1}, "score"),
        ({"AND": {"field": "n"}}, "AND"),
    ):
        with pytest.raises(MixpeekError, match=named):
            mongo_query(bad)


def test_a_bodys_filters_become_one_store_query() -> None:
    """The hosted form, or plain equalities; the client's always-sent ``case_sensitive`` is
    the logical operator's option, never a field."""
    hosted = {"AND": [{"field": "metadata.topic", "operator": "eq", "value": "x"}],
              "case_sensitive": False}  # fmt: skip
    assert store_query(hosted) == {"$and": [{"metadata.topic": "x"}]}
    assert store_query({"metadata.topic": ["a", "b"], "status": "completed"}) == {
        "metadata.topic": {"$in": ["a", "b"]}, "status": "completed",
    }  # fmt: skip
    assert store_query({"case_sensitive": False}) == {} and store_query(None) == {}
    for bad in ({"$where": "1"}, {"metadata.topic": {"$ne": 1}}, {"a..b": 1}):
        with pytest.raises(MixpeekError):
            store_query(bad)
