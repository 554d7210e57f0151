"""Which objects each collection must process next: ingestion batches.

The planner follows the objects' sequence with a cursor kept in the metadata store. Each tick it

1. registers files that landed under a bucket's storage prefix as objects;
2. reads objects past the cursor, stopping at a gap in the sequence (an insert still in flight)
   unless the gap is old (an insert that failed after taking its number);
3. groups them per collection sourced from their bucket, skipping objects a batch already holds
   (a tick that died after writing its batches and before moving the cursor): first into the
   collection's batch still waiting for its run, up to ``batch_objects``, then into new batches
   of at most ``batch_objects``, and only then moves the cursor.

A batch id is derived from the sequence range it was created with, so the orchestrator can use
it as a run key: a batch is launched once. ``trigger`` plans every object of a collection
again, under a new generation, and records it as a task: the hosted API's handle on an
asynchronous operation, whose status is read from its batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.buckets import Buckets
from mixpeek_orchestration.ingest.collections import Collections
from mixpeek_orchestration.observability import ANONYMOUS
from mixpeek_orchestration.storage.ids import aware, new_id, now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.tenancy.accounts import Namespace

BATCH_OBJECTS = 5000
MAX_OBJECTS_PER_TICK = 20_000
GAP_GRACE = timedelta(seconds=10)
MAX_ATTEMPTS = 3
REQUEST_AGAIN_AFTER = timedelta(minutes=2)  # a run asked for and still not started: ask again


class IngestBatch(TypedDict, total=False):
    """``ingest_batches``: objects one collection processes together (a Dagster partition)."""

    batch_id: str
    org_id: str
    namespace_id: str
    collection_id: str
    object_ids: list[str]
    size: int  # len(object_ids): a waiting batch takes more until it holds batch_objects
    first_seq: int
    last_seq: int
    reason: str  # "upload" | "trigger"
    status: str  # planned | running | completed | partial | failed
    attempts: int
    run_id: str | None
    ahead: bool  # started by the sensor in the ingestion service, without a run
    requested_at: datetime | None  # when the sensor last asked Dagster for its run
    reported_at: datetime | None  # when the sensor recorded an ahead batch's outcome in Dagster
    stats: dict[str, Any]
    checks: list[dict[str, Any]]  # the service's checks of an ahead batch, for the sensor
    error: str | None
    created_at: datetime
    started_at: datetime
    beat_at: datetime  # the run's last "still waiting" (a run whose worker died stops)
    finished_at: datetime


@dataclass
class TickResult:
    files_registered: int
    objects_planned: int
    batches_created: list[str]
    cursor: int
    uploads: dict[str, datetime] = field(default_factory=dict)
    """The buckets that took objects since the last tick, and when the newest was made."""


class IngestPlanner:
    def __init__(
        self,
        metadata: MetadataStore,
        buckets: Buckets,
        collections: Collections,
        *,
        batch_objects: int = BATCH_OBJECTS,
    ) -> None:
        self.batches = metadata.collection("ingest_batches")
        self.state = metadata.collection("ingest_state")
        self.tasks = metadata.collection("tasks")
        self.buckets = buckets
        self.collections = collections
        self.batch_objects = batch_objects

    def ensure_indexes(self) -> None:
        self.batches.create_index("batch_id", unique=True)
        self.batches.create_index([("status", 1), ("created_at", 1)])
        self.batches.create_index([("collection_id", 1), ("last_seq", 1)])
        self.batches.create_index("started_at")
        self.batches.create_index([("ahead", 1), ("status", 1)])
        self.tasks.create_index("task_id", unique=True)
        self.tasks.create_index([("org_id", 1), ("namespace_id", 1), ("created_at", 1)])

    @property
    def cursor(self) -> int:
        doc = self.state.find_one({"_id": "planner"})
        return int(doc["seq"]) if doc else 0

    def waiting_objects(self) -> bool:
        """Whether objects past the cursor exist (two small reads: a sensor polls it)."""
        return self.buckets.last_seq() > self.cursor

    def tick(self, *, register_files: bool = True) -> TickResult:
        """One planning pass; ``register_files=False`` skips listing the buckets' landing
        prefixes (a sensor re-planning within its tick for objects the API just created)."""
        registered = 0
        if register_files:
            buckets = self.buckets.all_buckets()
            self.buckets.remember_landed([b["bucket_id"] for b in buckets])
            registered = sum(self.buckets.register_landed_files(b) for b in buckets)
        cursor = self.cursor
        accepted: list[dict[str, Any]] = []
        expected = cursor + 1
        for obj in self.buckets.objects_after(cursor, limit=MAX_OBJECTS_PER_TICK):
            if obj["seq"] != expected and now() - aware(obj["created_at"]) < GAP_GRACE:
                break  # an object with a lower number may still be being inserted
            accepted.append(obj)
            expected = obj["seq"] + 1
        created: list[str] = []
        by_bucket: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for obj in accepted:
            by_bucket[obj["bucket_id"]].append(obj)
        for bucket_id, objects in by_bucket.items():
            for collection in self.collections.sourced_from(bucket_id):
                already = self._held_after(collection["collection_id"], cursor)
                todo = [o for o in objects if o["object_id"] not in already]
                todo = self._join_waiting(collection["collection_id"], todo)
                for chunk in _chunks(todo, self.batch_objects):
                    batch_id = (
                        f"ib_{collection['collection_id']}_{chunk[0]['seq']}_{chunk[-1]['seq']}"
                    )
                    if self._create(collection, chunk, batch_id, reason="upload"):
                        created.append(batch_id)
        if accepted:
            self.state.update_one(
                {"_id": "planner"}, {"$set": {"seq": accepted[-1]["seq"], "at": now()}}, upsert=True
            )
        uploads = {
            bucket_id: max(aware(o["created_at"]) for o in objects)
            for bucket_id, objects in by_bucket.items()
        }
        return TickResult(
            registered, len(accepted), created, accepted[-1]["seq"] if accepted else cursor, uploads
        )

    def _join_waiting(
        self, collection_id: str, objects: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Add what fits of ``objects`` to the collection's batch that is still waiting for its
        run, and return the rest. Objects arriving while a run is being launched ride along
        with it: one upload is a run of its own, a stream of uploads is a few large runs, not
        one per tick. A batch stops taking objects the moment its run starts it (atomically:
        the object ids a run reads are the ones it processes)."""
        if not objects:
            return objects
        waiting = self.batches.find_one(
            {"collection_id": collection_id, "status": "planned", "reason": "upload",
             "size": {"$lt": self.batch_objects}},
            {"batch_id": 1, "size": 1},
            sort=[("last_seq", -1)],
        )  # fmt: skip
        if waiting is None:
            return objects
        joining = objects[: self.batch_objects - int(waiting["size"])]
        result = self.batches.update_one(
            {"batch_id": waiting["batch_id"], "status": "planned",
             "size": {"$lte": self.batch_objects - len(joining)}},
            {"$push": {"object_ids": {"$each": [o["object_id"] for o in joining]}},
             "$set": {"last_seq": joining[-1]["seq"]}, "$inc": {"size": len(joining)}},
        )  # fmt: skip
        return objects[len(joining) :] if result.modified_count else objects

    def _held_after(self, collection_id: str, cursor: int) -> set[str]:
        held: set[str] = set()
        for batch in self.batches.find(
            {"collection_id": collection_id, "last_seq": {"$gt": cursor}, "reason": "upload"},
            {"object_ids": 1},
        ):
            held.update(batch["object_ids"])
        return held

    def _create(
        self,
        collection: Mapping[str, Any],
        objects: list[dict[str, Any]],
        batch_id: str,
        *,
        reason: str,
    ) -> bool:
        doc = {
            "batch_id": batch_id,
            "org_id": collection["org_id"],
            "namespace_id": collection["namespace_id"],
            "collection_id": collection["collection_id"],
            "object_ids": [o["object_id"] for o in objects],
            "size": len(objects),
            "first_seq": objects[0]["seq"],
            "last_seq": objects[-1]["seq"],
            "reason": reason,
            "status": "planned",
            "attempts": 0,
            "created_at": now(),
        }
        try:
            self.batches.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    def trigger(
        self, collection: Mapping[str, Any], *, task_type: str = "api_collections_trigger"
    ) -> dict[str, Any]:
        """Plan every object of the collection's buckets again (a new generation of batches),
        recorded as a task of ``task_type``."""
        counter = self.state.find_one_and_update(
            {"_id": f"generation:{collection['collection_id']}"},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None  # upserted
        generation = counter["value"]
        objects = [
            {"seq": seq, "object_id": object_id}
            for seq, object_id in self.buckets.object_ids_in(collection["source"]["bucket_ids"])
        ]
        batch_ids = []
        for index, chunk in enumerate(_chunks(objects, self.batch_objects)):
            batch_id = f"ib_{collection['collection_id']}_g{generation}_{index}"
            if self._create(collection, chunk, batch_id, reason="trigger"):
                batch_ids.append(batch_id)
        task_id = new_id("task")
        self.tasks.insert_one(
            {
                "task_id": task_id,
                "org_id": collection["org_id"],
                "namespace_id": collection["namespace_id"],
                "task_type": task_type,
                "collection_id": collection["collection_id"],
                "batch_ids": batch_ids,
                "objects": len(objects),
                "created_at": now(),
            }
        )
        return {
            "batches": batch_ids, "objects": len(objects), "generation": generation,
            "task_id": task_id,
        }  # fmt: skip

    def record_task(
        self,
        namespace: Namespace,
        task_type: str,
        *,
        status: str,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        error: str | None = None,
    ) -> dict[str, Any]:
        """A task for an operation that finished before its answer (a batch of upload
        confirmations): the hosted handle on it, with its outcome fixed."""
        doc = {
            **scope(namespace),
            "task_id": new_id("task"),
            "task_type": task_type,
            "batch_ids": [],
            "done": {"status": status, "inputs": inputs, "outputs": outputs, "error": error},
            "created_at": now(),
        }
        self.tasks.insert_one(doc)
        return self._task_out(doc)

    def task(self, namespace: Namespace, task_id: str) -> dict[str, Any]:
        """A task of the namespace with its status, read from its batches now."""
        doc = self.tasks.find_one({**scope(namespace), "task_id": task_id}, {"_id": 0})
        if doc is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"task {task_id!r} not found", field="task_id")
        return self._task_out(doc)

    def cancel_task(self, namespace: Namespace, task_id: str) -> dict[str, Any]:
        """Cancel the task's batches still waiting for a run (those running finish); their
        objects are not processed for the task's collection."""
        task = self.task(namespace, task_id)
        canceled = self.batches.update_many(
            {"batch_id": {"$in": list(task["outputs"].get("batches", {}))}, "status": "planned"},
            {"$set": {"status": "canceled", "finished_at": now()}},
        ).modified_count
        return {
            "task_id": task_id,
            "batches_canceled": canceled,
            "status": self.task(namespace, task_id)["status"],
        }

    def list_tasks(self, namespace: Namespace) -> list[dict[str, Any]]:
        found = self.tasks.find(scope(namespace), {"_id": 0}).sort("created_at", ASCENDING)
        return [self._task_out(doc) for doc in found]

    def _task_out(self, doc: dict[str, Any]) -> dict[str, Any]:
        if "done" in doc:  # finished when it was recorded
            return {
                "task_id": doc["task_id"], "task_type": doc["task_type"],
                "namespace_id": doc["namespace_id"], "created_at": doc["created_at"],
                **doc["done"],
            }  # fmt: skip
        batches = list(
            self.batches.find(
                {"batch_id": {"$in": doc["batch_ids"]}},
                {"_id": 0, "batch_id": 1, "status": 1, "stats": 1, "error": 1},
            )
        )
        states = [b["status"] for b in batches]
        if "canceled" in states and not any(s in ("planned", "running") for s in states):
            status = "CANCELED"
        elif any(s in ("planned", "running") for s in states):
            status = "IN_PROGRESS" if "running" in states or "completed" in states else "PENDING"
        elif all(s == "completed" for s in states):
            status = "COMPLETED"
        elif all(s == "failed" for s in states):
            status = "FAILED"
        else:
            status = "COMPLETED_WITH_ERRORS"
        errors = [b["error"] for b in batches if b.get("error")]
        return {
            "task_id": doc["task_id"],
            "task_type": doc["task_type"],
            "status": status,
            "namespace_id": doc["namespace_id"],
            "inputs": {"collection_id": doc["collection_id"]},
            "outputs": {
                "objects": doc["objects"],
                "batches": {b["batch_id"]: b["status"] for b in batches},
                "completed": sum(
                    int((b.get("stats") or {}).get("completed") or 0) for b in batches
                ),
                "failed": sum(int((b.get("stats") or {}).get("failed") or 0) for b in batches),
            },
            "error": "; ".join(errors) or None,
            "created_at": doc["created_at"],
        }

    # -- batch lifecycle ------------------------------------------------------------------------

    def runnable(self, *, limit: int = 500) -> list[IngestBatch]:
        """Batches waiting for a run whose run has not been asked for (or was asked for more
        than :data:`REQUEST_AGAIN_AFTER` ago: that request may have been lost), oldest first."""
        return list(
            self.batches.find({"status": "planned", **self._not_requested()}, {"_id": 0})  # type: ignore[arg-type]
            .sort("created_at", ASCENDING)
            .limit(limit)
        )

    def in_flight(self) -> Iterator[IngestBatch]:
        yield from self.batches.find({"status": "running"}, {"_id": 0})  # type: ignore[misc]

    def beat(self, batch_id: str, run_id: str | None) -> None:
        """The run ``run_id`` (``None``: the service holding a batch started ahead) is alive
        and still waiting for this batch."""
        self.batches.update_one(
            {"batch_id": batch_id, "run_id": run_id, "status": "running"},
            {"$set": {"beat_at": now()}},
        )

    def silent_for(self, batch: IngestBatch) -> timedelta:
        """How long the batch's run has not said it is alive (its worker may be gone: a killed
        stack leaves its runs ``STARTED`` for ever)."""
        beat = batch.get("beat_at") or batch.get("started_at")
        return now() - aware(beat) if isinstance(beat, datetime) else timedelta(0)

    def lost_ahead(self, batch: IngestBatch, *, after: timedelta) -> bool:
        """Whether a batch started ahead of any run has had no word from the service that
        holds it for ``after``: that service went away (it says every few seconds that it
        still holds the batch, queued or running)."""
        return (
            batch.get("status") == "running"
            and not batch.get("run_id")
            and self.silent_for(batch) > after
        )

    def backlog(self, collection_id: str) -> tuple[int, datetime | None]:
        """How many batches of a collection wait for, or are in, a run, and when the oldest of
        them was planned (what its freshness check reports)."""
        waiting = list(
            self.batches.find(
                {"collection_id": collection_id, "status": {"$in": ["planned", "running"]}},
                {"_id": 0, "created_at": 1},
            )
        )
        oldest = min((aware(b["created_at"]) for b in waiting), default=None)
        return len(waiting), oldest

    def requested(self, batch_ids: list[str]) -> None:
        """The runs of these batches have been asked for (Dagster queues them): ``runnable``
        leaves them out for a while, so they do not crowd out newer batches."""
        if batch_ids:
            self.batches.update_many(
                {"batch_id": {"$in": batch_ids}}, {"$set": {"requested_at": now()}}
            )

    @staticmethod
    def _not_requested() -> dict[str, Any]:
        cutoff = now() - REQUEST_AGAIN_AFTER
        return {"$or": [{"requested_at": None}, {"requested_at": {"$lt": cutoff}}]}

    def running_ahead(self) -> set[str]:
        """Collections with a batch the service is processing ahead of any run (a collection
        has one at a time: its next objects wait for it, gathering into one batch)."""
        query = {"ahead": True, "status": "running"}
        return {
            b["collection_id"] for b in self.batches.find(query, {"_id": 0, "collection_id": 1})
        }

    def unreported(self, *, limit: int = 200) -> list[IngestBatch]:
        """Batches processed ahead of any run whose outcome the sensor has not yet recorded in
        Dagster (as a runless materialization of their partition), oldest first."""
        query = {"ahead": True, "status": {"$in": ["completed", "partial"]}, "reported_at": None}
        cursor = self.batches.find(query, {"_id": 0}).sort("finished_at", ASCENDING)
        return list(cursor.limit(limit))  # type: ignore[arg-type]

    def reported(self, batch_ids: list[str]) -> None:
        if batch_ids:
            self.batches.update_many(
                {"batch_id": {"$in": batch_ids}}, {"$set": {"reported_at": now()}}
            )

    def waiting_since(self, before: datetime) -> set[str]:
        """Collections with a batch planned before ``before`` and not yet done."""
        query = {"status": {"$in": ["planned", "running"]}, "created_at": {"$lt": before}}
        return {
            b["collection_id"] for b in self.batches.find(query, {"_id": 0, "collection_id": 1})
        }

    def of_collection(self, collection_id: str) -> list[IngestBatch]:
        """Every batch of a collection, in planning order."""
        cursor = self.batches.find({"collection_id": collection_id}, {"_id": 0})
        return list(cursor.sort("created_at", ASCENDING))  # type: ignore[arg-type]

    def get(self, batch_id: str) -> IngestBatch | None:
        return self.batches.find_one({"batch_id": batch_id}, {"_id": 0})  # type: ignore[return-value]

    def start(
        self, batch_id: str, run_id: str | None, *, if_planned: bool = False
    ) -> IngestBatch | None:
        """Mark a batch running for ``run_id`` (``None``: ahead of any run, in the ingestion
        service); the batch as it is now (``None``: gone, or with ``if_planned``, started
        already). From here on no tick adds objects to it."""
        query: dict[str, Any] = {"batch_id": batch_id}
        if if_planned:
            query["status"] = "planned"
        return self.batches.find_one_and_update(  # type: ignore[return-value]
            query,
            {
                "$set": {
                    "status": "running",
                    "run_id": run_id,
                    "ahead": run_id is None,
                    "reported_at": None,
                    "started_at": now(),
                    "beat_at": now(),
                },
                "$inc": {"attempts": 1},
            },
            projection={"_id": 0},
            return_document=ReturnDocument.AFTER,
        )

    def record(
        self,
        batch_id: str,
        report: Mapping[str, Any],
        checks: list[dict[str, Any]] | None = None,
    ) -> str:
        """Finish a batch with the outcome its report shows: ``completed``, ``partial`` or
        ``failed`` (every row failed); ``checks``: the service's checks of it."""
        completed, failed = report["completed"], report["failed"]
        status = "completed" if failed == 0 else ("failed" if completed == 0 else "partial")
        self.finish(batch_id, status=status, stats=dict(report), checks=checks)
        return status

    def finish(
        self,
        batch_id: str,
        *,
        status: str,
        stats: dict[str, Any],
        error: str | None = None,
        checks: list[dict[str, Any]] | None = None,
    ) -> None:
        done = {"status": status, "stats": stats, "error": error, "finished_at": now()}
        self.batches.update_one({"batch_id": batch_id}, {"$set": done | {"checks": checks or []}})

    def retry(self, batch_id: str) -> bool:
        """Put an interrupted batch back in the queue, unless it has used its attempts."""
        result = self.batches.update_one(
            {"batch_id": batch_id, "status": "running", "attempts": {"$lt": MAX_ATTEMPTS}},
            {"$set": {"status": "planned", "requested_at": None}},
        )
        if result.modified_count:
            return True
        self.batches.update_one(
            {"batch_id": batch_id, "status": "running"},
            {"$set": {"status": "failed", "error": f"interrupted {MAX_ATTEMPTS} times"}},
        )
        return False

    def delete_collection(self, collection_id: str) -> None:
        self.batches.delete_many({"collection_id": collection_id})
        self.tasks.delete_many({"collection_id": collection_id})
        self.state.delete_one({"_id": f"generation:{collection_id}"})

    def delete_namespace(self, namespace: Namespace, collection_ids: list[str]) -> int:
        """Every batch of a namespace, and its collections' generation counters."""
        self.state.delete_many({"_id": {"$in": [f"generation:{c}" for c in collection_ids]}})
        self.tasks.delete_many(scope(namespace))
        return self.batches.delete_many(scope(namespace)).deleted_count

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per organisation: batches by status, queue depth and oldest waiting age, rows ok /
        failed (one aggregation; ``/metrics`` and ``mixpeek status`` show it)."""
        groups = self.batches.aggregate(
            [
                {
                    "$group": {
                        "_id": {"tenant": "$org_id", "status": "$status"},
                        "n": {"$sum": 1},
                        "oldest": {"$min": "$created_at"},
                        "ok": {"$sum": "$stats.completed"},
                        "failed": {"$sum": "$stats.failed"},
                    }
                }
            ]
        )
        now_s = now().timestamp()
        summary: dict[str, dict[str, Any]] = {}
        for group in groups:
            tenant = group["_id"].get("tenant") or ANONYMOUS
            status = str(group["_id"].get("status"))
            entry = summary.setdefault(
                tenant,
                {
                    "batches": {},
                    "queue_depth": 0,
                    "oldest_age_s": 0.0,
                    "rows_ok": 0,
                    "rows_failed": 0,
                },
            )
            entry["batches"][status] = group["n"]
            entry["rows_ok"] += int(group.get("ok") or 0)
            entry["rows_failed"] += int(group.get("failed") or 0)
            if status in ("planned", "running"):
                entry["queue_depth"] += group["n"]
                oldest = group.get("oldest")
                age = now_s - aware(oldest).timestamp() if isinstance(oldest, datetime) else 0.0
                entry["oldest_age_s"] = round(max(entry["oldest_age_s"], age), 1)
        return summary


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
