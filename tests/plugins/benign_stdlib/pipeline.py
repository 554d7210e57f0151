"""One CPU step."""

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    StepDefinition,
    build_pipeline_steps,
)

from .embed import Embed


def build_steps(extractor_request, container=None, base_steps=None, **kwargs):
    step = StepDefinition(service_class=Embed, resource_type=ResourceType.CPU, config={})
    pipeline = PipelineDefinition(name="benign_stdlib", version="1.0.0", steps=[step])
    return {"steps": build_pipeline_steps(pipeline)}
