"""Kubernetes manifests for one tenant, rendered from its overrides file (SPEC §10, seed 004).

``render(tenant, overrides, extractors)`` returns documents per file:

* ``namespace.yaml``: the tenant's namespace, a ``ResourceQuota`` sized from the cluster
  shape (head plus every worker group at its maximum), the gVisor ``RuntimeClass`` and a
  ``NetworkPolicy`` for the pods that host plugin code (no cloud metadata, no other
  namespace's pods);
* ``rayservice.yaml``: a KubeRay ``RayService``: worker groups ``cpu`` (realtime), ``batch``
  (ingestion; a synthetic ``batch`` resource keeps batch actors off Serve workers) and ``gpu``
  (``nvidia.com/gpu`` with the accelerator as node selector), node ranges from the file, and a
  Serve application per served extractor with its autoscaling and resources. Every worker group
  hosts plugin code, so its pods run on the gVisor ``RuntimeClass`` with a read-only root file
  system, no capabilities, no service-account token and ``emptyDir`` scratch; the head (which
  schedules nothing) runs on the ordinary runtime;
* ``dagster-values.yaml``: values for the Dagster Helm chart: Postgres storage, the
  ``K8sRunLauncher`` (dagster-k8s), the ``plugin_assets`` code location;
* ``api.yaml``: the API ``Deployment`` and ``Service``.

Every container gets the file's ``env``; with the tenant's data plane (``--plane``), the Ray and
Dagster containers also get its endpoints as ``MIXPEEK_*`` variables, credentials by reference to
the ``mixpeek-plane`` Secret. Each manifest is checked before anything is written:
Kubernetes objects against the ``kubernetes`` client's models, the ``RayService`` against
KubeRay's CRD schema (vendored under ``schemas/``).

Example:
    >>> files = render("acme", load_overrides(path, known=names), names)
    >>> write(files, Path("out/acme"))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from mixpeek_orchestration import __version__
from mixpeek_orchestration.compute.resources import BATCH_RESOURCE  # batch actors ask for it
from mixpeek_orchestration.compute.serve import INGEST_APP, INGEST_ROUTE
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.tenancy.overrides import ExtractorOverride, NodeRange, Overrides
from mixpeek_orchestration.tenancy.planes import DataPlane

IMAGE = f"ghcr.io/mixpeek/mixpeek-orchestration:{__version__}"
RAY_VERSION = "2.60.0"
SERVE_PORT = 8000
API_PORT = 8000
SCHEMAS = Path(__file__).parent / "schemas"
PLANE_SECRET = "mixpeek-plane"
PLUGIN_HOST_LABEL = "mixpeek.io/plugin-host"
PRIVATE_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
"""Where plugin-hosting pods may not connect (beyond their own namespace): pod and service
networks, link-local (the cloud metadata service)."""
PLANE_SECRETS = ("mongo_uri", "s3_access_key_id", "s3_secret_access_key", "redis_url")
"""Data-plane settings that may carry credentials: read from the Secret, never rendered."""


def namespace_name(tenant: str) -> str:
    return f"mixpeek-{tenant}"


@dataclass(frozen=True)
class PlaneEnv:
    """What the data plane's containers (Ray, Dagster) are told about its endpoints: plain
    ``MIXPEEK_*`` values, and the names read from the ``mixpeek-plane`` Secret (credentials
    never enter a manifest)."""

    values: dict[str, str]
    secrets: tuple[str, ...] = ()


def plane_env(tenant: str, plane: DataPlane | None) -> PlaneEnv:
    """The tenant's data-plane endpoints as container env (none given: only its name)."""
    values = {"MIXPEEK_TENANT": tenant}
    if plane is None:
        return PlaneEnv(values)
    if not plane.s3_bucket:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            "A rendered data plane keeps its objects in S3 (pods share no disk): set s3_bucket",
            field="s3_bucket",
        )
    prefix = plane.s3_prefix.strip("/")
    settings = {
        "mongo_database": plane.mongo_database,
        "s3_bucket": plane.s3_bucket,
        "s3_prefix": prefix,
        "s3_endpoint_url": plane.s3_endpoint_url,
        "s3_region": plane.s3_region,
        "vectors_uri": plane.vectors_uri
        or f"s3://{plane.s3_bucket}/{prefix + '/' if prefix else ''}vectors",
        "queue_prefix": plane.queue_prefix if plane.queue_prefix is not None else f"{tenant}-",
    }
    values |= {f"MIXPEEK_{k.upper()}": v for k, v in settings.items() if v}
    secrets = tuple(
        f"MIXPEEK_{name.upper()}" for name in PLANE_SECRETS if getattr(plane, name) is not None
    )
    return PlaneEnv(values, secrets)


def _env(overrides: Overrides, plane: PlaneEnv, **platform: str) -> list[dict[str, Any]]:
    merged = {**plane.values, **platform, **overrides.env}
    env: list[dict[str, Any]] = [{"name": k, "value": str(v)} for k, v in sorted(merged.items())]
    return env + [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": PLANE_SECRET, "key": name}}}
        for name in plane.secrets
        if name not in merged
    ]


def _quantity(value: str) -> Decimal:
    from kubernetes.utils.quantity import parse_quantity

    return Decimal(parse_quantity(value))


def _container(
    name: str, image: str, env: list[dict[str, Any]], cpu: str, memory: str, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "env": env,
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu, "memory": memory, **extra.pop("limits", {})},
        },
        **extra,
    }


def serve_deployment_config(override: ExtractorOverride) -> dict[str, Any]:
    """A Serve deployment's options from an extractor's overrides (the local stack's deployer
    applies the same through ``serve_options``)."""
    from mixpeek_orchestration.serve.options import serve_options

    options = serve_options({"serve_config": override.serve_config()}, "plugin")
    return {k: v for k, v in options.items() if k != "name"} | {"name": "plugin"}


def _worker_group(
    group: str,
    node: NodeRange,
    image: str,
    env: list[dict[str, Any]],
    spec: Any,
    runtime_class: str,
) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    params: dict[str, str] = {}
    pod: dict[str, Any] = {}
    if group == "gpu":
        limits["nvidia.com/gpu"] = 1
        pod["nodeSelector"] = {"cloud.google.com/gke-accelerator": node.accelerator or "nvidia-l4"}
        pod["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    if group == "batch":
        # batch actors ask for this resource, so they never land on realtime workers
        params["resources"] = json.dumps({BATCH_RESOURCE: 1000})
    probe = {
        "httpGet": {"path": "/api/local_raylet_healthz", "port": 52365},
        "periodSeconds": int(spec.health_check_period_s),
        "timeoutSeconds": int(spec.health_check_timeout_s),
    }
    container = _container(
        "ray-worker", image, env, node.cpu, node.memory, limits=limits,
        readinessProbe=probe, livenessProbe=probe,
        securityContext={
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        # Ray's session files and the plugin hosts' scratch: the only writable places
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )  # fmt: skip
    return {
        "groupName": group,
        "replicas": node.min_nodes,
        "minReplicas": node.min_nodes,
        "maxReplicas": node.max_nodes,
        "rayStartParams": params,
        "template": {
            "metadata": {"labels": {PLUGIN_HOST_LABEL: "true"}},
            "spec": {
                "runtimeClassName": runtime_class,
                "automountServiceAccountToken": False,
                "containers": [container],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                **pod,
            },
        },
    }


def render_rayservice(
    tenant: str, overrides: Overrides, served: list[str], *, image: str, plane: PlaneEnv
) -> dict[str, Any]:
    env = _env(overrides, plane)
    applications = [
        {
            "name": name,
            "route_prefix": f"/inference/{name}",
            "import_path": "mixpeek_orchestration.platform.serve_app:app_builder",
            "args": {"extractor": name},
            "deployments": [serve_deployment_config(overrides.for_extractor(name))],
        }
        for name in served
    ]
    # the ingestion service Dagster runs hand their batches to (no resources of its own: it
    # waits on the batch actors and writes to the stores)
    applications.append(
        {
            "name": INGEST_APP,
            "route_prefix": INGEST_ROUTE,
            "import_path": "mixpeek_orchestration.platform.ingest_service:app_builder",
            "args": {},
        }
    )
    head = _container(
        "ray-head", image, env, overrides.head.cpu, overrides.head.memory,
        ports=[{"containerPort": 6379, "name": "gcs"}, {"containerPort": 8265, "name": "dashboard"},
               {"containerPort": SERVE_PORT, "name": "serve"}],
    )  # fmt: skip
    cluster = overrides.cluster
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": f"{tenant}-ray", "namespace": namespace_name(tenant)},
        "spec": {
            "serveConfigV2": _dump([{"applications": applications}]).removesuffix("...\n"),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": True,
                "headGroupSpec": {
                    # the head schedules nothing: realtime on cpu / gpu, batch on batch
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {"spec": {"containers": [head]}},
                },
                "workerGroupSpecs": [
                    _worker_group(
                        name,
                        getattr(cluster, name),
                        image,
                        env,
                        overrides.spec,
                        overrides.sandbox.runtime_class,
                    )
                    for name in ("cpu", "batch", "gpu")
                ],
            },
        },
    }


def render_namespace(tenant: str, overrides: Overrides) -> list[dict[str, Any]]:
    cluster = overrides.cluster
    groups = [cluster.cpu, cluster.batch, cluster.gpu]
    cpu = _quantity(overrides.head.cpu) + sum(
        (_quantity(g.cpu) * g.max_nodes for g in groups), Decimal(0)
    )
    memory = _quantity(overrides.head.memory) + sum(
        (_quantity(g.memory) * g.max_nodes for g in groups), Decimal(0)
    )
    # room for the API and Dagster next to the Ray cluster
    cpu += 8
    memory += 32 * 2**30
    name = namespace_name(tenant)
    private = (
        [{"to": [{"ipBlock": {"cidr": c}} for c in overrides.sandbox.private_egress]}]
        if overrides.sandbox.private_egress
        else []
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"mixpeek.io/tenant": tenant}},
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": f"{tenant}-quota", "namespace": name},
            "spec": {
                "hard": {
                    "requests.cpu": format(cpu.normalize(), "f"),
                    "limits.cpu": format(cpu.normalize(), "f"),
                    "requests.memory": f"{int(memory // 2**30)}Gi",
                    "limits.memory": f"{int(memory // 2**30)}Gi",
                    "requests.nvidia.com/gpu": str(cluster.gpu.max_nodes),
                }
            },
        },
        {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": overrides.sandbox.runtime_class},
            "handler": "runsc",
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{tenant}-plugin-hosts", "namespace": name},
            "spec": {
                "podSelector": {"matchLabels": {PLUGIN_HOST_LABEL: "true"}},
                "policyTypes": ["Egress"],
                "egress": [
                    # the tenant's own Ray cluster and services, and cluster DNS
                    {"to": [{"podSelector": {}}]},
                    {
                        "to": [
                            {
                                "namespaceSelector": {},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                    # the object store, the data plane and the hosts plugins may call (the egress
                    # proxy in each worker enforces the allow list); never the cloud metadata
                    # service or another namespace's pods
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_CIDRS)}}]},
                    *private,
                ],
            },
        },
    ]


def render_api(tenant: str, overrides: Overrides, *, image: str) -> list[dict[str, Any]]:
    name = namespace_name(tenant)
    labels = {"app.kubernetes.io/name": "mixpeek-api", "mixpeek.io/tenant": tenant}
    env = _env(
        overrides,
        PlaneEnv({"MIXPEEK_TENANT": tenant}),  # the API reaches the plane through routing
        MIXPEEK_RAY_ADDRESS=f"{tenant}-ray-head-svc.{name}.svc:6379",
        MIXPEEK_SERVE_PORT=str(SERVE_PORT),
    )
    api = _container(
        "api", image, env, "1", "2Gi",
        command=["uvicorn", "mixpeek_orchestration.api.app:create_app", "--factory",
                 "--host", "0.0.0.0", "--port", str(API_PORT)],
        ports=[{"containerPort": API_PORT, "name": "http"}],
        readinessProbe={"httpGet": {"path": "/healthz", "port": API_PORT},
                        "periodSeconds": int(overrides.spec.health_check_period_s),
                        "timeoutSeconds": int(overrides.spec.health_check_timeout_s)},
    )  # fmt: skip
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "mixpeek-api", "namespace": name, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [api]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "mixpeek-api", "namespace": name, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": API_PORT}],
            },
        },
    ]


def render_dagster_values(
    tenant: str, overrides: Overrides, *, image: str, plane: PlaneEnv
) -> dict[str, Any]:
    """Values for the ``dagster/dagster`` Helm chart (credentials through ``envSecrets``)."""
    repository, _, tag = image.rpartition(":")
    env = {e["name"]: e["value"] for e in _env(overrides, PlaneEnv(plane.values))}
    secrets = [{"name": PLANE_SECRET}] if plane.secrets else []
    return {
        "postgresql": {"enabled": True},  # run, event and schedule storage
        "runLauncher": {
            "type": "K8sRunLauncher",
            "config": {
                "k8sRunLauncher": {
                    "jobNamespace": namespace_name(tenant),
                    "envVars": [f"{k}={v}" for k, v in env.items()],
                    "envSecrets": secrets,
                }
            },
        },
        "dagster-user-deployments": {
            "enabled": True,
            "deployments": [
                {
                    "name": "plugin-assets",
                    "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
                    # `dagster code-server start`: the platform_state_sensor reloads it (at
                    # its Service, named after the deployment) when collections change
                    "codeServerArgs": ["-m", "plugin_assets.definitions"],
                    "port": 3030,
                    "env": env | {"MIXPEEK_DAGSTER_CODE_SERVER": "plugin-assets:3030"},
                    "envSecrets": secrets,
                }
            ],
        },
        "dagsterDaemon": {"enabled": True, "env": env, "envSecrets": secrets},
        "dagsterWebserver": {"env": env, "envSecrets": secrets},
    }


@cache
def _rayservice_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "rayservice.ray.io-v1.json").read_text())  # type: ignore[no-any-return]


def check_manifest(doc: dict[str, Any]) -> None:
    """Validate one manifest offline: Kubernetes kinds against the client's models (required
    fields, types), ``RayService`` against KubeRay's CRD schema."""
    kind = doc.get("kind")
    if kind == "RayService":
        import jsonschema

        errors = sorted(
            jsonschema.Draft7Validator(_rayservice_schema()).iter_errors(doc),
            key=lambda e: list(e.path),
        )
        if errors:
            where = ".".join(str(p) for p in errors[0].path)
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, f"RayService {where}: {errors[0].message}"
            )
        for group in doc["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
            _check_kubernetes(group["template"], "V1PodTemplateSpec")
        _check_kubernetes(
            doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"], "V1PodTemplateSpec"
        )
        return
    models = {
        "Namespace": "V1Namespace",
        "ResourceQuota": "V1ResourceQuota",
        "RuntimeClass": "V1RuntimeClass",
        "NetworkPolicy": "V1NetworkPolicy",
        "Deployment": "V1Deployment",
        "Service": "V1Service",
    }
    if kind not in models:
        raise MixpeekError(ErrorCode.INVALID_REQUEST, f"no schema to check a {kind!r} against")
    _check_kubernetes(doc, models[kind])


def _check_kubernetes(doc: dict[str, Any], model: str) -> None:
    from kubernetes import client

    try:
        client.ApiClient()._ApiClient__deserialize(doc, model)  # type: ignore[attr-defined]
    except (ValueError, TypeError) as exc:
        raise MixpeekError(ErrorCode.INVALID_REQUEST, f"{model}: {exc}") from None


def render(
    tenant: str,
    overrides: Overrides,
    registry: list[str],
    *,
    image: str = IMAGE,
    plane: DataPlane | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The tenant's manifests by file name; every document checked. ``plane`` (the tenant's
    data-plane endpoints) goes into the Ray and Dagster containers' env."""
    if not tenant or not tenant.replace("-", "").isalnum() or not tenant.islower():
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"tenant {tenant!r} must be lower-case letters, digits and dashes (a Kubernetes name)",
            field="tenant",
        )
    overrides.check_names(registry)
    endpoints = plane_env(tenant, plane)
    files = {
        "namespace.yaml": render_namespace(tenant, overrides),
        "rayservice.yaml": [
            render_rayservice(
                tenant, overrides, overrides.served(registry), image=image, plane=endpoints
            )
        ],
        "api.yaml": render_api(tenant, overrides, image=image),
    }
    for documents in files.values():
        for doc in documents:
            check_manifest(doc)
    files["dagster-values.yaml"] = [
        render_dagster_values(tenant, overrides, image=image, plane=endpoints)
    ]
    return files


def _dump(documents: list[Any]) -> str:
    """YAML without anchors and aliases: every manifest reads on its own."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None  # serveConfigV2 stays readable YAML
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Plain.add_representer(str, text)

    return yaml.dump_all(documents, Dumper=Plain, sort_keys=False)


def write(files: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, documents in files.items():
        path = out / name
        path.write_text(_dump(documents))
        written.append(path)
    return written
