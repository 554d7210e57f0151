"""The step runner: row routing, failure isolation, output validation."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from mixpeek_orchestration.batch.rows import sample_batch
from mixpeek_orchestration.batch.steps import ERROR_COLUMN, PipelineRunner, StepExecutor, arrow_safe
from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)
from mixpeek_orchestration.sdk._manifest import manifest_from_namespace


class In(BaseModel):
    text: str


class Out(BaseModel):
    embedding: list[float]
    label: str


def manifest(dim: int = 3) -> Any:
    return manifest_from_namespace(
        {
            "metadata": {"feature_extractor_name": "t", "version": "1", "category": "text"},
            "input_schema": In,
            "output_schema": Out,
            "supported_input_types": ["text", "image"],
            "features": [
                {"feature_name": "vec", "feature_type": "embedding", "embedding_dim": dim}
            ],
        }
    )


class Embed:
    """Fails on rows whose text contains 'boom'; counts constructions and calls."""

    constructed = 0

    def __init__(self, config: Any = None, progress_actor: Any = None) -> None:
        Embed.constructed += 1
        self.calls = 0
        self.config = config or {}

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        if any("boom" in t for t in batch["text"]):
            raise ValueError("cannot embed boom")
        dim = self.config.get("dim", 3)
        value = self.config.get("value", 1.0)
        batch["vec"] = [[value] * dim for _ in range(len(batch))]
        batch["label"] = "ok"
        return batch


def steps(
    config: dict[str, Any] | None = None,
    condition: RowCondition = RowCondition.IS_TEXT,
    cls: type = Embed,
) -> list[Any]:
    return build_pipeline_steps(
        PipelineDefinition("t", "1", [StepDefinition(cls, config=config, condition=condition)])
    )


def records(texts: list[str]) -> list[dict[str, Any]]:
    return [{"data": t, "mime_type": "text/plain"} for t in texts]


def test_only_failing_rows_fail_and_the_model_loads_once() -> None:
    Embed.constructed = 0
    m = manifest()
    batch = sample_batch(records(["a", "b", "boom 1", "c", "d", "boom 2", "e", "f"]), m)
    out, report = PipelineRunner(steps(), m).run(batch)
    assert report.rows_ok == 6 and report.rows_failed == 2
    failed = out[out[ERROR_COLUMN].notna()]
    assert failed["text"].tolist() == ["boom 1", "boom 2"]
    assert all("cannot embed boom" in e for e in failed[ERROR_COLUMN])
    assert Embed.constructed == 1
    assert out.loc[0, "vec"] == [1.0, 1.0, 1.0]


def test_row_conditions_route_rows_and_unprocessed_rows_are_errors() -> None:
    m = manifest()
    rows = records(["a"]) + [{"data": "/tmp/x.png", "mime_type": "image/png"}]
    out, report = PipelineRunner(steps(), m).run(sample_batch(rows, m))
    assert report.rows_ok == 1
    assert "no step processed this row" in out.loc[1, ERROR_COLUMN]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"dim": 4}, "dimension 4, manifest declares 3"),
        ({"value": math.nan}, "non-finite"),
        ({"value": math.inf}, "non-finite"),
    ],
)
def test_outputs_are_checked_against_features(config: dict[str, Any], problem: str) -> None:
    m = manifest()
    out, report = PipelineRunner(steps(config), m).run(sample_batch(records(["a", "b"]), m))
    assert report.rows_failed == 2
    assert problem in out.loc[0, ERROR_COLUMN]


class DropsRows(Embed):
    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return super().__call__(batch).iloc[:1]


class Forgets(Embed):
    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return batch  # silently produces no vectors


class Reorders(Embed):
    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return super().__call__(batch).iloc[::-1]


@pytest.mark.parametrize(
    ("cls", "problem"),
    [
        (DropsRows, "it must keep every row"),
        (Forgets, "has no output column value"),
        (Reorders, "reordered"),
    ],
)
def test_contract_breaches_fail_rows_not_silently(cls: type, problem: str) -> None:
    m = manifest()
    out, report = PipelineRunner(steps(cls=cls), m).run(sample_batch(records(["a", "b"]), m))
    assert report.rows_ok == 0
    assert all(problem in e for e in out[ERROR_COLUMN])


def test_output_schema_is_checked_with_embedding_alias() -> None:
    class NoLabel(Embed):
        def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
            out = super().__call__(batch)
            return out.drop(columns=["label"])

    m = manifest()
    out, _ = PipelineRunner(steps(cls=NoLabel), m).run(sample_batch(records(["a"]), m))
    assert "output_schema: label" in out.loc[0, ERROR_COLUMN]
    assert "embedding" not in out.loc[0, ERROR_COLUMN]  # satisfied by the 'vec' feature


def test_gpu_step_without_gpu_runs_on_cpu_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    step = build_pipeline_steps(
        PipelineDefinition("t", "1", [StepDefinition(Embed, ResourceType.GPU)])
    )[0]
    with caplog.at_level(logging.WARNING):
        executor = StepExecutor(step)
    assert executor.device == "cpu"
    assert "running it on CPU" in caplog.text


def test_batch_shape_follows_the_contract() -> None:
    m = manifest()
    batch = sample_batch(records(["hello"]) + [{"url": "/tmp/a.png"}], m)
    assert list(batch.columns[:10]) == [
        "data", "document_id", "object_id", "blob_id", "blob_property", "blob_type",
        "collection_id", "feature_extractor_id", "mime_type", "size_bytes",
    ]  # fmt: skip
    assert batch.loc[0, "text"] == "hello" and batch.loc[0, "size_bytes"] == 0
    assert batch.loc[1, "blob_type"] == "image" and batch.loc[1, "mime_type"] == "image/png"


def test_vectors_become_lists_so_failed_rows_still_convert() -> None:
    frame = pd.DataFrame({"v": [np.ones(3, dtype=np.float32), None], "label": ["a", None]})
    out = arrow_safe(frame)
    assert out["v"].tolist() == [[1.0, 1.0, 1.0], None]
