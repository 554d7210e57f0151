"""A tenant's overrides file (SPEC §10): which extractors run, how each scales, the cluster shape.

The file is merged over the extractor registry (built-ins plus the tenant's plugins) on every
deploy: extractors not named anywhere get the defaults, so new ones appear by themselves, and
``disabled`` ones stay out. The same merged settings drive the local stack (Serve applications,
batch actor pools) and the rendered Kubernetes manifests.

A file that contradicts itself (min above max), names keys or extractors nobody knows, or holds
negative values is refused with the offending key named, before anything is rendered.

Example:
    >>> overrides = load_overrides(Path("tenant.yaml"), known={"text_extractor", "my_extractor"})
    >>> overrides.enabled(["text_extractor", "my_extractor"])
    ['my_extractor']
    >>> overrides.for_extractor("my_extractor").max_replicas
    3
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mixpeek_orchestration.errors import ErrorCode, MixpeekError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtractorOverride(_Strict):
    """Realtime (Serve) and batch knobs of one extractor; unset ones keep the plugin's own."""

    min_replicas: int | None = Field(default=None, ge=0)
    """0 scales the Serve application to zero when idle."""
    max_replicas: int | None = Field(default=None, ge=1)
    target_ongoing_requests: float | None = Field(default=None, gt=0)
    downscale_delay_s: float | None = Field(default=None, ge=0)
    num_cpus: float | None = Field(default=None, ge=0)
    num_gpus: float | None = Field(default=None, ge=0)
    memory_gb: float | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    """Batch actors of a CPU / GPU step (requests in flight for an API step)."""

    @model_validator(mode="after")
    def _min_not_above_max(self) -> ExtractorOverride:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        return self

    def serve_config(self) -> dict[str, Any]:
        """The keys a manifest's ``serve_config`` uses, for those this override sets."""
        return self.model_dump(exclude_none=True, exclude={"max_concurrency"})


class NodeRange(_Strict):
    min_nodes: int = Field(ge=0)
    max_nodes: int = Field(ge=0)
    accelerator: str | None = None
    """GPU groups: the node selector value (``nvidia-l4``, ``nvidia-tesla-t4``, ...)."""
    cpu: str = "4"
    memory: str = "16Gi"

    @model_validator(mode="after")
    def _min_not_above_max(self) -> NodeRange:
        if self.min_nodes > self.max_nodes:
            raise ValueError(f"min_nodes ({self.min_nodes}) is above max_nodes ({self.max_nodes})")
        return self


class Cluster(_Strict):
    """KubeRay worker groups: ``cpu`` serves realtime, ``batch`` runs ingestion, ``gpu`` both."""

    cpu: NodeRange = NodeRange(min_nodes=1, max_nodes=2)
    batch: NodeRange = NodeRange(min_nodes=0, max_nodes=3)
    gpu: NodeRange = NodeRange(min_nodes=0, max_nodes=2, accelerator="nvidia-l4")


class Head(_Strict):
    cpu: str = "4"
    memory: str = "16Gi"


class HealthSpec(_Strict):
    health_check_period_s: float = Field(default=10, gt=0)
    health_check_timeout_s: float = Field(default=30, gt=0)


class SandboxSpec(_Strict):
    """Where plugin-hosting pods (every Ray worker group) run and what they may reach."""

    runtime_class: str = Field(default="gvisor", min_length=1)
    """Their ``RuntimeClass`` (GKE Sandbox names gVisor's ``gvisor``)."""
    private_egress: list[str] = Field(default_factory=list)
    """Private CIDRs they may reach besides their own namespace (an in-VPC MongoDB, a MinIO);
    link-local addresses (the cloud metadata service) are never allowed."""

    @field_validator("private_egress")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        metadata = ipaddress.ip_network("169.254.0.0/16")
        for cidr in value:
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR") from None
            if network.version == 4 and network.overlaps(metadata):
                raise ValueError(f"{cidr} covers link-local addresses (the cloud metadata service)")
        return value


class Overrides(_Strict):
    auto_deploy: bool = False
    """Serve every enabled extractor; otherwise only those named under ``overrides``."""
    disabled: list[str] = Field(default_factory=list)
    overrides: dict[str, ExtractorOverride] = Field(default_factory=dict)
    cluster: Cluster = Cluster()
    head: Head = Head()
    env: dict[str, str] = Field(default_factory=dict)
    spec: HealthSpec = HealthSpec()
    sandbox: SandboxSpec = SandboxSpec()

    def check_names(self, known: Iterable[str]) -> None:
        """Refuse extractor names that neither the built-ins nor the tenant's plugins have."""
        known = set(known)
        for key, names in (("disabled", self.disabled), ("overrides", list(self.overrides))):
            unknown = sorted(set(names) - known)
            if unknown:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"{key}: unknown extractor {', '.join(unknown)} (known: {', '.join(sorted(known))})",
                    field=key,
                )
        both = sorted(set(self.disabled) & set(self.overrides))
        if both:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"overrides.{both[0]}: the extractor is also listed under disabled",
                field=f"overrides.{both[0]}",
            )

    def require_enabled(self, name: str, *, consequence: str) -> None:
        """Refuse (409) to run extractor ``name`` when the operator disabled it."""
        if name in self.disabled:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"{name} is disabled by this installation's overrides file: {consequence}",
                extractor=name,
            )

    def enabled(self, registry: Iterable[str]) -> list[str]:
        """Extractors of the registry that run: every one not disabled, in registry order."""
        return [name for name in registry if name not in self.disabled]

    def served(self, registry: Iterable[str]) -> list[str]:
        """Extractors that get a realtime (Serve) application."""
        return [
            name for name in self.enabled(registry) if self.auto_deploy or name in self.overrides
        ]

    def for_extractor(self, name: str) -> ExtractorOverride:
        return self.overrides.get(name, ExtractorOverride())


def _key_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location if part not in ("__root__",))


def parse_overrides(data: Any, *, source: str = "overrides") -> Overrides:
    """Validate a loaded document; errors name every offending key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, f"{source}: expected a mapping at the top")
    try:
        return Overrides.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = _key_path(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{path}: {message}" if path else message)
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"{source} is invalid: " + "; ".join(problems),
            field=_key_path(exc.errors()[0]["loc"]),
        ) from None


def load_overrides(path: Path, *, known: Iterable[str] | None = None) -> Overrides:
    """Read and validate an overrides YAML file; ``known`` extractor names are checked too."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, f"cannot read overrides file {path}: {exc}"
        ) from None
    except yaml.YAMLError as exc:
        raise MixpeekError(ErrorCode.INVALID_REQUEST, f"{path} is not valid YAML: {exc}") from None
    overrides = parse_overrides(data, source=str(path))
    if known is not None:
        overrides.check_names(known)
    return overrides
