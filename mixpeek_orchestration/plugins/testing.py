"""``mixpeek plugin test``: run a plugin locally exactly as the platform would.

The plugin runs in a sandboxed plugin host, the same as in batch ingestion and realtime
replicas, through the same :class:`PluginRuntime` and step runner (isolated namespace, runtime
guard, row conditions, output validation), on sample rows; then its realtime handler is called.
Both outputs are checked against ``output_schema`` and ``features`` (dimensions, finite values).
Timings are reported.

:func:`test_plugin` is the platform side (it starts the host, hands it the sample rows and their
files); :func:`run_plugin_test` is what runs inside the host.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.batch.rows import (
    URL_FIELDS,
    load_sample_file,
    sample_batch,
    sample_records,
)
from mixpeek_orchestration.batch.steps import ERROR_COLUMN, OutputValidator, _vector_problems
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.sdk._context import PluginContext

if TYPE_CHECKING:
    from mixpeek_orchestration.models.namespace import ModelSource
    from mixpeek_orchestration.sandbox.config import SandboxConfig


@dataclass
class RealtimeCheck:
    calls: int = 0
    p50_ms: float | None = None
    first_call_ms: float | None = None
    problems: list[str] = field(default_factory=list)
    sample_output: dict[str, Any] | None = None


@dataclass
class PluginTestReport:
    plugin_id: str
    feature_uris: list[str]
    load_s: float
    rows: int
    rows_ok: int
    rows_failed: int
    batch_s: float
    first_batch_s: float | None
    rows_per_s: float
    row_errors: list[str]
    realtime: RealtimeCheck | None

    @property
    def passed(self) -> bool:
        realtime_ok = self.realtime is None or not self.realtime.problems
        return self.rows_failed == 0 and self.rows > 0 and realtime_ok

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """The report as JSON (``full``: with what :meth:`from_dict` needs back)."""
        realtime = None
        if self.realtime is not None:
            realtime = {
                "calls": self.realtime.calls,
                "p50_ms": self.realtime.p50_ms,
                "first_call_ms": self.realtime.first_call_ms,
                "problems": self.realtime.problems,
            } | ({"sample_output": self.realtime.sample_output} if full else {})
        return {
            "passed": self.passed,
            "plugin_id": self.plugin_id,
            "feature_uris": self.feature_uris,
            "load_s": round(self.load_s, 3),
            "rows": self.rows,
            "rows_ok": self.rows_ok,
            "rows_failed": self.rows_failed,
            "row_errors": self.row_errors,
            "batch_s": round(self.batch_s, 3),
            "first_batch_s": round(self.first_batch_s, 3)
            if self.first_batch_s is not None
            else None,
            "rows_per_s": round(self.rows_per_s, 1),
            "realtime": realtime,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PluginTestReport:
        realtime = raw.get("realtime")
        return cls(
            plugin_id=raw["plugin_id"],
            feature_uris=raw["feature_uris"],
            load_s=raw["load_s"],
            rows=raw["rows"],
            rows_ok=raw["rows_ok"],
            rows_failed=raw["rows_failed"],
            batch_s=raw["batch_s"],
            first_batch_s=raw["first_batch_s"],
            rows_per_s=raw["rows_per_s"],
            row_errors=raw["row_errors"],
            realtime=RealtimeCheck(**realtime) if realtime is not None else None,
        )


def realtime_sample(record: dict[str, Any], input_fields: list[str]) -> dict[str, Any]:
    """Inputs for a realtime call built from a sample row."""
    data = record["data"]
    if record.get("blob_type", "text") == "text" or str(record.get("mime_type", "")).startswith(
        "text/"
    ):
        inputs = {"text": data}
    else:
        inputs = {"url": data, "path": data}
    for name in input_fields:
        inputs.setdefault(name, data)
    return inputs


def check_realtime_output(output: dict[str, Any], validator: OutputValidator) -> list[str]:
    """The primary vector is ``embedding``: it must match the first embedding feature."""
    manifest = validator.manifest
    problems = []
    primary = manifest.embedding_features
    if primary:
        if "embedding" not in output:
            problems.append("realtime output has no 'embedding'")
        else:
            problems += _vector_problems("embedding", output["embedding"], primary[0].embedding_dim)
    if any(name in output for name in manifest.output_schema.model_fields):
        from pydantic import ValidationError

        try:
            manifest.output_schema.model_validate(output)
        except ValidationError as exc:
            for error in exc.errors():
                if error["type"] == "missing":
                    continue  # realtime answers may omit batch-only fields
                problems.append(
                    f"output_schema: {'.'.join(map(str, error['loc']))}: {error['msg']}"
                )
    return problems


def test_plugin(
    root: Path,
    *,
    sandbox: SandboxConfig,
    sample_data: Path | None = None,
    parameters: dict[str, Any] | None = None,
    realtime_calls: int = 5,
    allowed_hosts: tuple[str, ...] = (),
    models_dir: Path | None = None,
) -> PluginTestReport:
    """Run :func:`run_plugin_test` in a sandboxed host over the plugin at ``root``.

    Sample rows that name local files (images, audio...) have those files copied into the
    host's scratch, the only place it sees them.

    Raises:
        MixpeekError: when the plugin cannot be loaded or its steps cannot be built.
    """
    from mixpeek_orchestration.models.namespace import LocalModelDirectory
    from mixpeek_orchestration.plugins.session import PluginSession

    models = LocalModelDirectory(models_dir) if models_dir is not None else None
    with PluginSession.start(
        root, sandbox=sandbox, allowed_hosts=allowed_hosts, models=models
    ) as session:
        records = None
        if sample_data is not None:
            records = _staged(load_sample_file(sample_data), session)
        report = session.test(
            records=records,
            parameters=parameters,
            realtime_calls=realtime_calls,
            allowed_hosts=list(allowed_hosts),
        )
    return PluginTestReport.from_dict(report)


def _staged(records: list[dict[str, Any]], session: Any) -> list[dict[str, Any]]:
    """Sample records whose local files are copied into the host's scratch (and named by
    where the host sees them)."""
    import shutil

    samples = session.host.spec.scratch_dir / "work" / "samples"
    inside = f"{session.scratch_inside}/work/samples"
    out = []
    for index, record in enumerate(records):
        record = dict(record)
        for key, value in record.items():
            if key in URL_FIELDS and isinstance(value, str) and Path(value).is_file():
                samples.mkdir(parents=True, exist_ok=True)
                name = f"{index}-{Path(value).name}"
                shutil.copyfile(value, samples / name)
                record[key] = f"{inside}/{name}"
        out.append(record)
    return out


def run_plugin_test(
    root: Path,
    *,
    records: list[dict[str, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
    realtime_calls: int = 5,
    allowed_hosts: tuple[str, ...] = (),
    models: ModelSource | None = None,
    proxy: tuple[str, int] | None = None,
    scratch: Path | None = None,
) -> PluginTestReport:
    """Load the plugin, run its pipeline on sample rows and call its realtime handler (in this
    process: the plugin host's).

    Raises:
        MixpeekError: when the plugin cannot be loaded or its steps cannot be built.
    """
    from mixpeek_orchestration.plugins.runtime import PluginRuntime

    scratch = scratch or Path(tempfile.mkdtemp(prefix="mixpeek-test-"))
    start = time.perf_counter()
    runtime = PluginRuntime.open(
        root,
        context=PluginContext(scratch_dir=scratch),
        allowed_hosts=allowed_hosts,
        models=models,
        proxy=proxy,
        dedicated_process=True,
    )
    load_s = time.perf_counter() - start
    manifest = runtime.manifest
    records = records or sample_records(manifest, scratch / "samples")
    runner, built = runtime.pipeline(parameters)
    batch = sample_batch(records, manifest)
    from mixpeek_orchestration.batch.steps import apply_prepare

    batch = apply_prepare(built.prepare, batch)
    out, report = runner.run(batch)
    first = [
        s.first_call_seconds for s in report.steps.values() if s.first_call_seconds is not None
    ]
    # The first pass includes model loading; time a second, warm pass for throughput.
    _, warm = runner.run(sample_batch(records, manifest))
    errors = [str(e) for e in out[ERROR_COLUMN].tolist() if e is not None]

    realtime = None
    adapter = runtime.realtime()
    if adapter is not None:
        realtime = RealtimeCheck()
        inputs = realtime_sample(dict(batch.iloc[0]), list(manifest.input_schema.model_fields))
        latencies = []
        try:
            for _ in range(max(realtime_calls, 1)):
                call_start = time.perf_counter()
                output = adapter.call_sync(inputs)
                latencies.append((time.perf_counter() - call_start) * 1e3)
            realtime.sample_output = {
                k: (f"[{len(v)} values]" if isinstance(v, list) else v) for k, v in output.items()
            }
            realtime.problems = check_realtime_output(output, runner.validator)
        except MixpeekError as exc:
            realtime.problems = [exc.detail]
        except Exception as exc:
            realtime.problems = [f"realtime handler raised {type(exc).__name__}: {exc}"]
        realtime.calls = len(latencies)
        if latencies:
            realtime.first_call_ms = round(latencies[0], 2)
            steady = latencies[1:] or latencies
            realtime.p50_ms = round(statistics.median(steady), 2)
    runtime.plugin.unload()
    return PluginTestReport(
        plugin_id=manifest.plugin_id,
        feature_uris=manifest.feature_uris,
        load_s=load_s,
        rows=report.rows,
        rows_ok=report.rows_ok,
        rows_failed=report.rows_failed,
        batch_s=report.seconds,
        first_batch_s=max(first) if first else None,
        rows_per_s=warm.rows_per_s if not math.isinf(warm.rows_per_s) else 0.0,
        row_errors=errors[:20],
        realtime=realtime,
    )
