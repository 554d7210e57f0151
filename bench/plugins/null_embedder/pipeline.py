from typing import Any, Dict, Optional

from engine.plugins.extractors.pipeline import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)

from .manifest import metadata
from .processors.hashing import HashEmbedder


def build_steps(
    extractor_request: Any,
    container: Optional[Any] = None,
    base_steps: Optional[list] = None,
    **kwargs,
) -> Dict[str, Any]:
    steps = [
        StepDefinition(
            service_class=HashEmbedder,
            resource_type=ResourceType.CPU,
            condition=RowCondition.IS_TEXT,
            batch_size=256,
        ),
    ]
    pipeline = PipelineDefinition(
        name=metadata["feature_extractor_name"], version=metadata["version"], steps=steps
    )
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline)}
