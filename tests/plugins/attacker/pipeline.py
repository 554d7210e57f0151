"""One CPU step: the attack named by each row."""

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    StepDefinition,
    build_pipeline_steps,
)

from .processors.attacks import Attacker


def build_steps(extractor_request, container=None, base_steps=None, **kwargs):
    step = StepDefinition(service_class=Attacker, resource_type=ResourceType.CPU, config={})
    pipeline = PipelineDefinition(name="attacker", version="1.0.0", steps=[step])
    return {"steps": build_pipeline_steps(pipeline)}
