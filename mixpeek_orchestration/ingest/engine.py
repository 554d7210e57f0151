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
    >>> engine = platform.ingestion     # built by the composition root
    >>> report = engine.run(batch)          # batch: an ``ingest_batches`` record
    >>> report.completed, report.failed, report.rows_per_s
"""

from __future__ import annotations

import logging
import resource
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.batch.rows import (
    BLOB_MIME_DEFAULTS,
    TEXT_BLOB_TYPES,
    BlobRow,
    build_batch,
    input_fields,
)
from mixpeek_orchestration.batch.steps import ERROR_COLUMN
from mixpeek_orchestration.compute.resources import BATCH_RESOURCE, WARM_NAMESPACE, make_room
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.documents import document_id, vector_table
from mixpeek_orchestration.ingest.step_plans import StepPlan, StepPlans, plan_key
from mixpeek_orchestration.plugins.fetch import plugin_spec
from mixpeek_orchestration.storage.vectors import metric_of

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mixpeek_orchestration.compute.ray_cluster import RayCluster
    from mixpeek_orchestration.ingest.buckets import Buckets
    from mixpeek_orchestration.ingest.collections import Collection, Collections
    from mixpeek_orchestration.ingest.documents import Documents
    from mixpeek_orchestration.ingest.planner import IngestBatch
    from mixpeek_orchestration.plugins.records import PluginVersion
    from mixpeek_orchestration.plugins.registry import PluginRegistry
    from mixpeek_orchestration.sandbox.config import SandboxConfig
    from mixpeek_orchestration.storage.objects import ObjectStore
    from mixpeek_orchestration.storage.vectors import VectorStore
    from mixpeek_orchestration.tenancy.overrides import Overrides

logger = logging.getLogger(__name__)
BLOB_URL_TTL_S = 6 * 3600
WRITE_ROWS = 1024  # rows per write to the stores (documents bulk upsert, vectors merge)
WRITE_INTERVAL_S = 2.0  # ... or whatever arrived in this long, so slow plugins show progress
IN_FLIGHT_PER_ACTOR = 2  # blocks queued at each actor: the next is there when one is done
HOLD_S = 3600.0  # the longest a run keeps its stages from leaving, should it vanish
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
    processing_started_at: float = 0.0  # epoch seconds: processing (actors, blocks, writes)
    processing_finished_at: float = 0.0
    peak_rss_mb: float = 0.0  # of the process that ran it (the ingestion service)
    first_block_s: float = 0.0  # from the job's start to its first output (actors, models)
    actors_started: int = 0  # warm step actors this run had to start ...
    actors_reused: int = 0  # ... and those an earlier run left warm
    write_seconds: float = 0.0  # spent writing documents and vectors
    steps: list[StepPlan] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.processing_seconds if self.processing_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows_per_s": round(self.rows_per_s, 2)}


def accepts(collection: Mapping[str, Any], blob_type: str) -> bool:
    supported = set(collection.get("supported_input_types") or [])
    for declared in list(supported):
        supported |= ALSO_ACCEPTS.get(declared, set())
    return blob_type in supported


def processed_blobs(collection: Mapping[str, Any], obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The blobs of an object the collection processes (its plugin takes their type, and its
    input mappings, when it has them, name their property); an object with none is skipped."""
    mapped = set((collection["feature_extractor"].get("input_mappings") or {}).values())
    return [
        blob
        for blob in obj["blobs"]
        if accepts(collection, blob["type"]) and (not mapped or blob["property"] in mapped)
    ]


def blob_rows(
    collection: Collection, objects: Iterable[dict[str, Any]], store: ObjectStore
) -> list[BlobRow]:
    """The blobs of ``objects`` this collection processes, with their ``data``: inline text,
    a stored text / JSON file's text, or a presigned URL of a stored binary file."""
    extractor = collection["feature_extractor"]
    rows = []
    for obj in objects:
        for blob in processed_blobs(collection, obj):
            if "text" in blob:
                data = blob["text"]
            elif blob.get("key") and blob["type"] in TEXT_BLOB_TYPES:
                data = store.get_bytes(blob["key"]).decode("utf-8", errors="replace")
            elif blob.get("key"):
                data = store.presign_get(blob["key"], expires_in=BLOB_URL_TTL_S).url
            else:
                data = blob["url"]
            rows.append(
                BlobRow(
                    data=data,
                    document_id=document_id(
                        collection["collection_id"], obj["object_id"], blob["blob_id"]
                    ),
                    object_id=obj["object_id"],
                    blob_id=blob["blob_id"],
                    blob_property=blob["property"],
                    blob_type=blob["type"],
                    collection_id=collection["collection_id"],
                    feature_extractor_id=extractor["plugin_id"],
                    mime_type=blob.get("mime_type")
                    or BLOB_MIME_DEFAULTS.get(blob["type"], "text/plain"),
                    size_bytes=int(blob.get("size_bytes") or 0),
                )
            )
    return rows


def build_rows(
    collection: Collection, objects: Iterable[dict[str, Any]], store: ObjectStore
) -> pd.DataFrame:
    """The batch DataFrame (SPEC §3) for the blobs of ``objects`` this collection processes."""
    mappings = collection["feature_extractor"].get("input_mappings") or {}
    return build_batch(
        blob_rows(collection, objects, store),
        input_fields(collection.get("input_schema"), mappings),
        mappings=mappings,
    )


def _describe_steps(
    spec: dict[str, Any], parameters: dict[str, Any], collection_id: str
) -> list[StepPlan]:
    """(Ray task) The plugin's steps for ``parameters``: name, resource type, batch, concurrency
    (asked of the plugin in a sandboxed host)."""
    from mixpeek_orchestration.plugins.fetch import open_stored_plugin

    with open_stored_plugin(spec) as session:
        steps = session.steps(parameters, collection_id=collection_id)
        return [StepPlan(**step) for step in steps]  # type: ignore[typeddict-item]


class StepStage:
    """(Ray actor) One step of a plugin's pipeline, run by a sandboxed plugin host that this
    actor supervises; the plugin and its models load once per host.

    Blocks come and go as Arrow IPC, which the actor hands to its host without reading them. A
    host that crashes (a segfault, the OOM killer) or hangs fails the block it was given, row
    by row with ``plugin_host_crashed`` / ``plugin_timeout``, and is replaced for the next.
    """

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

        from mixpeek_orchestration.plugins.fetch import open_stored_plugin

        # Ray gives a 1-CPU actor one intra-op thread; a CPU step's actors share the node's
        # cores instead (the host sets it before the plugin imports its framework).
        threads = None
        if actors and os.environ.get("OMP_NUM_THREADS") == "1":
            threads = max(1, (os.cpu_count() or 1) // max(1, actors))
        self.session = open_stored_plugin(spec, collection_id=collection_id)
        self.stage = self.session.stage(
            parameters, index=index, steps=steps, collection_id=collection_id, threads=threads
        )

    def __call__(self, block: bytes) -> bytes:
        from mixpeek_orchestration.batch.steps import ERROR_COLUMN
        from mixpeek_orchestration.errors import ErrorCode, MixpeekError
        from mixpeek_orchestration.sandbox import channel

        try:
            return self.session.process_ipc(self.stage, block)
        except MixpeekError as exc:
            if exc.code not in (ErrorCode.PLUGIN_HOST_CRASHED, ErrorCode.PLUGIN_TIMEOUT):
                raise
            import pyarrow as pa

            table = channel.ipc_to_table(block)  # every row of the block fails with why
            why = pa.array([f"[{exc.code.value}] {exc.detail}"] * table.num_rows, pa.string())
            if ERROR_COLUMN in table.column_names:
                table = table.drop_columns([ERROR_COLUMN])
            return channel.table_to_ipc(table.append_column(ERROR_COLUMN, why))


class WarmStage(StepStage):
    """(Ray detached actor) A :class:`StepStage` that outlives the run which started it.

    It leaves by itself once it has had no work for ``idle_s``: no block in flight, none since
    the last one, and no run holding it (a run holds its stages from before its first block
    until its last, so a stage waiting for its first block never counts as idle). CPU and GPU
    stages compute one block at a time (their frameworks already use every core or the
    device); API stages take several.
    """

    def __init__(self, *args: Any, idle_s: float, exclusive: bool, **kwargs: Any) -> None:
        import threading

        super().__init__(*args, **kwargs)
        self.idle_s = idle_s
        self.lock = threading.Lock() if exclusive else None
        self.in_flight = 0
        self.batches = 0
        self.last_used = time.monotonic()
        self.holds: dict[str, float] = {}  # run -> until when (monotonic) it holds this stage
        threading.Thread(
            target=self._leave_when_idle, name="warm-stage-reaper", daemon=True
        ).start()

    def process(self, block: bytes) -> bytes:
        self.in_flight += 1
        try:
            if self.lock is None:
                return self(block)
            with self.lock:
                return self(block)
        finally:
            self.in_flight -= 1
            self.batches += 1
            self.last_used = time.monotonic()

    def hold(self, run: str, seconds: float) -> None:
        """Keep this stage for ``run`` (for at most ``seconds``, should the run vanish)."""
        self.holds[run] = time.monotonic() + seconds

    def release(self, run: str) -> None:
        self.holds.pop(run, None)
        self.last_used = time.monotonic()

    def info(self) -> dict[str, Any]:
        import os

        return {"pid": os.getpid(), "batches": self.batches, "idle_s": self.idle_for()}

    def idle_for(self) -> float:
        """Seconds without work (0 while a block is in flight or a run holds the stage)."""
        now = time.monotonic()
        self.holds = {run: until for run, until in self.holds.items() if until > now}
        if self.in_flight or self.holds:
            return 0.0
        return now - self.last_used

    def _leave_when_idle(self) -> None:
        import ray

        while True:
            time.sleep(max(0.5, min(self.idle_s / 4, 30.0)))
            if self.idle_for() > self.idle_s:
                logger.info("no work for %.0f s: this warm stage leaves", self.idle_s)
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return


def table_of(frame: pd.DataFrame) -> pa.Table:
    """The rows of a batch as Arrow, as plugins will see them (plain strings, no index)."""
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def _stream(table: pa.Table, steps: list[StepPlan], stages: list[list[Any]]) -> Iterator[pa.Table]:
    """Every block of ``table`` through every step's warm stages; processed blocks as they
    finish (in any order).

    Blocks are the first step's batch size (a later step with smaller batches slices them in
    its host). A block goes to the least loaded stage of each step, chained by object
    reference, so it moves from one step's actor to the next without coming back here; at most
    :data:`IN_FLIGHT_PER_ACTOR` blocks per actor of the widest step are in flight.
    """
    import ray

    from mixpeek_orchestration.sandbox import channel

    size = max(1, int(steps[0]["batch_size"]))
    window = IN_FLIGHT_PER_ACTOR * max(
        len(step) * (max(1, s["concurrency"]) if s["resource_type"] == "api" else 1)
        for step, s in zip(stages, steps, strict=True)
    )
    load = [[0] * len(step) for step in stages]
    in_flight: dict[Any, list[int]] = {}  # final reference -> the stage chosen at each step

    def done(ready: list[Any]) -> Iterator[pa.Table]:
        for ref in ready:
            for step, chosen in enumerate(in_flight.pop(ref)):
                load[step][chosen] -= 1
            yield channel.ipc_to_table(ray.get(ref))

    for start in range(0, table.num_rows, size):
        while len(in_flight) >= window:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            yield from done(ready)
        ref: Any = channel.table_to_ipc(table.slice(start, size))
        chosen = []
        for step, handles in enumerate(stages):
            pick = min(range(len(handles)), key=load[step].__getitem__)
            load[step][pick] += 1
            chosen.append(pick)
            ref = handles[pick].process.remote(ref)
        in_flight[ref] = chosen
    while in_flight:
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        yield from done(ready)


class IngestionEngine:
    """Runs ingestion batches on Ray Data (see the module docstring).

    Args:
        collections, registry, buckets, documents: the plane's repositories it reads and
            writes.
        vectors, objects, ray: the vector store, the object store (presigned URLs for the
            workers) and the Ray cluster it drives.
        step_plans: remembered ``build_steps`` answers.
        overrides: the operator's current overrides (read on every run).
        warm_idle_s: how long a step's warm actors wait for work before leaving.
        sandbox: how the actors' plugin hosts are sandboxed.
        plane: the dedicated tenant whose plane this is (``None``: the shared plane).
    """

    def __init__(
        self,
        *,
        collections: Collections,
        registry: PluginRegistry,
        buckets: Buckets,
        documents: Documents,
        vectors: VectorStore,
        objects: ObjectStore,
        ray: RayCluster,
        step_plans: StepPlans,
        overrides: Callable[[], Overrides],
        warm_idle_s: float,
        sandbox: SandboxConfig,
        plane: str | None = None,
    ) -> None:
        self.plane = plane
        self.collections = collections
        self.registry = registry
        self.buckets = buckets
        self.documents = documents
        self.vectors = vectors
        self.objects = objects
        self.ray = ray
        self.step_plans = step_plans
        self.overrides = overrides
        self.warm_idle_s = warm_idle_s
        self.sandbox = sandbox

    def _actor_options(
        self, step: StepPlan, gpus_in_cluster: float, batch_workers: bool = False
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
    def replicas(step: StepPlan) -> int:
        """Actors of a step: its concurrency for CPU / GPU; one actor for an API step, which
        takes ``concurrency`` batches at once."""
        return 1 if step["resource_type"] == "api" else max(1, step["concurrency"])

    def warm_stages(
        self,
        plan_key: str,
        spec: dict[str, Any],
        parameters: dict[str, Any],
        collection_id: str,
        steps: list[StepPlan],
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
        idle_s = self.warm_idle_s
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
            ray.get([h.info.remote() for h in handles], timeout=timeout_s)  # type: ignore[attr-defined]
        except ray.exceptions.GetTimeoutError:
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"the Ray cluster could not start this plugin's batch actors within {timeout_s:.0f}s "
                f"(they need {need}; free: {ray.available_resources()})",
            ) from None
        return names, len(missing), sum(len(n) for n in names) - len(missing)

    def _step_plan(
        self,
        version: PluginVersion,
        spec: dict[str, Any],
        parameters: dict[str, Any],
        collection_id: str,
    ) -> list[StepPlan]:
        """The plugin's steps for these parameters: asked once of a Ray task, then remembered
        (a version's archive never changes, so neither do its steps for given parameters)."""
        import ray

        key = plan_key(version["sha256"], parameters, collection_id)
        cached = self.step_plans.get(key)
        if cached is not None:
            return cached
        describe = ray.remote(num_cpus=0, max_calls=1)(_describe_steps)
        steps: list[StepPlan] = ray.get(describe.remote(spec, parameters, collection_id))  # type: ignore[arg-type]
        self.step_plans.put(
            key, steps, namespace_id=version["namespace_id"], plugin_id=version["plugin_id"]
        )
        return steps

    def _write_as_processed(
        self,
        report: IngestionReport,
        blocks: Iterator[pa.Table],
        *,
        collection: Collection,
        objects: dict[str, dict[str, Any]],
        output_fields: list[str],
        batch_id: str,
        run_id: str | None,
        started: float,
    ) -> None:
        """Write processed blocks as they come, in groups of :data:`WRITE_ROWS` or every
        :data:`WRITE_INTERVAL_S` (each vector upsert merges against its table, so fewer, larger
        ones cost less, and a slow plugin still shows documents as it goes), by one writer
        thread, so processing never waits on the stores; at most two groups are in flight,
        which bounds memory."""
        import pyarrow as pa

        def write(out: pa.Table) -> tuple[pa.Table, dict[str, int], float]:
            write_start = time.perf_counter()
            if self.collections.by_id(collection["collection_id"]) is None:
                # deleted (or its namespace) while the batch ran: write nothing of it
                raise RuntimeError(f"collection {collection['collection_id']} was deleted")
            counts = self.documents.write(
                collection,
                out,
                objects=objects,
                output_fields=output_fields,
                batch_id=batch_id,
                run_id=run_id,
            )
            if self.collections.by_id(collection["collection_id"]) is None:
                # deleted while this group was written: what the delete removed before the
                # write landed comes back out
                uris = self.collections.uris_in_use(collection["namespace_id"])
                self.documents.withdraw(collection, uris_in_use=uris)
                raise RuntimeError(f"collection {collection['collection_id']} was deleted")
            return out, counts, time.perf_counter() - write_start

        def account(done: Future[tuple[pa.Table, dict[str, int], float]]) -> None:
            out, counts, seconds = done.result()
            report.write_seconds += seconds
            report.completed += counts["completed"]
            report.failed += counts["failed"]
            report.vectors += counts["vectors"]
            if counts["failed"] and len(report.errors) < 20:
                errors = [e for e in out.column(ERROR_COLUMN).to_pylist() if e]
                report.errors += errors[: 20 - len(report.errors)]

        pending: list[pa.Table] = []
        last_flush = time.monotonic()
        in_flight: deque[Future[tuple[pa.Table, dict[str, int], float]]] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as writer:

            def flush() -> None:
                nonlocal last_flush
                last_flush = time.monotonic()
                if pending:
                    group = pa.concat_tables(pending, promote_options="permissive")
                    in_flight.append(writer.submit(write, group))
                    pending.clear()
                while len(in_flight) > 2:
                    account(in_flight.popleft())

            for out in blocks:
                if not report.first_block_s:
                    report.first_block_s = time.perf_counter() - started
                pending.append(out)
                if (
                    sum(t.num_rows for t in pending) >= WRITE_ROWS
                    or time.monotonic() - last_flush >= WRITE_INTERVAL_S
                ):
                    flush()
            flush()
            while in_flight:
                account(in_flight.popleft())

    def run(self, batch: IngestBatch, *, run_id: str | None = None) -> IngestionReport:
        """Process one ``ingest_batches`` record end to end; raises only when nothing ran."""
        import ray

        started = time.perf_counter()
        collection = self.collections.by_id(batch["collection_id"])
        if collection is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"collection {batch['collection_id']} no longer exists"
            )
        extractor = collection["feature_extractor"]
        version = self.registry.version_record(collection["namespace_id"], extractor["plugin_id"])
        if version is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"plugin {extractor['plugin_id']} no longer exists"
            )
        collection = collection | {"input_schema": version["manifest"].get("input_schema")}
        seq_range = (batch["first_seq"], batch["last_seq"]) if "first_seq" in batch else None
        objects = {
            o["object_id"]: o
            for o in self.buckets.objects_by_id(batch["object_ids"], seq_range=seq_range)
        }
        report = IngestionReport(
            batch_id=batch["batch_id"],
            collection_id=collection["collection_id"],
            plugin_id=extractor["plugin_id"],
            objects=len(objects),
        )
        frame = build_rows(collection, objects.values(), self.objects)
        report.rows = len(frame)
        if frame.empty:
            report.seconds = time.perf_counter() - started
            return report
        self.ray.connect()
        spec = plugin_spec(version, self.objects, self.sandbox, plane=self.plane)
        parameters = extractor.get("parameters") or {}
        steps = self._step_plan(version, spec, parameters, collection["collection_id"])
        overrides = self.overrides()
        name = extractor.get("feature_extractor_name") or version.get("name", "")
        overrides.require_enabled(name, consequence="nothing is ingested")
        actors = overrides.for_extractor(name).max_concurrency
        if actors is not None:  # the operator sizes this extractor's batch actor pools
            steps = [StepPlan(**(s | {"concurrency": actors})) for s in steps]
        report.steps = steps
        if not steps:
            raise MixpeekError(ErrorCode.INVALID_PLUGIN, f"{extractor['plugin_id']} built no steps")
        output_fields = list((version["manifest"].get("output_schema") or {}).get("properties", {}))
        processing = time.perf_counter()  # from here: actors (cold or warm), blocks, writes
        report.processing_started_at = time.time()
        names, report.actors_started, report.actors_reused = self.warm_stages(
            plan_key(version["sha256"], parameters, collection["collection_id"]),
            spec,
            parameters,
            collection["collection_id"],
            steps,
        )
        # looked up per run: a stage that left since the last one was started again
        stages = [[ray.get_actor(n, namespace=WARM_NAMESPACE) for n in step] for step in names]
        hold = run_id or batch["batch_id"]
        ray.get([h.hold.remote(hold, HOLD_S) for step in stages for h in step])
        try:
            self._write_as_processed(
                report,
                _stream(table_of(frame), steps, stages),
                collection=collection,
                objects=objects,
                output_fields=output_fields,
                batch_id=batch["batch_id"],
                run_id=run_id,
                started=processing,
            )
        finally:
            for step in stages:
                for h in step:
                    h.release.remote(hold)
        report.processing_seconds = time.perf_counter() - processing
        for feature, uri in zip(collection["features"], collection["feature_uris"], strict=True):
            self.vectors.ensure_index(
                vector_table(collection["namespace_id"], uri),
                metric=metric_of(feature),
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
