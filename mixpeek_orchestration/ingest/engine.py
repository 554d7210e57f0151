"""The ingestion engine: one batch of objects through a collection's plugin on Ray Data.

1. rows: every blob of the batch's objects whose type the plugin supports becomes one row in
   the SPEC §3 shape (``data`` is the text, or a presigned URL for a stored file);
2. a Ray task opens the plugin version from its archive and reports its steps for the
   collection's parameters, so no plugin code runs in the orchestrator's process;
3. each step becomes a ``map_batches`` stage feeding a pool of warm actors sized by its
   ``ResourceType`` (CPU: batches of ~64, one actor per allowed concurrency, the node's cores
   shared between them; GPU: batches of ~8 with ``num_gpus`` where the cluster has GPUs; API:
   small batches, one actor taking ``concurrency`` batches at once). The actors are named by
   (plugin version, parameters, collection, step) and outlive the run: they open the plugin and
   load its models once, serve every later run of the same collection (concurrent runs share
   them) and leave after ``ingest_warm_idle_s`` without work. The first stage applies the
   ``prepare`` hook, the last validates outputs;
4. results stream back to the driver and are written as they come: documents upserted by
   (collection, object, blob), vectors upserted per feature URI.

Example:
    >>> engine = IngestionEngine(platform)
    >>> report = engine.run(batch)          # batch: an ``ingest_batches`` record
    >>> report.completed, report.failed, report.rows_per_s
"""

from __future__ import annotations

import logging
import resource
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.batch.rows import BLOB_MIME_DEFAULTS, TEXT_FIELDS, URL_FIELDS
from mixpeek_orchestration.batch.steps import BASE_COLUMNS
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.documents import document_id, vector_table
from mixpeek_orchestration.plugins.fetch import plugin_spec

if TYPE_CHECKING:
    import pandas as pd

    from mixpeek_orchestration.platform import Platform

logger = logging.getLogger(__name__)
BLOB_URL_TTL_S = 6 * 3600
BLOCK_ROWS = 64  # rows per Ray Data block
WRITE_ROWS = 1024  # rows per write to the stores (documents bulk upsert, vectors merge)
WARM_NAMESPACE = "mixpeek-ingest"  # the Ray namespace of warm step actors
BATCH_RESOURCE = "batch"  # offered only by a cluster's batch worker group (deploy/render.py)
FORWARD_CPUS = 0  # a task handing a block to a warm actor only waits on it: it must never
# queue behind the CPUs that warm actors and Serve replicas hold
WRITE_INTERVAL_S = 2.0  # ... or whatever arrived in this long, so slow plugins show progress
VECTOR_METRICS: dict[str, Any] = {"cosine": "cosine", "euclid": "l2", "dot": "dot"}
# blob types a plugin declaring one input type also takes
ALSO_ACCEPTS = {"document": {"pdf"}, "text": {"json"}}


@dataclass
class IngestionReport:
    batch_id: str
    collection_id: str
    plugin_id: str
    objects: int
    rows: int = 0
    completed: int = 0
    failed: int = 0
    vectors: int = 0
    seconds: float = 0.0
    processing_seconds: float = 0.0
    processing_started_at: float = 0.0  # epoch seconds: the Ray Data job's start and end
    processing_finished_at: float = 0.0
    peak_rss_mb: float = 0.0  # of this driver process, streaming results to the stores
    first_block_s: float = 0.0  # from the job's start to its first output (actors, models)
    actors_started: int = 0  # warm step actors this run had to start ...
    actors_reused: int = 0  # ... and those an earlier run left warm
    write_seconds: float = 0.0  # spent writing documents and vectors
    steps: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.processing_seconds if self.processing_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows_per_s": round(self.rows_per_s, 2)}


def accepts(collection: dict[str, Any], blob_type: str) -> bool:
    supported = set(collection.get("supported_input_types") or [])
    for declared in list(supported):
        supported |= ALSO_ACCEPTS.get(declared, set())
    return blob_type in supported


def build_rows(
    collection: dict[str, Any], objects: list[dict[str, Any]], platform: Platform
) -> pd.DataFrame:
    """The batch DataFrame (SPEC §3) for the blobs of ``objects`` this collection processes."""
    import pandas as pd

    extractor = collection["feature_extractor"]
    mappings: dict[str, str] = extractor.get("input_mappings") or {}
    mapped = set(mappings.values())
    input_fields = list(
        (collection.get("input_schema") or {}).get("properties", {})
        or [next(iter(mappings), "text")]
    )
    rows = []
    for obj in objects:
        for blob in obj["blobs"]:
            if not accepts(collection, blob["type"]) or (mapped and blob["property"] not in mapped):
                continue
            if "text" in blob:
                data = blob["text"]
            elif blob.get("key") and blob["type"] in ("text", "json"):
                data = platform.objects.get_bytes(blob["key"]).decode("utf-8", errors="replace")
            elif blob.get("key"):
                data = platform.objects.presign_get(blob["key"], expires_in=BLOB_URL_TTL_S).url
            else:
                data = blob["url"]
            is_text = blob["type"] in ("text", "json")
            row = {
                "data": data,
                "document_id": document_id(
                    collection["collection_id"], obj["object_id"], blob["blob_id"]
                ),
                "object_id": obj["object_id"],
                "blob_id": blob["blob_id"],
                "blob_property": blob["property"],
                "blob_type": blob["type"],
                "collection_id": collection["collection_id"],
                "feature_extractor_id": extractor["plugin_id"],
                "mime_type": blob.get("mime_type")
                or BLOB_MIME_DEFAULTS.get(blob["type"], "text/plain"),
                "size_bytes": int(blob.get("size_bytes") or 0),
            }
            for name in input_fields:
                if name in row:
                    continue
                if (
                    mappings.get(name) == blob["property"]
                    or ((is_text and name in TEXT_FIELDS) or (not is_text and name in URL_FIELDS))
                    or (is_text and name == input_fields[0])
                ):
                    row[name] = data
                else:
                    row[name] = None
            rows.append(row)
    frame = pd.DataFrame(rows)
    for column in BASE_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return frame


def _describe_steps(
    spec: dict[str, Any], parameters: dict[str, Any], collection_id: str
) -> list[dict[str, Any]]:
    """(Ray task) The plugin's steps for ``parameters``: name, resource type, batch, concurrency."""
    from mixpeek_orchestration.plugins.fetch import open_stored_plugin

    runtime = open_stored_plugin(spec)
    built = runtime.plugin.build_steps(
        parameters, context=runtime.context, collection_id=collection_id
    )
    return [
        {
            "name": step.name,
            "resource_type": step.resource_type.value,
            "batch_size": step.batch_size,
            "concurrency": step.concurrency,
            "num_gpus": step.num_gpus,
        }
        for step in built.steps
    ]


class StepStage:
    """(Ray actor) One step of a plugin's pipeline; the plugin and its models load once."""

    def __init__(
        self,
        spec: dict[str, Any],
        parameters: dict[str, Any],
        collection_id: str,
        index: int,
        steps: int,
        actors: int = 1,
    ) -> None:
        import os
        import sys

        from mixpeek_orchestration.batch.steps import OutputValidator, StepExecutor
        from mixpeek_orchestration.plugins.fetch import open_stored_plugin

        # Ray starts a 1-CPU actor with one intra-op thread; a CPU step's actors share the
        # node's cores instead, set before the plugin imports its framework.
        if actors and os.environ.get("OMP_NUM_THREADS") == "1":
            threads = str(max(1, (os.cpu_count() or 1) // max(1, actors)))
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
            if "torch" in sys.modules:  # already imported by this worker: the variable is read
                sys.modules["torch"].set_num_threads(int(threads))

        runtime = open_stored_plugin(spec)
        built = runtime.plugin.build_steps(
            parameters, context=runtime.context, collection_id=collection_id
        )
        self.executor = StepExecutor(
            built.steps[index], guard=runtime.guard, context=runtime.context
        )
        self.prepare = built.prepare if index == 0 else None
        self.validator = OutputValidator(runtime.manifest) if index == steps - 1 else None
        self.runtime = runtime

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from mixpeek_orchestration.batch.steps import apply_prepare
        from mixpeek_orchestration.plugins.guard import guarded
        from mixpeek_orchestration.sdk.context import use_context

        if self.prepare is not None:
            # ``prepare`` runs on each batch inside the actor (hooks written for the hosted
            # product, ``lambda ds: ds``, take either), never in the orchestrator's process.
            with use_context(self.runtime.context), guarded(self.runtime.guard):
                batch = apply_prepare(self.prepare, batch)
        out = self.executor(batch)
        if self.validator is not None:
            out = self.validator(out)
        return _arrow_safe(out)


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Vectors as plain lists, so a batch with failed rows (no vector) still converts to Arrow."""
    import numpy as np

    for column in frame.columns:
        if frame[column].dtype == object and any(
            isinstance(v, np.ndarray) for v in frame[column].head(64)
        ):
            frame[column] = [v.tolist() if isinstance(v, np.ndarray) else v for v in frame[column]]
    return frame


def plan_key(version: dict[str, Any], parameters: dict[str, Any], collection_id: str) -> str:
    """What a plugin's steps depend on: its archive, the parameters, the collection."""
    import hashlib
    import json

    return hashlib.sha256(
        json.dumps([version["sha256"], parameters, collection_id], sort_keys=True).encode()
    ).hexdigest()


class WarmStage(StepStage):
    """(Ray detached actor) A :class:`StepStage` that outlives the run which started it.

    It leaves by itself after ``idle_s`` without a batch. CPU and GPU stages compute one batch
    at a time (their frameworks already use every core or the device); API stages take several.
    """

    def __init__(self, *args: Any, idle_s: float, exclusive: bool, **kwargs: Any) -> None:
        import threading

        super().__init__(*args, **kwargs)
        self.idle_s = idle_s
        self.lock = threading.Lock() if exclusive else None
        self.in_flight = 0
        self.batches = 0
        self.last_used = time.monotonic()
        threading.Thread(
            target=self._leave_when_idle, name="warm-stage-reaper", daemon=True
        ).start()

    def process(self, batch: pd.DataFrame) -> pd.DataFrame:
        self.in_flight += 1
        try:
            if self.lock is None:
                return self(batch)
            with self.lock:
                return self(batch)
        finally:
            self.in_flight -= 1
            self.batches += 1
            self.last_used = time.monotonic()

    def info(self) -> dict[str, Any]:
        import os

        idle = 0.0 if self.in_flight else time.monotonic() - self.last_used
        return {"pid": os.getpid(), "batches": self.batches, "idle_s": idle}

    def _leave_when_idle(self) -> None:
        import ray

        while True:
            time.sleep(max(1.0, min(self.idle_s / 4, 30.0)))
            if not self.in_flight and time.monotonic() - self.last_used > self.idle_s:
                logger.info("no batch for %.0f s: this warm stage leaves", self.idle_s)
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return


_HANDLES: dict[str, Any] = {}  # per Ray worker: warm stage handles by name


def _forward(batch: pd.DataFrame, *, names: list[str]) -> pd.DataFrame:
    """(Ray Data task) Hand one batch to a warm stage of the step and return what it made."""
    import random

    import pandas as pd
    import pyarrow as pa
    import ray

    name = random.choice(names)
    if any(isinstance(dtype, pd.ArrowDtype) for dtype in batch.dtypes):
        # plugins see plain pandas (str objects, int64), as in a DataFrame they build themselves
        table = pa.Table.from_pandas(batch, preserve_index=False)
        batch = table.replace_schema_metadata(None).to_pandas()
    if name not in _HANDLES:
        _HANDLES[name] = ray.get_actor(name, namespace=WARM_NAMESPACE)
    try:
        return ray.get(_HANDLES[name].process.remote(batch))  # type: ignore[no-any-return]
    except ray.exceptions.RayActorError:
        _HANDLES.pop(name, None)  # gone (killed, out of memory): the run fails and is retried
        raise


def make_room(need: dict[str, float], *, keep: str = "") -> None:
    """Stop idle warm stages (other than ``keep``'s) until ``need`` (``{"CPU": 1.0, ...}``)
    fits in what the cluster has free, longest idle first. Realtime deployments call it too:
    batch actors waiting for a next run never hold a Serve replica's place."""
    import ray

    def short() -> bool:
        free = ray.available_resources()
        return any(free.get(r, 0.0) < amount for r, amount in need.items() if amount)

    if not short():
        return
    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a.get("namespace") == WARM_NAMESPACE and not (keep and a["name"].startswith(keep))
    ]
    idle = []
    for name in names:
        try:
            handle = ray.get_actor(name, namespace=WARM_NAMESPACE)
            info = ray.get(handle.info.remote(), timeout=5)
        except Exception:  # gone meanwhile, or busy beyond reason: leave it
            continue
        if info["idle_s"] > 1.0:
            idle.append((info["idle_s"], name, handle))
    for _, name, handle in sorted(idle, key=lambda item: item[0], reverse=True):
        logger.info("stopping idle warm stage %s to make room (%s)", name, need)
        ray.kill(handle, no_restart=True)
        deadline = time.monotonic() + 10
        while short() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not short():
            return


class IngestionEngine:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def _actor_options(
        self, step: dict[str, Any], gpus_in_cluster: float, batch_workers: bool = False
    ) -> dict[str, Any]:
        kind = step["resource_type"]
        options: dict[str, Any] = {"num_cpus": 1}
        if kind == "gpu":
            if gpus_in_cluster > 0:
                options["num_gpus"] = step["num_gpus"] or 1
            else:
                logger.warning(
                    "step %s asks for a GPU but the Ray cluster has none: its actors run on CPU",
                    step["name"],
                )
        if kind == "api":
            options["num_cpus"] = 0.25  # mostly waiting on a remote service
        if batch_workers:  # a cluster with a batch worker group keeps batch actors there
            options["resources"] = {BATCH_RESOURCE: 1}
        return options

    @staticmethod
    def replicas(step: dict[str, Any]) -> int:
        """Actors of a step: its concurrency for CPU / GPU; one actor for an API step, which
        takes ``concurrency`` batches at once."""
        return 1 if step["resource_type"] == "api" else max(1, step["concurrency"])

    def warm_stages(
        self,
        plan_key: str,
        spec: dict[str, Any],
        parameters: dict[str, Any],
        collection_id: str,
        steps: list[dict[str, Any]],
        *,
        timeout_s: float = 600,
    ) -> tuple[list[list[str]], int, int]:
        """Each step's warm stage names, started where missing; returns (names, started, reused).

        Idle warm stages of other plugins make way when the cluster lacks the CPUs or GPUs for
        new ones.
        """
        import ray

        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        batch_workers = resources.get(BATCH_RESOURCE, 0) > 0
        existing = {
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a.get("namespace") == WARM_NAMESPACE
        }
        names: list[list[str]] = []
        need: dict[str, float] = {}
        missing: list[tuple[int, str, dict[str, Any]]] = []
        for index, step in enumerate(steps):
            step_names = [
                f"{plan_key[:20]}-{index}-{replica}" for replica in range(self.replicas(step))
            ]
            names.append(step_names)
            missing += [
                (index, n, self._actor_options(step, gpus, batch_workers))
                for n in step_names
                if n not in existing
            ]
        if missing:
            need = {
                "CPU": sum(o["num_cpus"] for _, _, o in missing),
                "GPU": sum(o.get("num_gpus", 0) for _, _, o in missing),
            }
            make_room(need, keep=plan_key[:20])
        idle_s = float(self.platform.settings.ingest_warm_idle_s)
        handles = []
        for index, name, options in missing:
            step = steps[index]
            handles.append(
                ray.remote(WarmStage)
                .options(
                    name=name,
                    namespace=WARM_NAMESPACE,
                    lifetime="detached",
                    get_if_exists=True,  # a concurrent run may be starting the same one
                    max_restarts=0,
                    max_concurrency=max(2, step["concurrency"] + 1),
                    **options,
                )
                .remote(
                    spec,
                    parameters,
                    collection_id,
                    index,
                    len(steps),
                    self.replicas(step),
                    idle_s=idle_s,
                    exclusive=step["resource_type"] != "api",
                )
            )
        try:
            ray.get([h.info.remote() for h in handles], timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"the Ray cluster could not start this plugin's batch actors within {timeout_s:.0f}s "
                f"(they need {need}; free: {ray.available_resources()})",
            ) from None
        return names, len(missing), sum(len(n) for n in names) - len(missing)

    def _step_plan(
        self,
        version: dict[str, Any],
        spec: dict[str, Any],
        parameters: dict[str, Any],
        collection_id: str,
    ) -> list[dict[str, Any]]:
        """The plugin's steps for these parameters: asked once of a Ray task, then remembered
        (a version's archive never changes, so neither do its steps for given parameters)."""
        import ray

        plans = self.platform.metadata.collection("step_plans")
        key = plan_key(version, parameters, collection_id)
        cached = plans.find_one({"_id": key})
        if cached is not None:
            return cached["steps"]  # type: ignore[no-any-return]
        describe = ray.remote(num_cpus=0, max_calls=1)(_describe_steps)
        steps: list[dict[str, Any]] = ray.get(describe.remote(spec, parameters, collection_id))
        plans.update_one(
            {"_id": key},
            {"$set": {"steps": steps, "plugin_id": version["plugin_id"]}},
            upsert=True,
        )
        return steps

    def run(self, batch: dict[str, Any], *, run_id: str | None = None) -> IngestionReport:
        """Process one ``ingest_batches`` record end to end; raises only when nothing ran."""
        import ray

        p = self.platform
        started = time.perf_counter()
        collection = p.collections.by_id(batch["collection_id"])
        if collection is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"collection {batch['collection_id']} no longer exists"
            )
        extractor = collection["feature_extractor"]
        version = p.registry.versions.find_one(
            {"namespace_id": collection["namespace_id"], "plugin_id": extractor["plugin_id"]}
        )
        if version is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"plugin {extractor['plugin_id']} no longer exists"
            )
        collection = collection | {"input_schema": version["manifest"].get("input_schema")}
        seq_range = (batch["first_seq"], batch["last_seq"]) if "first_seq" in batch else None
        objects = {
            o["object_id"]: o
            for o in p.buckets.objects_by_id(batch["object_ids"], seq_range=seq_range)
        }
        report = IngestionReport(
            batch_id=batch["batch_id"],
            collection_id=collection["collection_id"],
            plugin_id=extractor["plugin_id"],
            objects=len(objects),
        )
        frame = build_rows(collection, list(objects.values()), p)
        report.rows = len(frame)
        if frame.empty:
            report.seconds = time.perf_counter() - started
            return report
        p.ray.connect()
        spec = plugin_spec(version, p.objects)
        parameters = extractor.get("parameters") or {}
        steps = self._step_plan(version, spec, parameters, collection["collection_id"])
        overrides = p.overrides()
        name = extractor.get("feature_extractor_name") or version.get("name", "")
        if name in overrides.disabled:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"{name} is disabled by this installation's overrides file: nothing is ingested",
            )
        actors = overrides.for_extractor(name).max_concurrency
        if actors is not None:  # the operator sizes this extractor's batch actor pools
            steps = [s | {"concurrency": actors} for s in steps]
        report.steps = steps
        if not steps:
            raise MixpeekError(ErrorCode.INVALID_PLUGIN, f"{extractor['plugin_id']} built no steps")
        output_fields = list((version["manifest"].get("output_schema") or {}).get("properties", {}))
        processing = time.perf_counter()  # from here: actors (cold or warm), blocks, writes
        report.processing_started_at = time.time()
        names, report.actors_started, report.actors_reused = self.warm_stages(
            plan_key(version, parameters, collection["collection_id"]),
            spec,
            parameters,
            collection["collection_id"],
            steps,
        )
        # blocks built here, not by a Ray task per block as ``from_pandas`` does: each task
        # type of a new job boots Ray workers, which on a small node costs more than the rows
        dataset = ray.data.from_items(
            frame.to_dict("records"), override_num_blocks=-(-len(frame) // BLOCK_ROWS)
        )
        for step, step_names in zip(steps, names, strict=True):
            # light tasks hand blocks to the warm actors, enough of them that each actor has
            # its next batch queued while it computes
            in_flight = step["concurrency"] if step["resource_type"] == "api" else 1
            dataset = dataset.map_batches(
                _forward,
                fn_kwargs={"names": step_names},
                batch_format="pandas",
                batch_size=step["batch_size"],
                num_cpus=FORWARD_CPUS,
                concurrency=2 * len(step_names) * max(1, in_flight),
            )

        def write(out: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int], float]:
            write_start = time.perf_counter()
            counts = p.documents.write(
                collection,
                out,
                objects=objects,
                output_fields=output_fields,
                batch_id=batch["batch_id"],
                run_id=run_id,
            )
            return out, counts, time.perf_counter() - write_start

        def account(done: Future[tuple[pd.DataFrame, dict[str, int], float]]) -> None:
            out, counts, seconds = done.result()
            report.write_seconds += seconds
            report.completed += counts["completed"]
            report.failed += counts["failed"]
            report.vectors += counts["vectors"]
            if counts["failed"] and len(report.errors) < 20:
                report.errors += out["_error"].dropna().tolist()[: 20 - len(report.errors)]

        # Blocks stream in as they are processed and are written in groups of WRITE_ROWS, or
        # every WRITE_INTERVAL_S (each vector upsert merges against the table, so fewer, larger
        # ones cost less; a slow plugin still shows documents as it goes) by one
        # writer thread, so consuming the stream never waits on the stores; at most two groups
        # are in flight, which bounds memory.
        pending: list[pd.DataFrame] = []
        last_flush = time.monotonic()
        in_flight: deque[Future[tuple[pd.DataFrame, dict[str, int], float]]] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as writer:

            def flush() -> None:
                import pandas as pd

                nonlocal last_flush
                last_flush = time.monotonic()
                if pending:
                    in_flight.append(writer.submit(write, pd.concat(pending, ignore_index=True)))
                    pending.clear()
                while len(in_flight) > 2:
                    account(in_flight.popleft())

            for out in dataset.iter_batches(batch_format="pandas", batch_size=None):
                if not report.first_block_s:
                    report.first_block_s = time.perf_counter() - processing
                pending.append(out)
                if (
                    sum(len(f) for f in pending) >= WRITE_ROWS
                    or time.monotonic() - last_flush >= WRITE_INTERVAL_S
                ):
                    flush()
            flush()
            while in_flight:
                account(in_flight.popleft())
        report.processing_seconds = time.perf_counter() - processing
        for feature, uri in zip(collection["features"], collection["feature_uris"], strict=True):
            p.vectors.ensure_index(
                vector_table(collection["namespace_id"], uri),
                metric=VECTOR_METRICS.get(feature.get("distance_metric", "cosine"), "cosine"),
            )
        report.processing_finished_at = time.time()
        report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report.seconds = time.perf_counter() - started
        if report.completed and report.vectors == 0 and collection["features"]:
            raise MixpeekError(
                ErrorCode.OUTPUT_INVALID,
                f"{extractor['plugin_id']} completed {report.completed} rows but produced no vectors",
            )
        return report
