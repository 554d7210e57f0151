"""The plugin SDK: everything plugin authors import.

Example:
    >>> from mixpeek_orchestration.sdk import (
    ...     PipelineDefinition, ResourceType, RowCondition, StepDefinition, build_pipeline_steps,
    ... )

Hosted-product archives import the same names from ``engine.plugins.extractors.pipeline`` and
``shared.models.loader``; the plugin loader resolves those paths to this package.
"""

from mixpeek_orchestration.sdk import llm as llm
from mixpeek_orchestration.sdk._context import PluginContainer as PluginContainer
from mixpeek_orchestration.sdk._context import PluginContext as PluginContext
from mixpeek_orchestration.sdk._context import PluginSecrets as PluginSecrets
from mixpeek_orchestration.sdk._context import current_context as current_context
from mixpeek_orchestration.sdk._contracts import Processor as Processor
from mixpeek_orchestration.sdk._contracts import RealtimeAdapter as RealtimeAdapter
from mixpeek_orchestration.sdk._contracts import RealtimeHandler as RealtimeHandler
from mixpeek_orchestration.sdk._helpers import download_asset as download_asset
from mixpeek_orchestration.sdk._helpers import open_asset as open_asset
from mixpeek_orchestration.sdk._helpers import run_tool as run_tool
from mixpeek_orchestration.sdk._http import apost_json_many as apost_json_many
from mixpeek_orchestration.sdk._http import post_json_many as post_json_many
from mixpeek_orchestration.sdk._manifest import ComputeProfileConfig as ComputeProfileConfig
from mixpeek_orchestration.sdk._manifest import FeatureSpec as FeatureSpec
from mixpeek_orchestration.sdk._manifest import PluginManifest as PluginManifest
from mixpeek_orchestration.sdk._manifest import PluginMetadata as PluginMetadata
from mixpeek_orchestration.sdk._manifest import ServeConfig as ServeConfig
from mixpeek_orchestration.sdk._manifest import feature_uri as feature_uri
from mixpeek_orchestration.sdk._manifest import normalize_version as normalize_version
from mixpeek_orchestration.sdk._manifest import plugin_id_for as plugin_id_for
from mixpeek_orchestration.sdk._models import load_namespace_model as load_namespace_model
from mixpeek_orchestration.sdk._pipeline import PipelineDefinition as PipelineDefinition
from mixpeek_orchestration.sdk._pipeline import PipelineStep as PipelineStep
from mixpeek_orchestration.sdk._pipeline import ResourceType as ResourceType
from mixpeek_orchestration.sdk._pipeline import RowCondition as RowCondition
from mixpeek_orchestration.sdk._pipeline import StepDefinition as StepDefinition
from mixpeek_orchestration.sdk._pipeline import build_pipeline_steps as build_pipeline_steps

__all__ = [
    "ComputeProfileConfig",
    "FeatureSpec",
    "PipelineDefinition",
    "PipelineStep",
    "PluginContainer",
    "PluginContext",
    "PluginManifest",
    "PluginMetadata",
    "PluginSecrets",
    "Processor",
    "RealtimeAdapter",
    "RealtimeHandler",
    "ResourceType",
    "RowCondition",
    "ServeConfig",
    "StepDefinition",
    "apost_json_many",
    "build_pipeline_steps",
    "current_context",
    "download_asset",
    "feature_uri",
    "llm",
    "load_namespace_model",
    "normalize_version",
    "open_asset",
    "plugin_id_for",
    "post_json_many",
    "run_tool",
]
