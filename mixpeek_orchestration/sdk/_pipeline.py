"""Pipeline building blocks a plugin's ``build_steps`` returns.

A plugin declares *steps*: a processor class, the resources it needs and which rows it sees.
``build_pipeline_steps`` turns a :class:`PipelineDefinition` into the :class:`PipelineStep`
objects the platform's step runner executes, locally (``mixpeek plugin test``) and as Ray Data
``map_batches`` stages (ingestion) alike.

Example:
    >>> steps = [
    ...     StepDefinition(
    ...         service_class=MyProcessor,
    ...         resource_type=ResourceType.CPU,
    ...         config=MyConfig(threshold=0.7),
    ...         condition=RowCondition.IS_TEXT,
    ...     )
    ... ]
    >>> build_pipeline_steps(PipelineDefinition(name="my_extractor", version="1.0.0", steps=steps))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "PipelineDefinition",
    "PipelineStep",
    "ResourceType",
    "RowCondition",
    "StepDefinition",
    "build_pipeline_steps",
]


class ResourceType(str, Enum):
    """What a step runs on; decides batch size, concurrency and placement.

    * ``CPU``: local CPU models (text embeddings, classification); batches of ~64 rows.
    * ``GPU``: local GPU models; batches of ~8, one GPU per actor (falls back to CPU, with a
      log line, where the cluster has no GPU).
    * ``API``: calls to external services; small batches, several concurrent requests.
    """

    CPU = "cpu"
    GPU = "gpu"
    API = "api"

    @property
    def default_batch_size(self) -> int:
        return {ResourceType.CPU: 64, ResourceType.GPU: 8, ResourceType.API: 16}[self]

    @property
    def default_concurrency(self) -> int:
        """Actors (CPU / GPU) or in-flight requests per actor (API) when the plugin says nothing."""
        return {ResourceType.CPU: 1, ResourceType.GPU: 1, ResourceType.API: 8}[self]


_MIME_PREFIXES: dict[str, tuple[str, ...]] = {
    "IS_TEXT": ("text/",),
    "IS_IMAGE": ("image/",),
    "IS_VIDEO": ("video/",),
    "IS_AUDIO": ("audio/",),
    "IS_PDF": ("application/pdf",),
}


class RowCondition(str, Enum):
    """Which rows a step processes, by the row's MIME type."""

    IS_TEXT = "is_text"
    IS_IMAGE = "is_image"
    IS_VIDEO = "is_video"
    IS_AUDIO = "is_audio"
    IS_PDF = "is_pdf"
    ALWAYS = "always"

    def matches(self, mime_type: str | None) -> bool:
        if self is RowCondition.ALWAYS:
            return True
        mime = mime_type.lower() if isinstance(mime_type, str) else ""
        return mime.startswith(_MIME_PREFIXES[self.name])

    def mask(self, mime_types: pd.Series) -> pd.Series:
        """A boolean mask over a column of MIME types."""
        if self is RowCondition.ALWAYS:
            return mime_types.notna() | mime_types.isna()
        return mime_types.fillna("").str.lower().str.startswith(_MIME_PREFIXES[self.name])


@dataclass
class StepDefinition:
    """One step of a plugin pipeline, as plugin code declares it.

    Args:
        service_class: a processor class ``Cls(config, progress_actor=None)`` whose instances are
            called with a ``pandas.DataFrame`` batch and return it with output columns added.
        resource_type: where it runs (:class:`ResourceType`).
        config: passed to ``service_class`` unchanged.
        condition: which rows it sees (:class:`RowCondition`); other rows pass through.
        enabled: a disabled step is dropped by :func:`build_pipeline_steps`.
        batch_size: rows per call; defaults by resource type (CPU 64, GPU 8, API 16).
        max_concurrency: actors (CPU / GPU) or in-flight calls (API) at most.
        num_gpus: GPUs per actor for GPU steps (default 1).
        name: a label for logs and run metadata (defaults to the class name).
    """

    service_class: type[Any]
    resource_type: ResourceType = ResourceType.CPU
    config: Any = None
    condition: RowCondition = RowCondition.ALWAYS
    enabled: bool = True
    batch_size: int | None = None
    max_concurrency: int | None = None
    num_gpus: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.service_class):
            raise TypeError(f"service_class must be a class, got {self.service_class!r}")
        self.resource_type = ResourceType(self.resource_type)
        self.condition = RowCondition(self.condition)
        for option in ("batch_size", "max_concurrency"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{option} ({value!r}) must be a positive integer")


@dataclass
class PipelineDefinition:
    """A named, versioned list of steps."""

    name: str
    version: str
    steps: list[StepDefinition] = field(default_factory=list)


@dataclass(frozen=True)
class PipelineStep:
    """A step ready to run: defaults resolved, disabled steps removed."""

    name: str
    service_class: type[Any]
    config: Any
    resource_type: ResourceType
    condition: RowCondition
    batch_size: int
    concurrency: int
    num_gpus: float
    pipeline: str = ""
    pipeline_version: str = ""


def build_pipeline_steps(pipeline: PipelineDefinition) -> list[PipelineStep]:
    """Resolve a :class:`PipelineDefinition` into the steps the platform runs, in order.

    Args:
        pipeline: the plugin's pipeline.

    Returns:
        One :class:`PipelineStep` per enabled step, with batch size, concurrency and GPU count
        defaulted from the step's :class:`ResourceType`.
    """
    built = []
    for index, step in enumerate(pipeline.steps):
        if not step.enabled:
            continue
        resource = ResourceType(step.resource_type)
        built.append(
            PipelineStep(
                name=step.name or f"{index}_{getattr(step.service_class, '__name__', 'step')}",
                service_class=step.service_class,
                config=step.config,
                resource_type=resource,
                condition=RowCondition(step.condition),
                batch_size=step.batch_size or resource.default_batch_size,
                concurrency=step.max_concurrency or resource.default_concurrency,
                num_gpus=(step.num_gpus if step.num_gpus is not None else 1.0)
                if resource is ResourceType.GPU
                else 0.0,
                pipeline=pipeline.name,
                pipeline_version=pipeline.version,
            )
        )
    return built
