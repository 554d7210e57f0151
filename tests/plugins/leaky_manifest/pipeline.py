"""One CPU step."""

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    StepDefinition,
    build_pipeline_steps,
)


class Embed:
    def __init__(self, config=None, progress_actor=None):
        pass

    def __call__(self, batch):
        batch["leaky_embedding"] = [[1.0, 0.0] for _ in range(len(batch))]
        return batch


def build_steps(extractor_request, container=None, base_steps=None, **kwargs):
    step = StepDefinition(service_class=Embed, resource_type=ResourceType.CPU, config={})
    pipeline = PipelineDefinition(name="leaky_manifest", version="1.0.0", steps=[step])
    return {"steps": build_pipeline_steps(pipeline)}
