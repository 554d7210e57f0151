"""Opening a stored plugin version in a worker: a Serve replica or an ingestion actor.

A worker never reads a developer's tree or the platform's stores: it is given a presigned URL of
the version's archive and its sha256 (a plugin spec), downloads and verifies the bytes, extracts
them through the archive gate, and starts a sandboxed plugin host over the extracted plugin
(:class:`~mixpeek_orchestration.plugins.session.PluginSession`). The worker itself runs no plugin
code; the host runs all of it, with a cleared environment and only what the spec grants.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mixpeek_orchestration.sandbox.config import SandboxConfig

if TYPE_CHECKING:
    from mixpeek_orchestration.models.namespace import ModelSource
    from mixpeek_orchestration.plugins.session import PluginSession
    from mixpeek_orchestration.sandbox.supervisor import Service
    from mixpeek_orchestration.storage.objects import ObjectStore
    from mixpeek_orchestration.tenancy.secrets import SecretSource

logger = logging.getLogger(__name__)

ARCHIVE_URL_TTL_S = 6 * 3600


def plugin_spec(
    version: Mapping[str, Any],
    objects: ObjectStore,
    sandbox: SandboxConfig,
    *,
    plane: str | None = None,
) -> dict[str, Any]:
    """What a worker needs to open a registered version (its ``plugin_versions`` record) of
    data plane ``plane`` (a dedicated tenant; ``None``: the shared plane)."""
    return {
        "plugin_id": version["plugin_id"],
        "org_id": version["org_id"],
        "namespace_id": version["namespace_id"],
        "sha256": version["sha256"],
        "archive_url": objects.presign_get(
            version["archive_key"], expires_in=ARCHIVE_URL_TTL_S
        ).url,
        "egress_hosts": list((version.get("manifest") or {}).get("egress_hosts") or []),
        "asset_url_prefixes": [blob_url_prefix(version, objects)],
        "sandbox": sandbox.as_dict(),
        "secrets": list((version.get("manifest") or {}).get("secrets") or []),
        "plane": plane,
    }


class WorkerServices(NamedTuple):
    """What a worker's plugin host may ask of the platform besides computing."""

    secrets: SecretSource | None
    """The organisation secrets the manifest declares (``None``: it declares none)."""
    llm: Service | None
    """The LLM gateway (``None``: no provider is configured)."""
    models: ModelSource | None
    """The organisation's uploaded models."""


def worker_services(spec: Mapping[str, Any], *, collection_id: str | None = None) -> WorkerServices:
    """The services of the plugin in ``spec``, in a worker: its declared secrets, the LLM
    gateway when the operator configured providers (its calls counted against
    ``collection_id`` in batch), and the organisation's uploaded models.

    All of them read the plugin's data plane, found from the worker's own settings (every
    cluster process has the control plane's) and the plane's config, so no value or credential
    travels in the spec.
    """
    from mixpeek_orchestration.llm.gateway import LLMGateway
    from mixpeek_orchestration.llm.providers import parse_providers
    from mixpeek_orchestration.llm.usage import LLMUsage
    from mixpeek_orchestration.plugins.models import (
        ModelRegistry,
        StoredModels,
        uploaded_models_dir,
    )
    from mixpeek_orchestration.settings import load_settings
    from mixpeek_orchestration.storage.metadata import MetadataStore
    from mixpeek_orchestration.storage.objects import object_store_from_settings
    from mixpeek_orchestration.tenancy.accounts import Accounts
    from mixpeek_orchestration.tenancy.planes import Tenants, parse_plane
    from mixpeek_orchestration.tenancy.secrets import OrganizationSecrets, SecretCipher

    settings = load_settings()
    if not settings.mongo_uri:  # a worker outside any stack (a bare test): nothing to offer
        return WorkerServices(None, None, None)
    metadata = MetadataStore(settings.mongo_uri, settings.mongo_database)
    plane = spec.get("plane")
    if plane:
        raw = Tenants(metadata, Accounts(metadata)).config(plane)
        settings = parse_plane(raw).settings_over(settings, plane)
        metadata = MetadataStore(settings.mongo_uri or "", settings.mongo_database)
    org_id, namespace_id = str(spec["org_id"]), str(spec["namespace_id"])
    store = OrganizationSecrets(metadata, SecretCipher(settings.secrets_keys))
    names = list(spec.get("secrets") or ())
    models = StoredModels(
        ModelRegistry(metadata, object_store_from_settings(settings)),
        org_id,
        uploaded_models_dir(),
        plugin_id=str(spec["plugin_id"]),
        namespace_id=namespace_id,
    )
    providers = parse_providers(settings.llm_providers)
    gateway = None
    if providers:
        accounts = Accounts(metadata)
        gateway = LLMGateway(
            providers,
            secrets=store,
            usage=LLMUsage(metadata),
            budget=lambda: accounts.llm_budget(namespace_id),
            scope={
                "org_id": org_id,
                "namespace_id": namespace_id,
                "plugin_id": spec["plugin_id"],
                "collection_id": collection_id,
            },
            denied_endpoints=SandboxConfig.from_dict(spec.get("sandbox")).denied_endpoints,
        )
    return WorkerServices(store.reader(org_id, names) if names else None, gateway, models)


def blob_url_prefix(scope: Mapping[str, Any], objects: ObjectStore) -> str:
    """How every signed URL of the namespace's bucket files starts (local store or S3)."""
    probe = f"{scope['org_id']}/{scope['namespace_id']}/buckets/"
    url = objects.presign_get(f"{probe}probe", expires_in=60).url
    return url[: url.index("buckets/probe") + len("buckets/")]


def download_archive(url: str, sha256: str, target: Path) -> None:
    """Stream ``url`` to ``target``, failing unless its sha256 is ``sha256``."""
    import httpx

    digest = hashlib.sha256()
    with httpx.stream("GET", url, timeout=120) as response, target.open("wb") as out:
        if response.status_code != 200:
            raise RuntimeError(f"archive download answered HTTP {response.status_code}")
        for chunk in response.iter_bytes(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise RuntimeError(
            f"archive sha256 {digest.hexdigest()} does not match the registered {sha256}"
        )


def fetch_plugin(spec: Mapping[str, Any], work: Path) -> Path:
    """Download, verify and extract (through the archive gate) the version ``spec`` names
    into ``work``; returns the plugin directory."""
    from mixpeek_orchestration.plugins.archive import extract_archive

    work.mkdir(parents=True, exist_ok=True)
    archive = work / "archive.zip"
    download_archive(spec["archive_url"], spec["sha256"], archive)
    extracted = extract_archive(archive, work / "plugin")
    archive.unlink()
    return extracted.root


def worker_devices() -> tuple[str, ...]:
    """The device nodes a worker's plugin host gets: the NVIDIA nodes when Ray assigned the
    worker GPUs (``CUDA_VISIBLE_DEVICES``, passed through, selects among them), else none."""
    from mixpeek_orchestration.compute.resources import assigned_gpus
    from mixpeek_orchestration.sandbox.backends import gpu_devices

    gpus = assigned_gpus()
    if not gpus:
        return ()
    devices = gpu_devices()
    if not devices:
        logger.warning(
            "Ray assigned GPUs %s but this machine has no /dev/nvidia* device: the plugin host "
            "runs on CPU",
            ",".join(gpus),
        )
    return devices


def open_stored_plugin(
    spec: Mapping[str, Any],
    *,
    devices: Sequence[str] | None = None,
    collection_id: str | None = None,
) -> PluginSession:
    """The version ``spec`` names, opened in a sandboxed host (its manifest imported).

    ``devices``: device nodes for the host (default: the worker's GPUs, :func:`worker_devices`).
    ``collection_id``: the collection a batch host works for (its LLM calls count there).

    ``spec`` holds ``plugin_id``, ``org_id``, ``namespace_id``, ``archive_url``, ``sha256``,
    ``sandbox`` (the operator's choice) and optionally ``egress_hosts`` (the manifest's) and
    ``asset_url_prefixes`` (signed URLs of the namespace's stored blobs, which the plugin may
    download).
    """
    from mixpeek_orchestration.plugins.session import PluginSession

    work = Path(tempfile.mkdtemp(prefix=f"mixpeek-{spec['plugin_id']}-"))
    root = fetch_plugin(spec, work / "source")
    sandbox = SandboxConfig.from_dict(spec.get("sandbox"))
    hosts = [*sandbox.egress_hosts, *spec.get("egress_hosts", ())]
    prefixes = list(spec.get("asset_url_prefixes", ()))
    services = worker_services(spec, collection_id=collection_id)
    session = PluginSession.start(
        root,
        sandbox=sandbox,
        allowed_hosts=spec.get("egress_hosts", ()),
        asset_url_prefixes=prefixes,
        models=services.models,
        secrets=services.secrets,
        llm=services.llm,
        work_dir=work,
        devices=worker_devices() if devices is None else devices,
    )
    try:
        session.open(
            org_id=spec["org_id"],
            namespace_id=spec["namespace_id"],
            allowed_hosts=hosts,
            asset_url_prefixes=prefixes,
            secrets=list(spec.get("secrets") or ()),
        )
    except BaseException:
        session.close()
        raise
    return session
