"""One CPU step; the model loads once per worker (fetched, verified, cached by the platform)."""

from typing import Any

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)

from .manifest import EncoderParams, metadata
from .processors.encoder import EncoderConfig, UploadedEncoder


def build_steps(
    extractor_request: Any, container: Any | None = None, base_steps: list | None = None, **kwargs
) -> dict:
    params = EncoderParams(**(extractor_request.extractor_config.parameters or {}))
    step = StepDefinition(
        service_class=UploadedEncoder,
        resource_type=ResourceType.CPU,
        config=EncoderConfig(model_name=params.model_name),
        condition=RowCondition.IS_TEXT,
        batch_size=64,
    )
    pipeline = PipelineDefinition(
        name=metadata["feature_extractor_name"], version=metadata["version"], steps=[step]
    )
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline)}
