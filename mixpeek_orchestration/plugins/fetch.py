"""Opening a stored plugin version in a worker process: a Serve replica or an ingestion actor.

A worker never reads a developer's tree or the platform's stores: it is given a presigned URL of
the version's archive and its sha256 (a :class:`PluginSpec`), downloads and verifies the bytes,
extracts them through the archive gate into its scratch directory, removes platform secrets from
its environment, and loads the plugin with :class:`PluginRuntime` under the runtime guard.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixpeek_orchestration.plugins.runtime import PluginRuntime
    from mixpeek_orchestration.storage.objects import ObjectStore

ARCHIVE_URL_TTL_S = 6 * 3600


def plugin_spec(version: dict[str, Any], objects: ObjectStore) -> dict[str, Any]:
    """What a worker needs to open a registered version (its ``plugin_versions`` record)."""
    return {
        "plugin_id": version["plugin_id"],
        "org_id": version["org_id"],
        "namespace_id": version["namespace_id"],
        "sha256": version["sha256"],
        "archive_url": objects.presign_get(
            version["archive_key"], expires_in=ARCHIVE_URL_TTL_S
        ).url,
        "allowed_hosts": [],
        "asset_url_prefixes": [blob_url_prefix(version, objects)],
    }


def blob_url_prefix(scope: dict[str, Any], objects: ObjectStore) -> str:
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


def open_stored_plugin(spec: dict[str, Any]) -> PluginRuntime:
    """Download, verify, gate and load the plugin ``spec`` names, in this dedicated process.

    ``spec`` holds ``plugin_id``, ``org_id``, ``namespace_id``, ``archive_url``, ``sha256`` and
    optionally ``allowed_hosts`` and ``asset_url_prefixes`` (signed URLs of the namespace's
    stored blobs, which the plugin may download).
    """
    from mixpeek_orchestration.plugins.archive import extract_archive
    from mixpeek_orchestration.plugins.guard import scrubbed_environ
    from mixpeek_orchestration.plugins.runtime import PluginRuntime
    from mixpeek_orchestration.sdk.context import PluginContext

    scratch = Path(tempfile.mkdtemp(prefix=f"mixpeek-{spec['plugin_id']}-"))
    archive = scratch / "archive.zip"
    download_archive(spec["archive_url"], spec["sha256"], archive)
    extracted = extract_archive(archive, scratch / "plugin")
    archive.unlink()
    # A worker is a dedicated process: its plugin never sees platform secrets.
    for key in set(os.environ) - set(scrubbed_environ()):
        del os.environ[key]
    context = PluginContext(
        org_id=spec["org_id"],
        namespace_id=spec["namespace_id"],
        scratch_dir=scratch / "work",
        asset_url_prefixes=tuple(spec.get("asset_url_prefixes", ())),
    )
    return PluginRuntime.open(
        extracted.root,
        context=context,
        allowed_hosts=spec.get("allowed_hosts", ()),
        dedicated_process=True,
    )
