"""The composition root: one data plane's adapters, repositories and services, built once.

:class:`Platform` is what the faces (API, CLI, stack, the Dagster code location) hold. It is the
only place that constructs clients for MongoDB, the object store, the vector store, Ray, Serve
or Dagster, and the only place that wires services together: each service is handed exactly the
stores and adapters it uses, so a reader (or a test) sees its dependencies in its constructor.
Everything is built lazily, on first use.

Example:
    >>> platform = Platform(load_settings())
    >>> platform.health()["metadata"].status
    'ok'
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mixpeek_orchestration.compute.dagster import DagsterWebserver
from mixpeek_orchestration.compute.ray_cluster import RayCluster
from mixpeek_orchestration.compute.serve import ServeCluster
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.health import ComponentHealth, check_all
from mixpeek_orchestration.sandbox.backends import sandbox_health
from mixpeek_orchestration.settings import MixpeekSettings
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.objects import ObjectStore, object_store_from_settings
from mixpeek_orchestration.storage.vectors import VectorStore

if TYPE_CHECKING:
    from mixpeek_orchestration.ingest.buckets import Buckets
    from mixpeek_orchestration.ingest.collections import Collections
    from mixpeek_orchestration.ingest.documents import Documents
    from mixpeek_orchestration.ingest.engine import IngestionEngine
    from mixpeek_orchestration.ingest.operations import IngestOperations
    from mixpeek_orchestration.ingest.planner import IngestPlanner
    from mixpeek_orchestration.ingest.step_plans import StepPlans
    from mixpeek_orchestration.llm.usage import LLMUsage
    from mixpeek_orchestration.platform.cascade import NamespaceCascade
    from mixpeek_orchestration.platform.lookups import Lookups
    from mixpeek_orchestration.platform.planes import Planes
    from mixpeek_orchestration.plugins.models import ModelRegistry
    from mixpeek_orchestration.plugins.registry import PluginRegistry
    from mixpeek_orchestration.plugins.submissions import Submissions
    from mixpeek_orchestration.retrieval.cache import QueryCache
    from mixpeek_orchestration.retrieval.execute import RetrieverExecutor
    from mixpeek_orchestration.retrieval.retrievers import Retrievers
    from mixpeek_orchestration.sandbox.config import SandboxConfig
    from mixpeek_orchestration.serve.deployer import Deployer, RemovalQueue
    from mixpeek_orchestration.tenancy.accounts import Accounts
    from mixpeek_orchestration.tenancy.overrides import Overrides
    from mixpeek_orchestration.tenancy.planes import Tenants
    from mixpeek_orchestration.tenancy.secrets import OrganizationSecrets

COMPONENTS = ("metadata", "objects", "vectors", "ray", "serve", "dagster", "sandbox")


def _own_cluster() -> str | None:
    """The cluster this process runs in, when it is a Ray worker (the ingestion service)."""
    if "ray" not in sys.modules:
        return None
    import ray

    return ray.get_runtime_context().gcs_address if ray.is_initialized() else None


def _not_configured(variable: str) -> MixpeekError:
    return MixpeekError(
        ErrorCode.COMPONENT_UNAVAILABLE,
        f"{variable} is not set; start the stack with `mixpeek up` or point it at a service",
        field=variable,
    )


class Platform:
    """Lazily built adapters and services for one data plane's settings.

    The stack's own settings make the control plane (which is also the shared data plane);
    :attr:`planes` builds a ``Platform`` per dedicated tenant, with ``tenant`` naming it.
    """

    def __init__(self, settings: MixpeekSettings, *, tenant: str | None = None) -> None:
        self.settings = settings
        self.tenant = tenant

    # -- adapters: one per external system ------------------------------------------------------

    @cached_property
    def metadata(self) -> MetadataStore:
        if not self.settings.mongo_uri:
            raise _not_configured("MIXPEEK_MONGO_URI")
        return MetadataStore(self.settings.mongo_uri, self.settings.mongo_database)

    @cached_property
    def objects(self) -> ObjectStore:
        return object_store_from_settings(self.settings)

    @cached_property
    def vectors(self) -> VectorStore:
        settings = self.settings
        options: dict[str, Any] = {}
        if settings.vectors_location.startswith("s3://"):
            options = {"region": settings.s3_region, "endpoint": settings.s3_endpoint_url}
            options |= {
                "access_key_id": settings.s3_access_key_id,
                "secret_access_key": settings.s3_secret_access_key
                and settings.s3_secret_access_key.get_secret_value(),
                "allow_http": "true"
                if (settings.s3_endpoint_url or "").startswith("http:")
                else None,
            }
        return VectorStore(
            settings.vectors_location,
            storage_options={k: v for k, v in options.items() if v} or None,
        )

    @cached_property
    def ray(self) -> RayCluster:
        address = self.settings.ray_address or _own_cluster()
        if not address:
            raise _not_configured("MIXPEEK_RAY_ADDRESS")
        return RayCluster(address, dashboard_url=self.settings.ray_dashboard_url)

    @cached_property
    def serve(self) -> ServeCluster:
        url = urlparse(self.settings.serve_url)
        return ServeCluster(self.ray, host=url.hostname or self.settings.host, port=url.port or 80)

    @cached_property
    def dagster(self) -> DagsterWebserver:
        return DagsterWebserver(self.settings.dagster_ui_url)

    @cached_property
    def sandbox(self) -> SandboxConfig:
        """How plugin hosts are sandboxed here: the operator's backend choice, the hosts every
        plugin may reach, and this plane's own services, which no plugin may."""
        from mixpeek_orchestration.sandbox.config import SandboxConfig
        from mixpeek_orchestration.sandbox.egress import denied_endpoints

        s = self.settings
        return SandboxConfig(
            backend=s.sandbox,
            gvisor_platform=s.gvisor_platform,
            egress_hosts=tuple(s.egress_allowed_hosts),
            denied_endpoints=denied_endpoints(
                [
                    s.api_url,
                    s.serve_url,
                    s.dagster_ui_url,
                    s.ray_address,
                    s.ray_dashboard_url,
                    s.mongo_uri,
                    s.redis_url.get_secret_value() if s.redis_url else None,
                ]
            ),
            timeout_s=s.plugin_timeout_s,
        )

    # -- repositories: each owns its collections and their queries ------------------------------

    @cached_property
    def accounts(self) -> Accounts:
        from mixpeek_orchestration.tenancy.accounts import Accounts

        return Accounts(self.metadata)

    @cached_property
    def secrets(self) -> OrganizationSecrets:
        """Organisation secrets of this plane, encrypted with the operator's keys."""
        from mixpeek_orchestration.tenancy.secrets import OrganizationSecrets, SecretCipher

        return OrganizationSecrets(self.metadata, SecretCipher(self.settings.secrets_keys))

    @cached_property
    def models(self) -> ModelRegistry:
        """The organisations' uploaded models (records here, files in the object store)."""
        from mixpeek_orchestration.plugins.models import ModelRegistry

        return ModelRegistry(self.metadata, self.objects)

    @cached_property
    def llm_usage(self) -> LLMUsage:
        """Every ``sdk.llm`` call of this plane's plugins: tokens, cost, latency, outcome."""
        from mixpeek_orchestration.llm.usage import LLMUsage

        return LLMUsage(self.metadata)

    @cached_property
    def tenants(self) -> Tenants:
        """Tenant configs (kept in the control plane only)."""
        from mixpeek_orchestration.tenancy.planes import Tenants

        return Tenants(self.metadata, self.accounts)

    @cached_property
    def registry(self) -> PluginRegistry:
        from mixpeek_orchestration.plugins.registry import PluginRegistry

        return PluginRegistry(self.metadata, self.objects, sandbox=self.sandbox)

    @cached_property
    def submissions(self) -> Submissions:
        from mixpeek_orchestration.plugins.submissions import Submissions

        return Submissions(self.metadata, self.objects, self.registry)

    @cached_property
    def removals(self) -> RemovalQueue:
        from mixpeek_orchestration.serve.deployer import RemovalQueue

        return RemovalQueue(self.metadata)

    @cached_property
    def buckets(self) -> Buckets:
        from mixpeek_orchestration.ingest.buckets import Buckets

        return Buckets(self.metadata, self.objects)

    @cached_property
    def documents(self) -> Documents:
        from mixpeek_orchestration.ingest.documents import Documents

        return Documents(self.metadata, self.vectors)

    @cached_property
    def collections(self) -> Collections:
        from mixpeek_orchestration.ingest.collections import Collections

        return Collections(self.metadata, self.buckets, self.registry, self.documents)

    @cached_property
    def planner(self) -> IngestPlanner:
        from mixpeek_orchestration.ingest.planner import IngestPlanner

        return IngestPlanner(
            self.metadata,
            self.buckets,
            self.collections,
            batch_objects=self.settings.ingest_batch_objects,
        )

    @cached_property
    def step_plans(self) -> StepPlans:
        from mixpeek_orchestration.ingest.step_plans import StepPlans

        return StepPlans(self.metadata)

    @cached_property
    def retrievers(self) -> Retrievers:
        from mixpeek_orchestration.retrieval.retrievers import Retrievers

        return Retrievers(self.metadata, self.collections)

    # -- services -------------------------------------------------------------------------------

    @cached_property
    def deployer(self) -> Deployer:
        from mixpeek_orchestration.serve.deployer import Deployer

        return Deployer(
            self.registry,
            self.removals,
            objects=self.objects,
            ray=self.ray,
            serve=self.serve,
            overrides=self.overrides,
            sandbox=self.sandbox,
            plane=self.tenant,
        )

    @cached_property
    def ingestion(self) -> IngestionEngine:
        from mixpeek_orchestration.ingest.engine import IngestionEngine

        return IngestionEngine(
            collections=self.collections,
            registry=self.registry,
            buckets=self.buckets,
            documents=self.documents,
            vectors=self.vectors,
            objects=self.objects,
            ray=self.ray,
            step_plans=self.step_plans,
            overrides=self.overrides,
            warm_idle_s=float(self.settings.ingest_warm_idle_s),
            sandbox=self.sandbox,
            plane=self.tenant,
        )

    @cached_property
    def operations(self) -> IngestOperations:
        from mixpeek_orchestration.ingest.operations import IngestOperations

        return IngestOperations(
            self.buckets, self.collections, self.documents, self.planner, self.registry
        )

    @cached_property
    def cascade(self) -> NamespaceCascade:
        from mixpeek_orchestration.platform.cascade import NamespaceCascade

        return NamespaceCascade(
            accounts=self.accounts,
            registry=self.registry,
            deployer=self.deployer,
            buckets=self.buckets,
            collections=self.collections,
            documents=self.documents,
            planner=self.planner,
            step_plans=self.step_plans,
            retrievers=self.retrievers,
            llm_usage=self.llm_usage,
        )

    @cached_property
    def lookups(self) -> Lookups:
        from mixpeek_orchestration.platform.lookups import Lookups

        return Lookups(self)

    @cached_property
    def query_cache(self) -> QueryCache:
        from mixpeek_orchestration.retrieval.cache import query_cache

        return query_cache(self.settings)

    def retrieval(
        self,
        call: Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]],
        *,
        cache: QueryCache | None = None,
    ) -> RetrieverExecutor:
        """A retriever executor over this plane's stores, encoding queries with ``call``
        (``call(route_prefix, inputs, parameters)`` answers a realtime deployment) and caching
        query vectors in ``cache`` (the plane's own by default)."""
        from mixpeek_orchestration.retrieval.execute import RetrieverExecutor

        return RetrieverExecutor(
            collections=self.collections,
            registry=self.registry,
            documents=self.documents,
            vectors=self.vectors,
            call=call,
            cache=cache or self.query_cache,
        )

    # -- tenancy --------------------------------------------------------------------------------

    @cached_property
    def planes(self) -> Planes:
        """Tenant routing from this (control) plane to every dedicated data plane."""
        from mixpeek_orchestration.platform.planes import Planes

        return Planes(self)

    def plane_for(self, org_id: str) -> Platform:
        """The data plane serving organisation ``org_id`` (this one unless it has a tenant)."""
        if self.tenant is not None or not self.settings.mongo_uri:  # no control plane records
            return self
        return self.planes.for_org(org_id)

    def overrides(self) -> Overrides:
        """The operator's overrides file (``MIXPEEK_OVERRIDES_FILE``), read on every call so a
        deploy always merges the current one; none configured means no overrides."""
        from mixpeek_orchestration.tenancy.overrides import Overrides, load_overrides

        path = self.settings.overrides_file
        return load_overrides(path) if path is not None else Overrides()

    # -- lifecycle ------------------------------------------------------------------------------

    def ensure_indexes(self) -> None:
        """Create the metadata indexes every domain relies on (idempotent)."""
        self.accounts.ensure_indexes()
        if self.tenant is None:
            self.tenants.ensure_indexes()
        for repository in (
            self.registry,
            self.submissions,
            self.removals,
            self.buckets,
            self.documents,
            self.collections,
            self.planner,
            self.step_plans,
            self.retrievers,
            self.secrets,
            self.llm_usage,
            self.models,
        ):
            repository.ensure_indexes()

    def health_checks(self) -> dict[str, Callable[[], ComponentHealth]]:
        return {
            "metadata": lambda: self.metadata.health(),
            "objects": lambda: self.objects.health(),
            "vectors": lambda: self.vectors.health(),
            "ray": lambda: self.ray.health(),
            "serve": lambda: self.serve.health(),
            "dagster": lambda: self.dagster.health(),
            "sandbox": lambda: sandbox_health(self.sandbox),
        } | ({"cache": lambda: self.query_cache.health()} if self.settings.redis_url else {})

    def health(self, *, timeout_s: float = 10.0) -> dict[str, ComponentHealth]:
        """Check every component concurrently."""
        return check_all(self.health_checks(), timeout_s=timeout_s)

    def close(self) -> None:
        if "planes" in self.__dict__:
            self.planes.close()
        if "metadata" in self.__dict__:
            self.metadata.close()
