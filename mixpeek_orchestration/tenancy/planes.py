"""Tenant routing: API key -> organisation -> tenant -> data plane.

The stack's own settings describe the *control plane*: organisations, API keys and tenant
configs live there, and it is also the *shared* data plane of every organisation without a
tenant. A *dedicated* tenant names its own data plane: a MongoDB URI and database, an object
store (S3 bucket and prefix, or a local directory), a vector-store location, a Ray cluster and
its Serve proxy, a Redis cache and a queue prefix. Every organisation assigned to the tenant is
served from that plane, so its namespaces, plugins, buckets, objects, documents and vectors
never reach the control plane's stores, and the same API key and SDK keep working.

Tenant configs are kept in the control plane's ``tenants`` collection and managed with
``mixpeek admin tenant ...``. The composition root builds each plane's adapters from the
control plane's settings with the tenant's endpoints put over them
(:class:`mixpeek_orchestration.platform.planes.Planes`).

Example:
    >>> tenants = Tenants(control.metadata)
    >>> tenants.configure("acme", DataPlane(mongo_database="acme"), orgs=["acme"])
    >>> DataPlane(mongo_database="acme").settings_over(control.settings, "acme").mongo_database
    'acme'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

if TYPE_CHECKING:
    from mixpeek_orchestration.settings import MixpeekSettings
    from mixpeek_orchestration.storage.metadata import MetadataStore
    from mixpeek_orchestration.tenancy.accounts import Accounts

TENANT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
SECRET_FIELDS = ("s3_secret_access_key", "redis_url")
"""The plane's ``SecretStr`` fields: stored as given, masked whenever a config is shown."""


class DataPlane(BaseModel):
    """A dedicated tenant's data-plane endpoints; what is left unset stays the control plane's
    (with a local object store and vector store under ``{data_dir}/planes/{tenant}/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mongo_uri: str | None = None
    mongo_database: str = Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    objects_path: Path | None = None
    vectors_uri: str | None = None
    ray_address: str | None = None
    ray_dashboard_url: str | None = None
    serve_endpoint: str | None = None
    redis_url: SecretStr | None = None
    queue_prefix: str | None = None

    def settings_over(self, control: MixpeekSettings, tenant: str) -> MixpeekSettings:
        """The control plane's settings with this plane's endpoints over them, validated by the
        same rules (a bad URI is refused naming the key)."""
        from mixpeek_orchestration.settings import MixpeekSettings

        local = control.data_dir / "planes" / tenant
        fields: dict[str, Any] = {
            "objects_path": None if self.s3_bucket else self.objects_path or local / "objects",
            "vectors_uri": self.vectors_uri or str(local / "vectors"),
            "queue_prefix": self.queue_prefix if self.queue_prefix is not None else f"{tenant}-",
            "s3_bucket": self.s3_bucket,
            "s3_prefix": self.s3_prefix,
            "s3_endpoint_url": self.s3_endpoint_url,
            "s3_access_key_id": self.s3_access_key_id,
            "s3_secret_access_key": self.s3_secret_access_key,
        }
        fields |= self.model_dump(
            exclude_none=True,
            include={"mongo_uri", "mongo_database", "s3_region", "ray_address",
                     "ray_dashboard_url", "serve_endpoint", "redis_url"},
        )  # fmt: skip
        try:
            return MixpeekSettings.model_validate(control.model_dump() | fields)
        except ValidationError as exc:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"Invalid data plane for tenant {tenant!r}: " + _problems(exc),
                field="plane",
            ) from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        ".".join(str(p) for p in e["loc"]) + ": " + e["msg"].removeprefix("Value error, ")
        if e["loc"]
        else e["msg"].removeprefix("Value error, ")
        for e in exc.errors()
    )


def parse_plane(raw: dict[str, Any]) -> DataPlane:
    """A tenant's plane from a YAML / JSON mapping; errors name the key."""
    try:
        return DataPlane.model_validate(raw)
    except ValidationError as exc:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "Invalid data plane: " + _problems(exc), field="plane"
        ) from exc


def read_plane_file(path: Path) -> dict[str, Any]:
    """The mapping in a data-plane YAML (or JSON) file; anything else is refused."""
    import yaml

    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, f"{path} must hold a mapping of endpoints", field="plane"
        )
    return loaded


class Tenants:
    """Tenant configs and which organisations they serve, in the control plane."""

    def __init__(self, metadata: MetadataStore, accounts: Accounts) -> None:
        self.tenants = metadata.collection("tenants")
        self.accounts = accounts

    def ensure_indexes(self) -> None:
        self.tenants.create_index("name", unique=True)

    def configure(self, name: str, plane: DataPlane, *, orgs: list[str]) -> dict[str, Any]:
        """Create or replace tenant ``name`` and route organisations ``orgs`` (ids or names) to
        it. Nothing changes when a name, an organisation or the plane is invalid."""
        if not TENANT_NAME.fullmatch(name):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"Invalid tenant name {name!r}: lowercase letters, digits and '-' (max 40)",
                field="tenant",
            )
        org_ids = [self.accounts.org_id_of(ref) for ref in orgs]
        stamp = datetime.now(UTC)
        secrets = {
            key: value.get_secret_value()
            for key in SECRET_FIELDS
            if (value := getattr(plane, key)) is not None
        }
        doc = {"name": name, "plane": plane.model_dump(mode="json") | secrets, "updated_at": stamp}
        self.tenants.update_one(
            {"name": name}, {"$set": doc, "$setOnInsert": {"created_at": stamp}}, upsert=True
        )
        self.accounts.route_orgs(org_ids, name)
        return self.get(name)

    def _doc(self, name: str) -> dict[str, Any]:
        doc = self.tenants.find_one({"name": name}, {"_id": 0})
        if doc is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Tenant {name!r} not found", field="tenant")
        return doc  # type: ignore[no-any-return]

    def get(self, name: str) -> dict[str, Any]:
        """The tenant's record with the organisations routed to it."""
        doc = self._doc(name)
        doc["orgs"] = self.accounts.orgs_of_tenant(name)
        return doc

    def names(self) -> list[str]:
        return [doc["name"] for doc in self.tenants.find({}, {"name": 1}).sort("name")]

    def list(self) -> list[dict[str, Any]]:
        return [self.get(name) for name in self.names()]

    def config(self, name: str) -> dict[str, Any]:
        """The stored data-plane mapping of tenant ``name`` (what :func:`parse_plane` reads)."""
        return self._doc(name)["plane"]  # type: ignore[no-any-return]

    def route(self, org: str, tenant: str | None) -> None:
        """Route one organisation to ``tenant`` (``None``: back to the shared plane)."""
        if tenant is not None:
            self._doc(tenant)  # 404 for an unknown tenant
        self.accounts.route_orgs([self.accounts.org_id_of(org)], tenant)

    def remove(self, name: str) -> None:
        """Delete a tenant config; refused while organisations are routed to it."""
        routed = self.get(name)["orgs"]
        if routed:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"Tenant {name!r} still serves {len(routed)} organisation(s); route them "
                "elsewhere first",
                field="tenant",
            )
        self.tenants.delete_one({"name": name})
