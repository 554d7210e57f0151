"""The supervisor replaces a host that crashed or hung; the request it held fails clearly."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.session import PluginSession
from mixpeek_orchestration.sandbox.config import SandboxConfig
from tests.unit.sandbox.test_attacks import batch_of

BACKEND = "bwrap" if shutil.which("bwrap") else "none"

MANIFEST = """
from pydantic import BaseModel


class In(BaseModel):
    text: str


class Out(BaseModel):
    embedding: list[float]


metadata = {"feature_extractor_name": "fragile", "version": "1.0.0", "category": "text"}
input_schema = In
output_schema = Out
supported_input_types = ["text"]
features = [{"feature_name": "fragile_embedding", "feature_type": "embedding", "embedding_dim": 2}]
"""
PIPELINE = """
import os
import time

from mixpeek_orchestration.sdk import PipelineDefinition, StepDefinition, build_pipeline_steps


class Fragile:
    def __init__(self, config=None, progress_actor=None):
        pass

    def __call__(self, batch):
        for text in batch["text"]:
            if text == "crash":
                os._exit(3)
            if text == "hang":
                time.sleep(3600)
        batch["fragile_embedding"] = [[1.0, 0.0] for _ in range(len(batch))]
        return batch


def build_steps(extractor_request, container=None, base_steps=None, **kwargs):
    step = StepDefinition(service_class=Fragile, config={})
    return {"steps": build_pipeline_steps(PipelineDefinition(name="fragile", version="1.0.0", steps=[step]))}
"""


@pytest.fixture
def fragile(tmp_path: Path) -> Path:
    root = tmp_path / "fragile"
    root.mkdir()
    (root / "manifest.py").write_text(textwrap.dedent(MANIFEST))
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    return root


def test_a_crashed_host_fails_its_batch_and_is_replaced_set_up_again(fragile: Path) -> None:
    with PluginSession.start(fragile, sandbox=SandboxConfig(backend=BACKEND)) as session:
        session.open(org_id="o", namespace_id="n")
        stage = session.stage({}, index=0, steps=1)
        first_pid = session.host.process.pid  # type: ignore[union-attr]
        with pytest.raises(MixpeekError) as crashed:
            session.process(stage, batch_of(["fine", "crash"]))
        assert crashed.value.code is ErrorCode.PLUGIN_HOST_CRASHED
        assert "exited with status 3" in crashed.value.detail
        out = session.process(stage, batch_of(["fine"]))  # a new host, opened and staged again
        assert out["_error"].isna().all()
        assert session.host.starts == 2 and session.host.process.pid != first_pid  # type: ignore[union-attr]


def test_a_hung_host_is_stopped_after_its_time_limit(fragile: Path) -> None:
    sandbox = SandboxConfig(backend=BACKEND, timeout_s=3)
    with PluginSession.start(fragile, sandbox=sandbox) as session:
        session.open(org_id="o", namespace_id="n")
        stage = session.stage({}, index=0, steps=1)
        with pytest.raises(MixpeekError) as hung:
            session.process(stage, batch_of(["hang"]))
        assert hung.value.code is ErrorCode.PLUGIN_TIMEOUT
        assert not session.host.alive
        assert isinstance(session.process(stage, batch_of(["fine"])), pd.DataFrame)


def test_a_host_that_cannot_start_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with PluginSession.start(empty, sandbox=SandboxConfig(backend=BACKEND)) as session:
        with pytest.raises(MixpeekError) as failed:
            session.open(org_id="o", namespace_id="n")
        assert failed.value.code in (ErrorCode.INVALID_MANIFEST, ErrorCode.INVALID_PLUGIN)
