"""Platform settings: one typed object read from ``MIXPEEK_*`` environment variables.

Every process of a stack (API, Dagster code location, Ray drivers, CLI) builds its configuration
from :class:`MixpeekSettings`, so a value means the same thing everywhere. Bad values fail at start
with a message naming the variable, never later at first use.

Example:
    >>> settings = MixpeekSettings(api_port=8080)
    >>> settings.api_url
    'http://127.0.0.1:8080'
"""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

Port = Annotated[int, Field(ge=1, le=65535)]


class MixpeekSettings(BaseSettings):
    """Configuration of one stack; every field is read from ``MIXPEEK_<FIELD>``.

    Components left unset (``mongo_uri``, ``ray_address``, ``s3_bucket``) are local defaults
    that ``mixpeek up`` starts itself; setting one points the stack at an external service.
    """

    model_config = SettingsConfigDict(
        env_prefix="MIXPEEK_",
        extra="ignore",
        validate_default=True,
        frozen=True,
    )

    # Where a local stack keeps everything: metadata, objects, vectors, Dagster home, logs.
    data_dir: Path = Field(default=Path("~/.mixpeek"))
    host: str = "127.0.0.1"
    api_port: Port = 8000
    dagster_port: Port = 3000
    serve_port: Port = 8001
    ray_dashboard_port: Port | None = None
    """Dashboard of the local Ray head; a free port is chosen when unset."""

    # Metadata (MongoDB wire protocol).
    mongo_uri: str | None = None
    mongo_database: str = "mixpeek"

    # Compute.
    ray_address: str | None = None
    """``host:port`` of an existing Ray cluster's GCS; unset starts a local head."""
    ray_dashboard_url: str | None = None
    ray_num_cpus: int | None = Field(default=None, ge=1)
    ray_object_store_memory_mb: int = Field(default=1024, ge=128)
    serve_endpoint: str | None = None
    """Base URL of the Serve HTTP proxy of an external Ray cluster; unset: ``host:serve_port``."""

    # Orchestration.
    dagster_url: str | None = None
    """Base URL of an external Dagster webserver; unset starts a local one."""
    ingest_batch_objects: int = Field(default=5000, ge=1, le=100_000)
    """Objects per ingestion run: uploads are grouped so that thousands do not mean thousands
    of runs, and each run's actors (and models) start once for the whole batch."""
    queue_prefix: str = Field(default="", pattern=r"^[a-z0-9-]{0,40}$")
    """Prefix of this data plane's job queue: ingestion and deploy runs carry the tag
    ``mixpeek/queue: {prefix}ingestion`` (or ``...deploy``), so Dagster's run coordinator can
    limit one tenant's runs without touching another's."""
    ingest_warm_idle_s: int = Field(default=300, ge=5)
    """How long a plugin step's batch actors (plugin opened, models loaded) stay up without
    work, so the next run of the same collection and version starts warm."""

    overrides_file: Path | None = None
    """An operator's overrides YAML (SPEC §10): disabled extractors, per-extractor scaling of
    Serve applications and batch actors; read on every deploy and ingestion run."""

    # Retrieval: query vectors are cached in process unless a Redis URL is set (then shared).
    redis_url: SecretStr | None = None
    """``redis://[user:password@]host:port/db``: a query-embedding cache every API replica shares."""
    lookup_refresh_s: float = Field(default=0.5, gt=0, le=10)
    """How often the API reloads the records the realtime path reads from memory (keys,
    namespaces, serving versions): a revoked key, a deleted namespace, an undeploy or a new
    serving version takes effect within about this long."""
    query_cache_ttl_s: int = Field(default=86_400, ge=1)
    query_cache_size: int = Field(default=4096, ge=0)
    """Entries of the in-process cache (used when no Redis URL is set)."""

    # Object store: a local directory unless an S3 bucket is configured.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""
    objects_path: Path | None = None
    """Directory of the local object store (unset: ``{data_dir}/objects``)."""

    # Vector store: a LanceDB URI, a directory or ``s3://bucket/prefix``.
    vectors_uri: str | None = None
    """Unset: ``{data_dir}/vectors``."""

    # Signing key for local upload URLs; generated once under the data dir when unset.
    secret_key: SecretStr | None = None
    secrets_key: SecretStr | None = None
    """Fernet keys encrypting organisation secrets at rest, comma-separated, the newest first
    (unset: one generated once under the data dir, ``secrets.key``)."""
    public_url: str | None = None
    """Base URL clients use to reach the API (for signed URLs); defaults to ``api_url``."""

    # Client side (CLI and SDK talking to a running API).
    api_key: SecretStr | None = None
    base_url: str | None = None
    namespace: str | None = None

    # Plugin code runs in a sandboxed plugin host (SPEC §4).
    sandbox: Literal["auto", "gvisor", "bwrap", "none"] = "auto"
    """The OS sandbox of plugin hosts: ``auto`` picks bubblewrap, else gVisor; ``none`` (plugin
    code under the in-process guard only) must be chosen explicitly and is logged loudly."""
    gvisor_platform: Literal["ptrace", "kvm", "systrap"] = "ptrace"
    egress_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts every plugin may reach through the egress proxy (comma-separated or JSON), besides
    those its manifest declares (``egress_hosts``)."""
    llm_providers: str | None = None
    """The LLM providers plugins may call through ``sdk.llm``: a JSON list, or the path of a
    YAML / JSON file holding one (``[{name, kind, base_url, api_key_secret, models}]``, see
    ``docs/OPERATIONS.md``); unset: none."""
    plugin_timeout_s: float = Field(default=900.0, ge=1.0)
    """Longest one batch (or one ``build_steps``) may run before its host is stopped."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("data_dir", "objects_path", mode="after")
    @classmethod
    def _expand_data_dir(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        return path

    @field_validator("egress_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                import json

                return json.loads(value)
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("mongo_uri")
    @classmethod
    def _check_mongo_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(f"mongo_uri ({value!r}) must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return value

    @field_validator("ray_address")
    @classmethod
    def _check_ray_address(cls, value: str | None) -> str | None:
        if value is None or value.startswith("ray://"):
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"ray_address ({value!r}) must be host:port or ray://host:port")
        return value

    @field_validator(
        "s3_endpoint_url",
        "dagster_url",
        "ray_dashboard_url",
        "public_url",
        "base_url",
        "serve_endpoint",
    )
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_ports_and_pairs(self) -> MixpeekSettings:
        ports = {
            "api_port": self.api_port,
            "dagster_port": self.dagster_port,
            "serve_port": self.serve_port,
            "ray_dashboard_port": self.ray_dashboard_port,
        }
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port is None:
                continue
            if port in seen:
                raise ValueError(
                    f"MIXPEEK_{name.upper()} ({port}) is the same as MIXPEEK_{seen[port].upper()} "
                    f"({name} is the same as {seen[port]}); ports must differ"
                )
            seen[port] = name
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError(
                "MIXPEEK_S3_ACCESS_KEY_ID and MIXPEEK_S3_SECRET_ACCESS_KEY must be set together "
                "(s3_access_key_id and s3_secret_access_key must be set together)"
            )
        if self.s3_prefix.startswith("/") or ".." in self.s3_prefix.split("/"):
            raise ValueError(
                f"MIXPEEK_S3_PREFIX ({self.s3_prefix!r}) must be a relative key prefix (s3_prefix)"
            )
        return self

    # -- derived locations -------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def serve_url(self) -> str:
        return self.serve_endpoint or f"http://{self.host}:{self.serve_port}"

    @property
    def dagster_ui_url(self) -> str:
        return self.dagster_url or f"http://{self.host}:{self.dagster_port}"

    @property
    def client_base_url(self) -> str:
        return self.base_url or f"{self.api_url}/v1"

    @property
    def metadata_dir(self) -> Path:
        return self.data_dir / "metadata"

    @property
    def objects_dir(self) -> Path:
        return self.objects_path or self.data_dir / "objects"

    @property
    def vectors_dir(self) -> Path:
        return self.data_dir / "vectors"

    @property
    def vectors_location(self) -> str:
        return self.vectors_uri or str(self.vectors_dir)

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @cached_property
    def signing_key(self) -> bytes:
        """HMAC key for local upload URLs: the configured one, or one kept under the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip().encode()

    @property
    def secrets_keys(self) -> list[bytes]:
        """The Fernet keys of organisation secrets: the configured ones, or one kept under the
        data dir (created on first use, readable by its owner only)."""
        if self.secrets_key is not None:
            return [k.strip().encode() for k in self.secrets_key.get_secret_value().split(",")]
        path = self.data_dir / "secrets.key"
        if not path.exists():
            from cryptography.fernet import Fernet

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(Fernet.generate_key())
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
            tmp.unlink()
        return [path.read_bytes().strip()]


def load_settings(**overrides: object) -> MixpeekSettings:
    """Read settings from the environment, raising :class:`MixpeekError` naming the bad variable.

    Args:
        **overrides: field values that take precedence over the environment.

    Returns:
        The validated settings.
    """
    try:
        return MixpeekSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["loc"]:
                variable = "MIXPEEK_" + "_".join(str(part) for part in error["loc"]).upper()
                problems.append(f"{variable}: {message}")
            else:
                problems.append(message)
        raise MixpeekError(
            ErrorCode.INVALID_SETTINGS, "Invalid settings: " + "; ".join(problems)
        ) from exc
