"""Two steps over image rows: the built-in embedding service, then our colour processor."""

from typing import Any

from engine.inference.mixpeek.image_extractor.services import (
    ImageEmbeddingBatch,
    ImageEmbeddingConfig,
)
from engine.plugins.extractors.pipeline import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)

from .manifest import ImageParams, metadata
from .processors.colors import ColorConfig, DominantColor


def build_steps(
    extractor_request: Any, container: Any | None = None, base_steps: list | None = None, **kwargs
) -> dict:
    params = ImageParams(**(extractor_request.extractor_config.parameters or {}))
    steps = [
        StepDefinition(
            service_class=ImageEmbeddingBatch,
            resource_type=ResourceType.CPU,
            config=ImageEmbeddingConfig(
                output_column_name="image_embedding", batch_size=params.batch_size
            ),
            condition=RowCondition.IS_IMAGE,
        ),
        StepDefinition(
            service_class=DominantColor,
            resource_type=ResourceType.CPU,
            config=ColorConfig(),
            condition=RowCondition.IS_IMAGE,
        ),
    ]
    pipeline = PipelineDefinition(
        name=metadata["feature_extractor_name"], version=metadata["version"], steps=steps
    )
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline)}
