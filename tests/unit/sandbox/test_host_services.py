"""The host services behind the SDK's helpers: namespace models, media tools and assets,
each checked against the plugin's guard policy before the host acts for it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.models.namespace import (
    LocalModelDirectory,
    ModelSource,
    NamespaceModelRegistry,
)
from mixpeek_orchestration.sandbox.guard import GuardPolicy, GuardViolation, guarded
from mixpeek_orchestration.sandbox.host_services import GuardedHost
from mixpeek_orchestration.sdk import PluginContext, download_asset, load_namespace_model, run_tool
from mixpeek_orchestration.sdk._context import use_context
from mixpeek_orchestration.storage.objects import LocalObjectStore


def hosted(
    scratch: Path, policy: GuardPolicy | None, *, models: ModelSource | None = None
) -> PluginContext:
    return PluginContext(scratch_dir=scratch, host=GuardedHost(policy, scratch, models=models))


def _safetensors(path: Path) -> Path:
    from safetensors.numpy import save_file

    save_file(
        {"weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": np.ones(2, np.float32)},
        str(path),
    )
    return path


def _onnx(path: Path) -> Path:
    """A real one-node ONNX graph (y = x + x), exported by torch."""
    import torch

    class Double(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + x

    torch.onnx.export(
        Double(),
        (torch.ones(1, 3),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamo=False,
    )
    return path


def test_namespace_models_from_the_object_store(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects", signing_key=b"k", public_url="http://api")
    registry = NamespaceModelRegistry(store, "org_1/ns_1/models", tmp_path / "cache")
    key = registry.register("head", _safetensors(tmp_path / "head.safetensors"))
    assert key == "org_1/ns_1/models/head/model.safetensors"
    assert registry.names() == ["head"]
    policy = GuardPolicy(scratch_dir=tmp_path / "scratch", protected_roots=(tmp_path,))
    context = hosted(tmp_path / "scratch", policy, models=registry)
    with use_context(context), guarded(policy):
        weights = load_namespace_model("head")  # fetched on the plugin's behalf despite the guard
    assert weights["weight"].shape == (2, 3)
    with pytest.raises(MixpeekError) as info, use_context(context):
        load_namespace_model("missing")
    assert info.value.code is ErrorCode.NOT_FOUND


def test_onnx_models_load_as_sessions(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    models = tmp_path / "models"
    models.mkdir()
    _onnx(models / "doubler.onnx")
    with use_context(hosted(tmp_path / "s", None, models=LocalModelDirectory(models))):
        session = load_namespace_model("doubler")
    (y,) = session.run(None, {"x": np.ones((1, 3), np.float32)})
    assert y.tolist() == [[2.0, 2.0, 2.0]]


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed on this machine")
def test_run_tool_runs_a_real_media_tool_inside_the_guard(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    policy = GuardPolicy(scratch_dir=scratch)
    with use_context(hosted(scratch, policy)), guarded(policy):
        result = run_tool(
            "sox",
            [
                "-n",
                "-r",
                "8000",
                "-c",
                "1",
                str(scratch / "tone.wav"),
                "synth",
                "0.25",
                "sine",
                "440",
            ],
        )
        assert result.returncode == 0, result.stderr
        info = run_tool("sox", ["--i", "-r", str(scratch / "tone.wav")])
        assert info.stdout.strip() == b"8000"
        with pytest.raises(GuardViolation):
            run_tool("sox", ["-n", str(tmp_path / "outside.wav"), "synth", "0.1", "sine", "440"])
    assert (scratch / "tone.wav").read_bytes()[:4] == b"RIFF"
    assert not (tmp_path / "outside.wav").exists()


def test_download_asset_respects_the_guard(tmp_path: Path) -> None:
    protected = tmp_path / "data"
    protected.mkdir()
    (protected / "secret.txt").write_text("x")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "in.txt").write_text("mine")
    policy = GuardPolicy(scratch_dir=scratch, protected_roots=(protected,))
    with use_context(hosted(scratch, policy)), guarded(policy):
        assert download_asset(str(scratch / "in.txt")).read_text() == "mine"
        with pytest.raises(GuardViolation):
            download_asset(str(protected / "secret.txt"))
        with pytest.raises(GuardViolation):
            download_asset("http://169.254.169.254/latest/meta-data")
