"""Built-in extractors as ordinary plugin archives.

Installing a built-in into a namespace publishes a small generated plugin whose steps and
realtime handler are the built-in's services (through the hosted-product import paths). It then
goes through exactly the same gate, registry, versions, deployment and realtime path as any
uploaded plugin, so ``text_extractor`` and ``image_extractor`` deploy the same way.
"""

from __future__ import annotations

import io
import zipfile
from textwrap import dedent

from mixpeek_orchestration.extractors.registry import BuiltinExtractor, get_builtin

_COMPAT_MODULE = {
    "text_extractor": "engine.inference.mixpeek.text_extractor.services",
    "image_extractor": "engine.inference.mixpeek.image_extractor.services",
}
_INPUT = {
    "text_extractor": ("text: str", "RowCondition.IS_TEXT"),
    "image_extractor": ("url: str", "RowCondition.IS_IMAGE"),
}


def builtin_plugin_files(name: str) -> dict[str, str]:
    """The sources of the generated plugin wrapping built-in ``name``."""
    builtin: BuiltinExtractor = get_builtin(name)
    feature = builtin.features[0]
    module = _COMPAT_MODULE[name]
    input_field, condition = _INPUT[name]
    manifest = f'''
        """Built-in {name}: {builtin.description}"""

        from pydantic import BaseModel


        class BuiltinInput(BaseModel):
            {input_field}


        class BuiltinOutput(BaseModel):
            embedding: list[float]


        metadata = {{
            "feature_extractor_name": "{name}",
            "version": "{builtin.version}",
            "description": "{builtin.description}",
            "category": "{builtin.category}",
        }}
        input_schema = BuiltinInput
        output_schema = BuiltinOutput
        supported_input_types = {list(builtin.supported_input_types)!r}
        features = [
            {{
                "feature_name": "{feature.feature_name}",
                "feature_type": "embedding",
                "embedding_dim": {feature.embedding_dim},
                "distance_metric": "{feature.distance_metric}",
            }},
        ]
        serve_config = {{"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 8, "num_cpus": 1}}
    '''
    pipeline = f'''
        from engine.plugins.extractors.pipeline import (
            PipelineDefinition,
            ResourceType,
            RowCondition,
            StepDefinition,
            build_pipeline_steps,
        )
        from {module} import {builtin.service}, {builtin.config}


        def build_steps(extractor_request, container=None, base_steps=None, **kwargs):
            step = StepDefinition(
                service_class={builtin.service},
                resource_type=ResourceType.CPU,
                config={builtin.config}(output_column_name="{feature.feature_name}"),
                condition={condition},
            )
            pipeline = PipelineDefinition(name="{name}", version="{builtin.version}", steps=[step])
            return {{"steps": (base_steps or []) + build_pipeline_steps(pipeline)}}
    '''
    realtime = f'''
        from {module} import {builtin.handler}


        class RealtimeHandler({builtin.handler}):
            """The built-in handler as is (batching where it accepts lists)."""
    '''
    return {
        "manifest.py": dedent(manifest).lstrip(),
        "pipeline.py": dedent(pipeline).lstrip(),
        "realtime.py": dedent(realtime).lstrip(),
    }


def builtin_plugin_archive(name: str) -> bytes:
    """The generated plugin as a zip (deterministic: fixed timestamps, sorted entries)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in sorted(builtin_plugin_files(name).items()):
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()
