"""The plugin manifest: what a plugin is, accepts, produces and needs.

``manifest.py`` in a plugin defines module-level names (``metadata``, ``input_schema``,
``output_schema``, ``parameter_schema``, ``supported_input_types``, ``features`` and optionally
``compute_profile``, ``serve_config``, ``container_image``); :func:`manifest_from_namespace`
validates them into a :class:`PluginManifest`. Every problem is reported with the name of the
offending key; unknown or misspelled keys are errors, never silently ignored.

Example:
    >>> manifest = manifest_from_namespace(vars(manifest_module))
    >>> manifest.plugin_id, manifest.feature_uris
    ('my_extractor_1_0_0', ['mixpeek://my_extractor@1.0.0/my_extractor_embedding'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sdk._pipeline import ResourceType

SLUG_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_SHORT_VERSION = re.compile(r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?$")
# registry/repository[:tag][@sha256:digest], lowercase repository path
_IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)

Category = Literal["text", "image", "video", "audio", "document", "multimodal"]
BlobType = Literal["text", "image", "video", "audio", "pdf", "document"]
FeatureType = Literal["embedding", "classification", "text", "json"]
DistanceMetric = Literal["cosine", "euclid", "dot"]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
_SECRET_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"  # as tenancy.secrets.SECRET_NAME
_EGRESS_HOST = r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$"


def normalize_version(value: object) -> str:
    """Normalise a version to semver ``X.Y.Z``: ``v1`` and ``1.0`` become ``1.0.0``.

    Raises:
        ValueError: naming the bad value when it is not a version.
    """
    text = str(value).strip()
    if _SEMVER.fullmatch(text):
        return text
    match = _SHORT_VERSION.fullmatch(text)
    if match is None:
        raise ValueError(f"version {value!r} is not semver X.Y.Z (v1 and 1.0 are accepted too)")
    return ".".join(part or "0" for part in match.groups())


def plugin_id_for(name: str, version: str) -> str:
    """``my_extractor`` + ``1.0.0`` -> ``my_extractor_1_0_0``."""
    return f"{name}_{normalize_version(version).replace('.', '_')}"


_FEATURE_URI = re.compile(r"^mixpeek://([a-z][a-z0-9_]{0,62})@(\d+\.\d+\.\d+)/([A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class FeatureUri:
    """A feature's identity: ``mixpeek://{name}@{version}/{feature_name}``.

    The one place its format lives: manifests produce it, the registry records it, ingestion
    names vector tables after it and retrieval searches them.

    Example:
        >>> uri = FeatureUri.parse("mixpeek://my_extractor@1.0.0/my_extractor_embedding")
        >>> uri.table_name("ns_1")
        'ns_1__my_extractor__1_0_0__my_extractor_embedding'
    """

    name: str
    version: str
    feature_name: str

    @classmethod
    def parse(cls, value: str) -> FeatureUri:
        """Raises ``invalid_request`` (naming the value) when it is not a feature URI."""
        match = _FEATURE_URI.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, f"{value!r} is not a feature URI", field="feature_uri"
            )
        return cls(*match.groups())

    def __str__(self) -> str:
        return f"mixpeek://{self.name}@{self.version}/{self.feature_name}"

    def table_name(self, namespace_id: str) -> str:
        """The vector table holding this feature's vectors inside one namespace."""
        return f"{namespace_id}__{self.name}__{self.version.replace('.', '_')}__{self.feature_name}"


def feature_uri(name: str, version: str, feature_name: str) -> str:
    """``mixpeek://{name}@{version}/{feature_name}``."""
    return str(FeatureUri(name, normalize_version(version), feature_name))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PluginMetadata(_Strict):
    """``metadata`` of a manifest."""

    feature_extractor_name: Slug
    version: str
    description: str = ""
    category: Category
    inference_type: str | None = None
    author: str | None = None
    tags: list[str] = Field(default_factory=list)
    license: str | None = None
    homepage: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _normalize(cls, value: object) -> str:
        return normalize_version(value)


class FeatureSpec(_Strict):
    """One output feature: exactly ``feature_name``, ``feature_type``, ``embedding_dim``,
    ``distance_metric``. Embeddings need a positive ``embedding_dim``."""

    feature_name: Slug
    feature_type: FeatureType
    embedding_dim: int | None = Field(default=None, gt=0, le=65536)
    distance_metric: DistanceMetric | None = None

    @model_validator(mode="after")
    def _embedding_needs_dim(self) -> FeatureSpec:
        if self.feature_type == "embedding":
            if self.embedding_dim is None:
                raise ValueError(
                    f"feature {self.feature_name!r}: embedding_dim is required for embeddings"
                )
            if self.distance_metric is None:
                object.__setattr__(self, "distance_metric", "cosine")
        elif self.embedding_dim is not None:
            raise ValueError(
                f"feature {self.feature_name!r}: embedding_dim is only allowed for embeddings"
            )
        return self


class ComputeProfileConfig(_Strict):
    """Batch resources of a plugin (``compute_profile``)."""

    resource_type: ResourceType = ResourceType.CPU
    batch_size: int | None = Field(default=None, gt=0, le=100_000)
    max_concurrency: int | None = Field(default=None, gt=0, le=1024)
    actor_memory_gb: float | None = Field(default=None, gt=0)
    gpu_memory_gb: float | None = Field(default=None, ge=0)


class ServeConfig(_Strict):
    """Realtime (Ray Serve) resources and autoscaling of a plugin (``serve_config``)."""

    num_replicas: int | None = Field(default=None, ge=0)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float = Field(default=2.0, gt=0)
    num_cpus: float = Field(default=1.0, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)
    memory_gb: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _replica_bounds(self) -> ServeConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must be greater than or equal to "
                f"min_replicas ({self.min_replicas})"
            )
        if self.num_replicas is not None and not (
            self.min_replicas <= self.num_replicas <= self.max_replicas
        ):
            raise ValueError(
                f"num_replicas ({self.num_replicas}) must lie between min_replicas "
                f"({self.min_replicas}) and max_replicas ({self.max_replicas})"
            )
        return self


def _is_model_class(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


class PluginManifest(BaseModel):
    """A validated manifest."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    metadata: PluginMetadata
    input_schema: type[BaseModel]
    output_schema: type[BaseModel]
    parameter_schema: type[BaseModel] | None = None
    supported_input_types: list[BlobType] = Field(min_length=1)
    features: list[FeatureSpec] = Field(min_length=1)
    compute_profile: ComputeProfileConfig = Field(default_factory=ComputeProfileConfig)
    serve_config: ServeConfig = Field(default_factory=ServeConfig)
    container_image: str | None = None
    egress_hosts: list[Annotated[str, Field(pattern=_EGRESS_HOST)]] = Field(
        default_factory=list, max_length=64
    )
    """External hosts the plugin calls (``api.openai.com``, ``*.example.com``), reached through
    the platform's egress proxy; internal and metadata addresses stay refused whatever is
    declared here."""
    secrets: list[Annotated[str, Field(pattern=_SECRET_NAME)]] = Field(
        default_factory=list, max_length=32
    )
    """Organisation secrets the plugin reads by name (``container.secrets.get(name)``,
    ``current_context().secrets.get(name)``); no other secret is reachable from its code."""

    @field_validator("input_schema", "output_schema", "parameter_schema", mode="before")
    @classmethod
    def _pydantic_model(cls, value: object) -> object:
        if value is not None and not _is_model_class(value):
            raise ValueError(f"must be a pydantic BaseModel subclass, got {value!r}")
        return value

    @field_validator("container_image")
    @classmethod
    def _image_reference(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE_REF.fullmatch(value):
            raise ValueError(f"container_image {value!r} is not an OCI image reference")
        return value

    @model_validator(mode="after")
    def _unique_features(self) -> PluginManifest:
        names = [f.feature_name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature_name: {', '.join(duplicates)}")
        return self

    @property
    def name(self) -> str:
        return self.metadata.feature_extractor_name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def plugin_id(self) -> str:
        return plugin_id_for(self.name, self.version)

    @property
    def embedding_features(self) -> list[FeatureSpec]:
        return [f for f in self.features if f.feature_type == "embedding"]

    @property
    def feature_uris(self) -> list[str]:
        return [feature_uri(self.name, self.version, f.feature_name) for f in self.features]

    def validate_parameters(self, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate collection parameters against ``parameter_schema``.

        Returns:
            The parameters with defaults applied.

        Raises:
            MixpeekError: ``invalid_parameters`` with the offending fields.
        """
        parameters = dict(parameters or {})
        if self.parameter_schema is None:
            if parameters:
                raise MixpeekError(
                    ErrorCode.INVALID_PARAMETERS,
                    f"Plugin {self.name} takes no parameters; got {sorted(parameters)}",
                    errors=[{"field": k, "message": "unexpected parameter"} for k in parameters],
                )
            return {}
        try:
            return self.parameter_schema.model_validate(parameters).model_dump(mode="json")
        except ValidationError as exc:
            errors = _errors(exc)
            raise MixpeekError(
                ErrorCode.INVALID_PARAMETERS,
                f"Invalid parameters for {self.name}: "
                + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                errors=errors,
            ) from None

    def describe(self) -> dict[str, Any]:
        """A JSON-safe summary (schemas as JSON Schema) for registries and the API."""
        return {
            "name": self.name,
            "version": self.version,
            "plugin_id": self.plugin_id,
            "description": self.metadata.description,
            "category": self.metadata.category,
            "supported_input_types": list(self.supported_input_types),
            "features": [f.model_dump() for f in self.features],
            "feature_uris": self.feature_uris,
            "input_schema": self.input_schema.model_json_schema(),
            "output_schema": self.output_schema.model_json_schema(),
            "parameter_schema": self.parameter_schema.model_json_schema()
            if self.parameter_schema
            else None,
            "compute_profile": self.compute_profile.model_dump(mode="json"),
            "serve_config": self.serve_config.model_dump(mode="json"),
            "container_image": self.container_image,
            "egress_hosts": list(self.egress_hosts),
            "secrets": list(self.secrets),
        }


MANIFEST_FIELDS = frozenset(PluginManifest.model_fields)
REQUIRED_FIELDS = ("metadata", "input_schema", "output_schema", "supported_input_types", "features")


def _errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "manifest")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key {str(error['loc'][-1])!r}"
        out.append({"field": field, "message": message})
    return out


def manifest_from_namespace(
    namespace: Mapping[str, Any], *, source: str = "manifest.py"
) -> PluginManifest:
    """Validate the module-level names of a ``manifest.py`` into a :class:`PluginManifest`.

    Args:
        namespace: the module's globals (``vars(module)``).
        source: file name used in error messages.

    Raises:
        MixpeekError: ``invalid_manifest`` listing every problem as ``{field, message}``.
    """
    values = {k: namespace[k] for k in MANIFEST_FIELDS if k in namespace}
    missing = [k for k in REQUIRED_FIELDS if k not in values]
    errors = [{"field": k, "message": f"{source} must define {k!r}"} for k in missing]
    if not errors:
        try:
            return PluginManifest.model_validate(values)
        except ValidationError as exc:
            errors = _errors(exc)
    detail = f"Invalid manifest ({source}): " + "; ".join(
        f"{e['field']}: {e['message']}" for e in errors
    )
    raise MixpeekError(ErrorCode.INVALID_MANIFEST, detail, errors=errors)
