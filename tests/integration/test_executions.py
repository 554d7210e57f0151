"""The retriever execution history against the real metadata server: recorded per namespace
and retriever, listed newest first (or as sorted), kept a bounded time, removed with its
retriever's namespace."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.retrieval.executions import ADHOC, RETENTION_S, Executions
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.tenancy.accounts import Namespace
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration

NS = Namespace("ns_hist", "hist", "org_hist", "", datetime.now(UTC))
OTHER = Namespace("ns_hist2", "hist2", "org_hist", "", datetime.now(UTC))


def answer(execution_id: str, retriever_id: str | None, returned: int, ms: float) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "retriever_id": retriever_id,
        "status": "completed",
        "documents": [{"document_id": f"doc_{i}", "score": 1 - i / 10} for i in range(returned)],
        "stage_statistics": {
            "stages": {
                "search": {
                    "input_count": 0,
                    "output_count": returned,
                    "duration_ms": ms,
                    "efficiency": 1.0,
                    "cache_hits": 1,
                    "cache_misses": 1,
                },
            },
            "total_time_ms": ms,
        },
        "total_duration_ms": ms,
    }


@pytest.fixture()
def history(stack: RunningStack, request: pytest.FixtureRequest) -> Any:
    metadata = MetadataStore(stack.settings.mongo_uri or "", f"hist_{request.node.name[:40]}")
    metadata.client.drop_database(metadata.db.name)
    executions = Executions(metadata)
    executions.ensure_indexes()
    yield executions
    metadata.client.drop_database(metadata.db.name)


def test_executions_are_recorded_listed_and_kept_apart(history: Executions) -> None:
    history.record(NS, answer("exe_1", "ret_a", 3, 12.5), {"q": "  football goals  "}, ["col_a"])
    time.sleep(0.1)  # exe_2 starts after exe_1 (an execution is dated by its start)
    history.record(NS, answer("exe_2", "ret_a", 1, 40.0), {"q": "x" * 500}, ["col_a"])
    history.record(NS, answer("exe_3", None, 2, 5.0), {"q": "bread"}, ["col_a"])
    history.record(OTHER, answer("exe_4", "ret_a", 2, 5.0), {"q": "football"}, ["col_a"])

    items, total = history.list(NS, "ret_a", limit=10, offset=0)
    assert total == 2 and [e["execution_id"] for e in items] == ["exe_2", "exe_1"]  # newest first
    assert "results" not in items[0] and "stage_statistics" not in items[0]
    assert len(items[0]["query_summary"]) == 200 and items[1]["query_summary"] == "football goals"
    slowest, _ = history.list(NS, "ret_a", limit=10, offset=0, sort=[("duration_ms", 1)])
    assert [e["execution_id"] for e in slowest] == ["exe_1", "exe_2"]
    page, total = history.list(NS, "ret_a", limit=1, offset=1)
    assert [e["execution_id"] for e in page] == ["exe_1"] and total == 2
    big, _ = history.list(NS, "ret_a", limit=10, offset=0, match={"total_returned": {"$gte": 2}})
    assert [e["execution_id"] for e in big] == ["exe_1"]

    detail = history.get(NS, "ret_a", "exe_1")
    assert detail["results"][0] == {"document_id": "doc_0", "score": 1.0}
    assert detail["cache_hit_rate"] == 0.5 and detail["total_returned"] == 3
    assert history.get(NS, ADHOC, "exe_3")["retriever_id"] == ADHOC
    for namespace, retriever, execution in [(NS, ADHOC, "exe_1"), (OTHER, "ret_a", "exe_1")]:
        with pytest.raises(MixpeekError, match="not found"):
            history.get(namespace, retriever, execution)
    assert history.recent_queries(NS, {"$regex": "^foot", "$options": "i"}, limit=5) == [
        "football goals"
    ]

    ttl = [i for i in history.executions.list_indexes() if i.get("expireAfterSeconds")]
    assert [(i["key"], i["expireAfterSeconds"]) for i in ttl] == [({"created_at": 1}, RETENTION_S)]

    assert history.delete_of(NS, "ret_a") == 2 and history.delete_namespace(NS) == 1
    assert history.list(OTHER, "ret_a", limit=10, offset=0)[1] == 1
