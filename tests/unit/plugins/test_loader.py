"""Loading plugins: isolated namespaces, hosted-product import paths, own-module imports."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.compat import install_compat_imports, uninstall_compat_imports
from mixpeek_orchestration.plugins.loader import load_plugin
from mixpeek_orchestration.sdk._pipeline import PipelineStep, ResourceType

REPO = Path(__file__).resolve().parents[3]
SEED = REPO / "examples" / "plugins" / "my_extractor"


def write_plugin(
    root: Path, *, version: str = "1.0.0", label: str = "one", extra: dict[str, str] | None = None
) -> Path:
    files = {
        "manifest.py": f"""
            from pydantic import BaseModel
            class In(BaseModel):
                text: str
            class Out(BaseModel):
                vec: list[float]
            class Params(BaseModel):
                scale: float = 1.0
            metadata = {{"feature_extractor_name": "tiny", "version": "{version}", "category": "text"}}
            input_schema = In
            output_schema = Out
            parameter_schema = Params
            supported_input_types = ["text"]
            features = [{{"feature_name": "vec", "feature_type": "embedding", "embedding_dim": 2, "distance_metric": "cosine"}}]
            """,
        "processors/core.py": f"""
            LABEL = "{label}"
            class Proc:
                def __init__(self, config, progress_actor=None):
                    self.scale = config
                def __call__(self, batch):
                    batch["vec"] = [[float(len(t)) * self.scale, 1.0] for t in batch["text"]]
                    return batch
            """,
        "pipeline.py": """
            from engine.plugins.extractors.pipeline import PipelineDefinition, StepDefinition, build_pipeline_steps
            from .processors.core import Proc, LABEL
            def build_steps(extractor_request, container=None, base_steps=None, **kwargs):
                scale = extractor_request.extractor_config.parameters["scale"]
                step = StepDefinition(service_class=Proc, config=scale)
                return {"steps": build_pipeline_steps(PipelineDefinition("tiny", "1", [step]))}
            """,
        "realtime.py": """
            class Encoder:
                async def run_inference(self, inputs, parameters):
                    return {"embedding": [float(len(inputs["text"])), 1.0]}
            """,
    }
    files.update(extra or {})
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip())
    return root


def test_seed_plugin_loads_verbatim() -> None:
    assert not (SEED / "__init__.py").exists()
    plugin = load_plugin(SEED)
    try:
        assert plugin.manifest.plugin_id == "my_extractor_1_0_0"
        built = plugin.build_steps({"threshold": 0.7})
        assert len(built.steps) == 1 and isinstance(built.steps[0], PipelineStep)
        assert built.steps[0].resource_type is ResourceType.CPU
        assert built.steps[0].config.threshold == 0.7
        assert built.prepare is not None and built.prepare("ds") == "ds"
    finally:
        plugin.unload()


def test_two_versions_never_collide(tmp_path: Path) -> None:
    one = load_plugin(write_plugin(tmp_path / "v1", version="1.0.0", label="one"))
    two = load_plugin(write_plugin(tmp_path / "v2", version="2.0.0", label="two"))
    try:
        assert one.package != two.package
        step_one = one.build_steps({}).steps[0]
        step_two = two.build_steps({}).steps[0]
        assert sys.modules[step_one.service_class.__module__].LABEL == "one"
        assert sys.modules[step_two.service_class.__module__].LABEL == "two"
        assert "processors" not in sys.modules and "manifest" not in sys.modules
    finally:
        one.unload()
        two.unload()
    assert not any(name.startswith(one.package) for name in sys.modules)


def test_absolute_imports_of_own_modules(tmp_path: Path) -> None:
    root = write_plugin(
        tmp_path / "p",
        extra={
            "pipeline.py": """
                from engine.plugins.extractors.pipeline import PipelineDefinition, StepDefinition, build_pipeline_steps
                from processors.core import Proc
                def build_steps(extractor_request, container=None, base_steps=None, **kwargs):
                    return {"steps": build_pipeline_steps(PipelineDefinition("tiny", "1", [StepDefinition(Proc, config=1.0)]))}
                """
        },
    )
    plugin = load_plugin(root)
    try:
        assert plugin.build_steps({}).steps[0].service_class.__name__ == "Proc"
        assert "processors" not in sys.modules
    finally:
        plugin.unload()


def test_compat_paths_resolve_without_installed_packages() -> None:
    uninstall_compat_imports()
    assert importlib.util.find_spec("engine") is None
    assert importlib.util.find_spec("shared") is None
    install_compat_imports()
    from engine.plugins.extractors.pipeline import StepDefinition  # type: ignore[import-not-found]
    from shared.models.loader import load_namespace_model  # type: ignore[import-not-found]

    from mixpeek_orchestration.sdk import StepDefinition as Sdk
    from mixpeek_orchestration.sdk import load_namespace_model as sdk_loader

    assert StepDefinition is Sdk and load_namespace_model is sdk_loader
    from engine.inference.sentence_transformers.all_minilm_l6_v2.services import (  # type: ignore[import-not-found]
        TextEmbeddingBatch,
    )

    assert TextEmbeddingBatch.__module__ == "mixpeek_orchestration.extractors.text"
    with pytest.raises(ModuleNotFoundError, match="compatible import paths"):
        importlib.import_module("engine.inference.openai.whisper_api.services")


def test_realtime_handler_shapes(tmp_path: Path) -> None:
    plugin = load_plugin(write_plugin(tmp_path / "p"))
    try:
        adapter = plugin.realtime_handler()
        assert adapter is not None and adapter.shape == "run_inference"
        assert adapter.call_sync({"text": "abc"}) == {"embedding": [3.0, 1.0]}
    finally:
        plugin.unload()


@pytest.mark.parametrize(
    ("extra", "code", "named"),
    [
        ({"pipeline.py": "import not_a_module\n"}, ErrorCode.INVALID_PLUGIN, "pipeline.py"),
        ({"manifest.py": "metadata = {}\n"}, ErrorCode.INVALID_MANIFEST, "input_schema"),
        (
            {"realtime.py": "raise RuntimeError('boom at import')\n"},
            ErrorCode.INVALID_PLUGIN,
            "boom at import",
        ),
    ],
)
def test_broken_plugins_fail_with_the_file_named(
    tmp_path: Path, extra: dict[str, str], code: ErrorCode, named: str
) -> None:
    with pytest.raises(MixpeekError) as info:
        load_plugin(write_plugin(tmp_path / "p", extra=extra))
    assert info.value.code is code
    assert named in info.value.detail
    assert not any(n.startswith("_mixpeek_plugin_p_") for n in sys.modules)


def test_build_steps_errors(tmp_path: Path) -> None:
    bad = {
        "pipeline.py": "def build_steps(extractor_request, **kwargs):\n    return {'steps': []}\n"
    }
    plugin = load_plugin(write_plugin(tmp_path / "p", extra=bad))
    with pytest.raises(MixpeekError, match="no steps"):
        plugin.build_steps({})
    good = load_plugin(write_plugin(tmp_path / "q"))
    with pytest.raises(MixpeekError) as info:
        good.build_steps({"scale": "big"})
    assert info.value.code is ErrorCode.INVALID_PARAMETERS


def test_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixpeekError, match=r"no manifest\.py"):
        load_plugin(tmp_path / "empty")
