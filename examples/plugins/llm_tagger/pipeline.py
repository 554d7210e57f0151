"""One API step: the LLM calls are I/O, so several batches are in flight at once."""

from typing import Any

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)

from .manifest import TagParams, metadata
from .processors.tagger import LLMTagger, TaggerConfig


def build_steps(
    extractor_request: Any, container: Any | None = None, base_steps: list | None = None, **kwargs
) -> dict:
    params = TagParams(**(extractor_request.extractor_config.parameters or {}))
    step = StepDefinition(
        service_class=LLMTagger,
        resource_type=ResourceType.API,
        config=TaggerConfig(
            chat_model=params.chat_model,
            embedding_model=params.embedding_model,
            provider=params.provider,
        ),
        condition=RowCondition.IS_TEXT,
        batch_size=16,
        max_concurrency=2,
    )
    pipeline = PipelineDefinition(
        name=metadata["feature_extractor_name"], version=metadata["version"], steps=[step]
    )
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline)}
