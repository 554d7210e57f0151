"""One GPU step (batch ~8, one GPU per actor; CPU fallback where the cluster has none)."""

from typing import Any

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)

from .manifest import GpuParams, metadata
from .processors.core import GpuConfig, GpuEmbedder


def build_steps(
    extractor_request: Any, container: Any | None = None, base_steps: list | None = None, **kwargs
) -> dict:
    params = GpuParams(**(extractor_request.extractor_config.parameters or {}))
    step = StepDefinition(
        service_class=GpuEmbedder,
        resource_type=ResourceType.GPU,
        config=GpuConfig(batch_size=params.batch_size),
        condition=RowCondition.IS_TEXT,
    )
    pipeline = PipelineDefinition(
        name=metadata["feature_extractor_name"], version=metadata["version"], steps=[step]
    )
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline)}
