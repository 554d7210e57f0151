"""One CPU step over text rows."""

from typing import Any

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)

from .manifest import TextParams, metadata
from .processors.core import EmbedConfig, TextEmbedder


def build_steps(
    extractor_request: Any, container: Any | None = None, base_steps: list | None = None, **kwargs
) -> dict:
    params = TextParams(**(extractor_request.extractor_config.parameters or {}))
    step = StepDefinition(
        service_class=TextEmbedder,
        resource_type=ResourceType.CPU,
        config=EmbedConfig(normalize=params.normalize, max_chars=params.max_chars),
        condition=RowCondition.IS_TEXT,
    )
    pipeline = PipelineDefinition(
        name=metadata["feature_extractor_name"], version=metadata["version"], steps=[step]
    )
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline), "prepare": lambda ds: ds}
