"""What the hosted API's clients send and expect: hosted fields accepted, unknown keys refused,
list parameters from the query or the body, and the list envelope."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mixpeek_orchestration.api.hosted import HostedRequest, ListParams, envelope, listing
from mixpeek_orchestration.api.schemas import NamespaceCreate
from mixpeek_orchestration.errors import MixpeekError


class Thing(HostedRequest):
    hosted_fields = frozenset({"mode"})
    name: str


def test_hosted_fields_are_dropped_and_unknown_keys_still_refused_by_name() -> None:
    assert Thing.model_validate({"name": "a", "mode": "managed"}).model_dump() == {"name": "a"}
    with pytest.raises(ValidationError, match="colour"):
        Thing.model_validate({"name": "a", "colour": "red"})


def test_every_default_the_official_client_sends_is_accepted() -> None:
    """The generated request models always send their defaults: each must pass."""
    models = pytest.importorskip("mixpeek.models")
    sent = models.CreateNamespaceRequest(namespace_name="main").to_dict()
    assert sent.get("mode") == "managed"  # what made the create fail before
    assert NamespaceCreate.model_validate(sent).namespace_name == "main"


def rows(n: int) -> list[dict[str, Any]]:
    return [{"i": i} for i in range(n)]


def test_a_list_held_whole_pages_by_offset_and_by_cursor() -> None:
    first = listing(rows(5), ListParams(limit=2))
    assert [r["i"] for r in first["results"]] == [0, 1]
    assert first["total_count"] == first["total"] == 5
    assert first["pagination"] | {"next_cursor": None} == {
        "limit": 2, "page_size": 2, "page": 1, "next_cursor": None, "has_more": True,
        "total": 5, "total_pages": 3,
    }  # fmt: skip
    second = listing(
        rows(5), ListParams(limit=2).merged({"cursor": first["pagination"]["next_cursor"]})
    )
    assert [r["i"] for r in second["results"]] == [2, 3]
    last = listing(rows(5), ListParams(limit=2).merged({"page": 3}))
    assert [r["i"] for r in last["results"]] == [4] and last["pagination"]["next_cursor"] is None
    assert listing(rows(5), ListParams().merged({"offset": 3, "page_size": 1}))["results"] == [
        {"i": 3}
    ]


def test_bad_list_parameters_are_refused_naming_them() -> None:
    with pytest.raises(MixpeekError, match="limit"):
        ListParams().merged({"limit": 0})
    with pytest.raises(MixpeekError, match="offset"):
        ListParams().merged({"offset": -1})
    with pytest.raises(MixpeekError, match="cursor"):
        listing(rows(3), ListParams(cursor="not-ours"))


def test_the_envelope_parses_in_the_official_clients_list_models() -> None:
    models = pytest.importorskip("mixpeek.models")
    page = envelope([{"bucket_name": "b", "object_count": 1, "total_size_bytes": 2}], total=1,
                    limit=10, next_cursor=None)  # fmt: skip
    parsed = models.ListBucketsResponse.from_dict(page)
    assert parsed.total_count == 1 and parsed.pagination.total == 1
