"""The ingestion planner against the real metadata server, in a database of its own (the stack's
sensor never sees it): sequence gaps, a tick that died half-way, triggers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mixpeek_orchestration.ingest.buckets import Buckets
from mixpeek_orchestration.ingest.collections import Collections
from mixpeek_orchestration.ingest.documents import Documents
from mixpeek_orchestration.ingest.planner import IngestPlanner
from mixpeek_orchestration.plugins.registry import PluginRegistry
from mixpeek_orchestration.storage.ids import now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.tenancy.accounts import Namespace
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.integration


@pytest.fixture()
def planner(stack: RunningStack, request: pytest.FixtureRequest) -> Any:
    platform = stack.platform()
    metadata = MetadataStore(stack.settings.mongo_uri or "", f"planner_{request.node.name[:40]}")
    metadata.client.drop_database(metadata.db.name)
    buckets = Buckets(metadata, platform.objects)
    collections = Collections(
        metadata,
        buckets,
        PluginRegistry(metadata, platform.objects),
        Documents(metadata, platform.vectors),
    )
    planner = IngestPlanner(metadata, buckets, collections, batch_objects=3)
    for part in (buckets, collections, planner):
        part.ensure_indexes()
    scope = {"org_id": "org_t", "namespace_id": "ns_t"}
    buckets.buckets.insert_one(
        {
            **scope,
            "bucket_id": "bkt_t",
            "bucket_name": "t",
            "bucket_schema": {"properties": {"content": {"type": "text"}}},
        }
    )
    collections.collections.insert_one(
        {
            **scope,
            "collection_id": "col_t",
            "collection_name": "t",
            "source": {"type": "bucket", "bucket_ids": ["bkt_t"]},
        }
    )
    yield planner
    metadata.client.drop_database(metadata.db.name)


def add_object(planner: IngestPlanner, seq: int, *, age_s: float = 0) -> None:
    planner.buckets.objects.insert_one(
        {"org_id": "org_t", "namespace_id": "ns_t", "object_id": f"obj_{seq}", "bucket_id": "bkt_t",
         "blobs": [], "seq": seq, "created_at": now() - timedelta(seconds=age_s)}
    )  # fmt: skip


def planned(planner: IngestPlanner) -> list[list[str]]:
    return [
        b["object_ids"] for b in planner.batches.find({}, {"object_ids": 1}).sort("first_seq", 1)
    ]


def test_objects_are_planned_in_order_in_batches_and_a_fresh_gap_waits(
    planner: IngestPlanner,
) -> None:
    for seq in (1, 2, 3, 4, 6):  # 5 is still being inserted
        add_object(planner, seq)
    tick = planner.tick()
    assert tick.cursor == 4 and tick.objects_planned == 4
    assert planned(planner) == [["obj_1", "obj_2", "obj_3"], ["obj_4"]]
    assert planner.tick().objects_planned == 0  # 6 waits behind the gap
    add_object(planner, 5)
    assert planner.tick().cursor == 6
    # obj_4's batch was still waiting for its run: 5 and 6 joined it
    assert planned(planner)[-1] == ["obj_4", "obj_5", "obj_6"]
    assert sum(len(b) for b in planned(planner)) == 6  # each object once


def test_objects_join_the_batch_waiting_for_its_run_until_it_starts_or_is_full(
    planner: IngestPlanner,
) -> None:
    add_object(planner, 1)
    planner.tick()  # one upload: a batch of its own, its run requested at once
    add_object(planner, 2)
    planner.tick()  # arrived while that run was being launched: it rides along
    assert planned(planner) == [["obj_1", "obj_2"]]
    batch_id = planner.runnable()[0]["batch_id"]
    started = planner.start(batch_id, "run_1")
    assert started is not None and started["object_ids"] == ["obj_1", "obj_2"]
    for seq in (3, 4, 5, 6):  # the run has started: a new batch, and it fills up to 3
        add_object(planner, seq)
        planner.tick()
    assert planned(planner) == [["obj_1", "obj_2"], ["obj_3", "obj_4", "obj_5"], ["obj_6"]]
    assert planner.get(batch_id)["size"] == 2  # type: ignore[index]


def test_an_old_gap_is_an_insert_that_failed_and_is_skipped(planner: IngestPlanner) -> None:
    add_object(planner, 1)
    add_object(planner, 3, age_s=60)  # 2 took its number and never arrived
    assert planner.tick().cursor == 3
    assert planned(planner) == [["obj_1", "obj_3"]]


def test_a_tick_that_died_before_moving_the_cursor_plans_nothing_twice(
    planner: IngestPlanner,
) -> None:
    for seq in (1, 2, 3, 4):
        add_object(planner, seq)
    planner.tick()
    planner.state.update_one({"_id": "planner"}, {"$set": {"seq": 0}})  # as if the cursor was lost
    add_object(planner, 5)
    planner.tick()
    objects = [o for batch in planned(planner) for o in batch]
    assert sorted(objects) == ["obj_1", "obj_2", "obj_3", "obj_4", "obj_5"]


def test_a_batch_started_ahead_and_lost_with_its_service_is_queued_again(
    planner: IngestPlanner,
) -> None:
    from datetime import timedelta

    add_object(planner, 1)
    planner.tick()
    [batch] = planner.runnable()
    assert planner.start(batch["batch_id"], None, if_planned=True) is not None
    assert planner.start(batch["batch_id"], None, if_planned=True) is None  # started once
    started = planner.get(batch["batch_id"])
    assert started is not None and started["ahead"]
    assert planner.running_ahead() == {"col_t"}
    assert not planner.lost_ahead(started, after=timedelta(minutes=10))  # its service beats
    assert planner.lost_ahead(started, after=timedelta(0))
    planner.batches.update_one(
        {"batch_id": batch["batch_id"]}, {"$set": {"beat_at": now() - timedelta(minutes=2)}}
    )
    planner.beat(batch["batch_id"], None)  # the service still holds it
    assert not planner.lost_ahead(planner.get(batch["batch_id"]), after=timedelta(minutes=1))  # type: ignore[arg-type]
    assert planner.retry(batch["batch_id"])
    assert [b["batch_id"] for b in planner.runnable()] == [batch["batch_id"]]
    assert planner.running_ahead() == set()
    planner.start(batch["batch_id"], "run-2")
    assert not planner.get(batch["batch_id"])["ahead"]  # type: ignore[index]
    assert planner.record(batch["batch_id"], {"completed": 1, "failed": 0}) == "completed"
    assert planner.get(batch["batch_id"])["attempts"] == 2  # type: ignore[index]
    assert planner.unreported() == []  # its run reported it


def test_trigger_plans_everything_again_as_a_new_generation(planner: IngestPlanner) -> None:
    for seq in (1, 2, 3, 4):
        add_object(planner, seq)
    planner.tick()
    collection = planner.collections.by_id("col_t")
    first = planner.trigger(collection)
    second = planner.trigger(collection)
    assert first["objects"] == second["objects"] == 4
    assert first["batches"] != second["batches"]
    assert len(planner.runnable()) == 2 + 2 + 2


def test_a_soft_deleted_object_is_never_planned_or_read_for_processing_again(
    planner: IngestPlanner,
) -> None:
    for seq in (1, 2, 3):
        add_object(planner, seq)
    planner.tick()
    namespace = Namespace("ns_t", "t", "org_t", "", now())
    found = planner.buckets.soft_delete(
        namespace, "bkt_t", ["obj_2", "obj_none"], reason="gdpr", lifecycle_state="disabled",
        source="bulk_purge",
    )  # fmt: skip
    assert found == ["obj_2"]
    again = planner.trigger(planner.collections.by_id("col_t"))
    assert again["objects"] == 2
    # a batch planned before the soft delete reads only the live objects when it runs
    [first] = planned(planner)[:1]
    assert first == ["obj_1", "obj_2", "obj_3"]
    read = [o["object_id"] for o in planner.buckets.objects_by_id(first, seq_range=(1, 3))]
    assert read == ["obj_1", "obj_3"]
    assert [o["object_id"] for o in planner.buckets.objects_by_id(first)] == ["obj_1", "obj_3"]


def test_what_the_dagster_sensor_asks_of_batches_waiting_or_started_ahead(
    planner: IngestPlanner,
) -> None:
    for seq in (1, 2, 3, 4):
        add_object(planner, seq)
    tick = planner.tick()
    assert set(tick.uploads) == {"bkt_t"}  # the bucket that took objects, and when
    assert planner.backlog("col_t")[0] == 2
    assert planner.waiting_since(now() + timedelta(seconds=1)) == {"col_t"}
    assert planner.waiting_since(now() - timedelta(minutes=1)) == set()
    first, second = planner.runnable()
    # processed ahead of any run: its outcome and checks wait for the sensor to report them
    planner.start(first["batch_id"], None, if_planned=True)
    assert planner.unreported() == []  # still running
    checks = [{"check_name": "finite_values", "passed": True}]
    planner.record(first["batch_id"], {"completed": 3, "failed": 0}, checks)
    [done] = planner.unreported()
    assert done["batch_id"] == first["batch_id"] and done["checks"] == checks
    assert done["stats"]["completed"] == 3
    planner.reported([first["batch_id"]])
    assert planner.unreported() == []
    planner.start(second["batch_id"], "run-2")  # a run's own start is never "ahead"
    planner.record(second["batch_id"], {"completed": 1, "failed": 0})
    assert planner.unreported() == [] and planner.running_ahead() == set()
    assert planner.backlog("col_t")[0] == 0
    stats = planner.buckets.object_stats()
    assert stats["bkt_t"][0] == 4
    assert planner.buckets.object_stats(["bkt_other"]) == {}


def test_a_batch_whose_run_was_asked_for_makes_way_for_newer_ones(
    planner: IngestPlanner,
) -> None:
    for seq in (1, 2, 3, 4):
        add_object(planner, seq)
    planner.tick()
    first, second = planner.runnable()
    planner.requested([first["batch_id"]])  # its run waits in Dagster's queue
    assert [b["batch_id"] for b in planner.runnable()] == [second["batch_id"]]
    # a request that long ago may have been lost: asked for again
    planner.batches.update_one(
        {"batch_id": first["batch_id"]}, {"$set": {"requested_at": now() - timedelta(minutes=5)}}
    )
    assert len(planner.runnable()) == 2
    planner.requested([first["batch_id"]])
    planner.start(first["batch_id"], "run-1")
    assert planner.retry(first["batch_id"])  # its run died: queued, and asked for at once
    assert first["batch_id"] in [b["batch_id"] for b in planner.runnable()]
