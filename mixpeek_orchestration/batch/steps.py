"""The step runner: runs a plugin's steps over pandas batches and checks what they produce.

The same classes run a plugin locally (``mixpeek plugin test``) and inside Ray Data actors during
ingestion, so a plugin that passes its local test behaves the same in production:

* :class:`StepExecutor` constructs one processor (models load once) and calls it on the rows its
  :class:`RowCondition` selects, under the runtime guard; a failing batch is split until the
  failing rows are isolated, and only those rows carry the error.
* :class:`OutputValidator` checks every processed row against the manifest: each feature's
  column exists, embeddings have the declared dimension and finite values, and the row
  validates against ``output_schema``.

Rows carry their outcome in two columns: ``_error`` (``None`` or a message) and ``_steps`` (how
many steps processed the row).
"""

from __future__ import annotations

import inspect
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mixpeek_orchestration.sandbox.guard import GuardPolicy, guarded, sandbox_refusal
from mixpeek_orchestration.sdk._context import PluginContext, use_context
from mixpeek_orchestration.sdk._pipeline import PipelineStep, ResourceType

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mixpeek_orchestration.sdk._manifest import PluginManifest

logger = logging.getLogger(__name__)

ERROR_COLUMN = "_error"
INVALID_OUTPUT = "invalid output: "
_CODE = re.compile(r"\[([a-z_]+)\]")
STEPS_COLUMN = "_steps"
BASE_COLUMNS = (
    "data", "document_id", "object_id", "blob_id", "blob_property", "blob_type",
    "collection_id", "feature_extractor_id", "mime_type", "size_bytes",
)  # fmt: skip


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _construct(step: PipelineStep) -> Any:
    cls = step.service_class
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    if "progress_actor" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(step.config, progress_actor=None)
    if params:
        return cls(step.config)
    return cls()


@dataclass
class StepStats:
    rows_in: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    calls: int = 0
    seconds: float = 0.0
    first_call_seconds: float | None = None


class StepExecutor:
    """One step of a pipeline, ready to be called on batches.

    Args:
        step: the resolved step.
        guard: runtime guard policy for the processor's code.
        context: plugin context made current during construction and calls.
    """

    def __init__(
        self,
        step: PipelineStep,
        *,
        guard: GuardPolicy | None = None,
        context: PluginContext | None = None,
    ) -> None:
        self.step = step
        self.guard = guard
        self.context = context or PluginContext()
        self.stats = StepStats()
        self.device = "cpu"
        if step.resource_type is ResourceType.GPU:
            if gpu_available():
                self.device = "cuda"
            else:
                logger.warning(
                    "step %s asks for a GPU but none is available: running it on CPU", step.name
                )
        with use_context(self.context), guarded(self.guard):
            self.processor = _construct(step)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        batch = _ensure_outcome_columns(batch)
        ok = batch[ERROR_COLUMN].isna().to_numpy()
        selected = self.step.condition.mask(batch["mime_type"]).to_numpy() & ok
        positions = np.flatnonzero(selected)
        self.stats.rows_in += len(positions)
        if len(positions) == 0:
            return batch
        subset = batch.iloc[positions].reset_index(drop=True)
        outputs, errors = self._run_isolating_failures(subset)
        result = batch.copy()
        for column in outputs.columns:
            if column in (ERROR_COLUMN, STEPS_COLUMN):
                continue
            values = (
                result[column].to_numpy(dtype=object, copy=True)
                if column in result.columns
                else np.full(len(result), None, dtype=object)
            )
            values[positions] = outputs[column].to_numpy(dtype=object)
            result[column] = values
        error_values = result[ERROR_COLUMN].to_numpy(dtype=object, copy=True)
        steps_values = result[STEPS_COLUMN].to_numpy(copy=True)
        for offset, position in enumerate(positions):
            if errors[offset] is not None:
                error_values[position] = f"{self.step.name}: {errors[offset]}"
            else:
                steps_values[position] += 1
        result[ERROR_COLUMN] = pd.Series(error_values, index=result.index, dtype=object)
        result[STEPS_COLUMN] = steps_values
        failed = sum(e is not None for e in errors)
        self.stats.rows_failed += failed
        self.stats.rows_ok += len(positions) - failed
        return result

    def _call(self, rows: pd.DataFrame) -> pd.DataFrame:
        start = time.perf_counter()
        with use_context(self.context), guarded(self.guard):
            out = self.processor(rows.copy())
        elapsed = time.perf_counter() - start
        self.stats.calls += 1
        self.stats.seconds += elapsed
        if self.stats.first_call_seconds is None:
            self.stats.first_call_seconds = elapsed
        _check_shape(rows, out)
        return out

    def _run_isolating_failures(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str | None]]:
        """Call the processor on ``rows``; when it fails, bisect to find the failing rows."""
        import pandas as pd

        errors: list[str | None] = [None] * len(rows)
        pieces: list[tuple[int, pd.DataFrame]] = []
        pending = [(0, len(rows))]
        while pending:
            start, stop = pending.pop()
            chunk = rows.iloc[start:stop].reset_index(drop=True)
            try:
                pieces.append((start, self._call(chunk)))
            except ContractError as exc:
                for index in range(start, stop):
                    errors[index] = _describe(exc)
                pieces.append((start, chunk))
            except Exception as exc:
                if stop - start == 1:
                    errors[start] = _describe(exc)
                    pieces.append((start, chunk))
                else:
                    middle = (start + stop) // 2
                    pending += [(middle, stop), (start, middle)]
        pieces.sort(key=lambda piece: piece[0])
        combined = pd.concat([p for _, p in pieces], ignore_index=True, sort=False)
        return combined, errors


class ContractError(Exception):
    """A processor broke the batch contract (rows dropped, added or reordered, not a DataFrame).

    Not row-specific, so the runner fails the whole batch instead of bisecting it.
    """


def _describe(exc: BaseException) -> str:
    """A row's error: ``[code] Type: detail`` for the platform's refusals (the guard's, the
    sandbox's), ``Type: detail`` for anything the plugin raised."""
    refusal = sandbox_refusal(exc)
    if refusal is not None:
        exc = refusal
    detail = getattr(exc, "detail", None) or str(exc)
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    code = getattr(exc, "code", None)
    if code is not None and getattr(code, "value", "").startswith("blocked_by_"):
        return f"[{code.value}] {text}"
    return text


def error_code(message: str) -> str:
    """The stable code of a row's error: the ``[code]`` it carries (``blocked_by_sandbox``,
    ``blocked_by_guard``, ``plugin_host_crashed``...), ``output_invalid`` for an output that
    broke the manifest, else ``plugin_runtime_error`` (the plugin raised)."""
    match = _CODE.search(message)
    if match is not None:
        return match.group(1)
    return "output_invalid" if message.startswith(INVALID_OUTPUT) else "plugin_runtime_error"


def _check_shape(rows: pd.DataFrame, out: Any) -> None:
    import pandas as pd

    if not isinstance(out, pd.DataFrame):
        raise ContractError(f"processor returned {type(out).__name__}, expected a pandas DataFrame")
    if len(out) != len(rows):
        raise ContractError(
            f"processor returned {len(out)} rows for {len(rows)}; it must keep every row"
        )
    same_ids = "document_id" not in rows.columns or "document_id" not in out.columns
    if not same_ids and list(out["document_id"]) != list(rows["document_id"]):
        raise ContractError("processor reordered or replaced rows; it must keep their order")


def _ensure_outcome_columns(batch: pd.DataFrame) -> pd.DataFrame:
    if ERROR_COLUMN in batch.columns and STEPS_COLUMN in batch.columns:
        return batch
    batch = batch.copy()
    if ERROR_COLUMN not in batch.columns:
        batch[ERROR_COLUMN] = None
        batch[ERROR_COLUMN] = batch[ERROR_COLUMN].astype(object)
    if STEPS_COLUMN not in batch.columns:
        batch[STEPS_COLUMN] = 0
    return batch


@dataclass
class OutputValidator:
    """Checks processed rows against the manifest's ``features`` and ``output_schema``."""

    manifest: PluginManifest
    stats: dict[str, int] = field(default_factory=lambda: {"rows_ok": 0, "rows_failed": 0})

    def row_problems(self, row: dict[str, Any]) -> list[str]:
        problems = []
        for feature in self.manifest.features:
            if feature.feature_name not in row or _missing(row[feature.feature_name]):
                problems.append(f"feature {feature.feature_name!r} has no output column value")
                continue
            if feature.feature_type == "embedding":
                problems += _vector_problems(
                    feature.feature_name, row[feature.feature_name], feature.embedding_dim
                )
        if problems:
            return problems
        payload = self.schema_payload(row)
        try:
            self.manifest.output_schema.model_validate(payload)
        except ValidationError as exc:
            for error in exc.errors():
                loc = ".".join(str(p) for p in error["loc"])
                problems.append(f"output_schema: {loc}: {error['msg']}")
        return problems

    def schema_payload(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row's values for ``output_schema``; ``embedding`` names the primary vector."""
        fields = self.manifest.output_schema.model_fields
        payload = {
            name: _plain(row[name]) for name in fields if name in row and not _missing(row[name])
        }
        primary = self.manifest.embedding_features
        if "embedding" in fields and "embedding" not in payload and primary:
            value = row.get(primary[0].feature_name)
            if not _missing(value):
                payload["embedding"] = _plain(value)
        return payload

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        batch = _ensure_outcome_columns(batch)
        errors = batch[ERROR_COLUMN].to_numpy(dtype=object, copy=True)
        steps = batch[STEPS_COLUMN].to_numpy()
        for position, row in enumerate(batch.to_dict("records")):
            if errors[position] is not None:
                self.stats["rows_failed"] += 1
                continue
            if steps[position] == 0:
                problems = [f"no step processed this row (mime type {row.get('mime_type')!r})"]
            else:
                problems = self.row_problems(row)
            if problems:
                errors[position] = INVALID_OUTPUT + "; ".join(problems)
                self.stats["rows_failed"] += 1
            else:
                self.stats["rows_ok"] += 1
        result = batch.copy()
        result[ERROR_COLUMN] = pd.Series(errors, index=result.index, dtype=object)
        return result


def _missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and math.isnan(value)


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _vector_problems(name: str, value: Any, dim: int | None) -> list[str]:
    import numpy as np

    try:
        vector: np.ndarray = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return [f"feature {name!r} is not a numeric vector"]
    if vector.ndim != 1:
        return [f"feature {name!r} has shape {vector.shape}, expected a flat vector"]
    problems = []
    if dim is not None and vector.shape[0] != dim:
        problems.append(
            f"feature {name!r} has dimension {vector.shape[0]}, manifest declares {dim}"
        )
    if not np.all(np.isfinite(vector)):
        problems.append(f"feature {name!r} has non-finite values")
    return problems


@dataclass
class RunReport:
    """Outcome of running a pipeline over rows."""

    rows: int
    rows_ok: int
    rows_failed: int
    seconds: float
    steps: dict[str, StepStats]

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class PipelineRunner:
    """All steps of a built pipeline plus output validation, over pandas batches."""

    def __init__(
        self,
        steps: Iterable[PipelineStep],
        manifest: PluginManifest,
        *,
        guard: GuardPolicy | None = None,
        context: PluginContext | None = None,
    ) -> None:
        self.executors = [StepExecutor(s, guard=guard, context=context) for s in steps]
        self.validator = OutputValidator(manifest)

    def run(
        self, batch: pd.DataFrame, *, batch_size: int | None = None
    ) -> tuple[pd.DataFrame, RunReport]:
        """Run every step over ``batch`` (in slices of each step's batch size) and validate."""
        import pandas as pd

        start = time.perf_counter()
        current = _ensure_outcome_columns(batch.reset_index(drop=True))
        for executor in self.executors:
            size = batch_size or executor.step.batch_size
            slices = [current.iloc[i : i + size] for i in range(0, len(current), size)] or [current]
            current = pd.concat([executor(s) for s in slices], ignore_index=True, sort=False)
        current = self.validator(current)
        failed = int(current[ERROR_COLUMN].notna().sum())
        report = RunReport(
            rows=len(current),
            rows_ok=len(current) - failed,
            rows_failed=failed,
            seconds=time.perf_counter() - start,
            steps={e.step.name: e.stats for e in self.executors},
        )
        return current, report


def apply_prepare(prepare: Callable[[Any], Any] | None, batch: pd.DataFrame) -> pd.DataFrame:
    """Apply a plugin's ``prepare`` hook to a pandas batch locally.

    In ingestion ``prepare`` receives the Ray Dataset; locally it receives the DataFrame. Hooks
    written for the hosted product (``lambda ds: ds``) work with both.
    """
    if prepare is None:
        return batch
    result = prepare(batch)
    return batch if result is None else result


def arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Vectors as plain lists, so a batch with failed rows (no vector) still converts to Arrow."""
    import numpy as np

    for column in frame.columns:
        if frame[column].dtype == object and any(
            isinstance(v, np.ndarray) for v in frame[column].head(64)
        ):
            frame[column] = [v.tolist() if isinstance(v, np.ndarray) else v for v in frame[column]]
    return frame
