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
from collections.abc import Callable, Iterable, Mapping
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
from mixpeek_orchestration.compute.resources import BATCH_RESOURCE, WARM_NAMESPACE, make_room
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.documents import document_id, vector_table
from mixpeek_orchestration.ingest.step_plans import StepPlan, StepPlans, plan_key
from mixpeek_orchestration.plugins.fetch import plugin_spec
from mixpeek_orchestration.storage.vectors import metric_of

if TYPE_CHECKING:
    import pandas as pd

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
BLOCK_ROWS = 64  # rows per Ray Data block
WRITE_ROWS = 1024  # rows per write to the stores (documents bulk upsert, vectors merge)
FORWARD_CPUS = 0  # a task handing a block to a warm actor only waits on it: it must never
# queue behind the CPUs that warm actors and Serve replicas hold
WRITE_INTERVAL_S = 2.0  # ... or whatever arrived in this long, so slow plugins show progress
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


def blob_rows(
    collection: Collection, objects: Iterable[dict[str, Any]], store: ObjectStore
) -> list[BlobRow]:
    """The blobs of ``objects`` this collection processes, with their ``data``: inline text,
    a stored text / JSON file's text, or a presigned URL of a stored binary file."""
    extractor = collection["feature_extractor"]
    mapped = set((extractor.get("input_mappings") or {}).values())
    rows = []
    for obj in objects:
        for blob in obj["blobs"]:
            if not accepts(collection, blob["type"]) or (mapped and blob["property"] not in mapped):
                continue
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

    A host that crashes (a segfault, the OOM killer) or hangs fails the batch it was given, row
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
        self.session = open_stored_plugin(spec)
        self.stage = self.session.stage(
            parameters, index=index, steps=steps, collection_id=collection_id, threads=threads
        )

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from mixpeek_orchestration.batch.steps import ERROR_COLUMN
        from mixpeek_orchestration.errors import ErrorCode, MixpeekError

        try:
            return self.session.process(self.stage, batch)
        except MixpeekError as exc:
            if exc.code not in (ErrorCode.PLUGIN_HOST_CRASHED, ErrorCode.PLUGIN_TIMEOUT):
                raise
            failed = batch.copy()  # every row of the batch fails with why
            failed[ERROR_COLUMN] = f"[{exc.code.value}] {exc.detail}"
            return failed


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
    ) -> None:
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
        spec = plugin_spec(version, self.objects, self.sandbox)
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
        # blocks built here, not by a Ray task per block as ``from_pandas`` does: each task
        # type of a new job boots Ray workers, which on a small node costs more than the rows
        dataset: Any = ray.data.from_items(
            frame.to_dict("records"), override_num_blocks=-(-len(frame) // BLOCK_ROWS)
        )
        for step, step_names in zip(steps, names, strict=True):
            # light tasks hand blocks to the warm actors, enough of them that each actor has
            # its next batch queued while it computes
            queued = step["concurrency"] if step["resource_type"] == "api" else 1
            dataset = dataset.map_batches(
                _forward,  # type: ignore[arg-type]
                fn_kwargs={"names": step_names},
                batch_format="pandas",
                batch_size=step["batch_size"],
                num_cpus=FORWARD_CPUS,
                concurrency=2 * len(step_names) * max(1, queued),
            )

        def write(out: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int], float]:
            write_start = time.perf_counter()
            counts = self.documents.write(
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
