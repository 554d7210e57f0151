"""One API step: concurrency instead of big batches."""

from typing import Any

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)

from .manifest import TagParams, metadata
from .processors.client import SentimentTagger, TagConfig


def build_steps(
    extractor_request: Any, container: Any | None = None, base_steps: list | None = None, **kwargs
) -> dict:
    params = TagParams(**(extractor_request.extractor_config.parameters or {}))
    step = StepDefinition(
        service_class=SentimentTagger,
        resource_type=ResourceType.API,
        config=TagConfig(endpoint=params.endpoint, max_concurrency=params.max_concurrency),
        condition=RowCondition.IS_TEXT,
        batch_size=16,
        max_concurrency=params.max_concurrency,
    )
    pipeline = PipelineDefinition(
        name=metadata["feature_extractor_name"], version=metadata["version"], steps=[step]
    )
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline)}
