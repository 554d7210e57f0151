"""The plugin registry: uploads, confirmation, versions, history, rollback, diff, deletion.

Records (metadata store), all carrying ``org_id`` and ``namespace_id``:

* ``plugin_uploads``: one per upload URL issued (``plu_...``), ``pending`` until confirmed,
  then ``confirmed`` (with the ``plugin_id``) or ``failed`` (with the violations / errors);
* ``plugin_versions``: one per registered version (``plugin_id`` = ``{name}_{X_Y_Z}``), with the
  archive's object key, sha256, per-file hashes, the manifest description, feature URIs, scan
  warnings, who published it and why;
* ``plugins``: one per plugin name, with the active version pointer;
* ``plugin_events``: the history (publish, rollback, delete) that ``log`` shows.

Archives live at ``{org_id}/{namespace_id}/plugin_custom/{name}/{version}/archive.zip``.
Confirmation is idempotent and all-or-nothing: the uploaded bytes are streamed to a private
temporary file (hashed on the way), checked (gate, scan, manifest, dry run), and only then
copied to the version's key and registered; a failed check registers nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.archive import ArchiveLimits, open_plugin_archive
from mixpeek_orchestration.plugins.policy import ScanPolicy
from mixpeek_orchestration.plugins.records import DeploymentStatus, PluginVersion, route_prefix
from mixpeek_orchestration.plugins.validation import PluginCheck, check_plugin_archive
from mixpeek_orchestration.sandbox.config import SandboxConfig
from mixpeek_orchestration.sdk._manifest import (
    SLUG_PATTERN,
    FeatureUri,
    normalize_version,
    plugin_id_for,
)
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.tenancy.accounts import Caller, Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.storage.metadata import MetadataStore
    from mixpeek_orchestration.storage.objects import ObjectStore

MAX_ARCHIVE_BYTES = ArchiveLimits().max_compressed_bytes
CHUNK = 1024 * 1024


def plugin_prefix(namespace: Namespace) -> str:
    return f"{namespace.org_id}/{namespace.namespace_id}/plugin_custom"


def archive_key(namespace: Namespace, name: str, version: str, sha256: str) -> str:
    # The content hash in the name keeps two racing confirms of one version from overwriting
    # each other's bytes: the loser removes only its own file.
    return f"{plugin_prefix(namespace)}/{name}/{version}/archive-{sha256[:16]}.zip"


def check_name(name: str) -> str:
    if not re.fullmatch(SLUG_PATTERN, name):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"Invalid plugin name {name!r}: lowercase letters, digits and '_', starting with a letter",
            field="name",
        )
    return name


def check_version(version: str) -> str:
    try:
        return normalize_version(version)
    except ValueError as exc:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, f"Invalid version: {exc}", field="version"
        ) from None


def bump_patch(version: str) -> str:
    major, minor, patch = (int(p) for p in normalize_version(version).split("."))
    return f"{major}.{minor}.{patch + 1}"


def version_key(version: str) -> tuple[int, int, int]:
    major, minor, patch = (int(p) for p in version.split("."))
    return major, minor, patch


@dataclass(frozen=True)
class UploadTicket:
    upload_id: str
    presigned_url: str
    expires_at: Any
    headers: dict[str, str]
    max_size_bytes: int
    name: str
    version: str
    object_key: str


HOSTED_DEPLOYMENT = {
    DeploymentStatus.DEPLOYED: "deployed",
    DeploymentStatus.FAILED: "failed",
    DeploymentStatus.NOT_DEPLOYED: "not_deployed",
}
"""A deployment status as the hosted confirm answer spells it (the rest are ``pending``)."""


class PluginRegistry:
    """Plugins of every organisation and namespace, always queried through a :class:`Caller`."""

    def __init__(
        self,
        metadata: MetadataStore,
        objects: ObjectStore,
        *,
        scan_policy: ScanPolicy | None = None,
        limits: ArchiveLimits | None = None,
        sandbox: SandboxConfig | None = None,
    ) -> None:
        self.objects = objects
        self.sandbox = sandbox or SandboxConfig()
        self.uploads = metadata.collection("plugin_uploads")
        self.versions = metadata.collection("plugin_versions")
        self.plugins = metadata.collection("plugins")
        self.events = metadata.collection("plugin_events")
        self.scan_policy = scan_policy or ScanPolicy()
        self.limits = limits or ArchiveLimits()

    def ensure_indexes(self) -> None:
        self.uploads.create_index("upload_id", unique=True)
        self.versions.create_index(
            [("org_id", 1), ("namespace_id", 1), ("plugin_id", 1)], unique=True
        )
        self.versions.create_index([("org_id", 1), ("namespace_id", 1), ("name", 1)])
        self.versions.create_index("feature_uris")
        self.plugins.create_index([("org_id", 1), ("namespace_id", 1), ("name", 1)], unique=True)
        self.events.create_index([("org_id", 1), ("namespace_id", 1), ("name", 1), ("at", 1)])

    @staticmethod
    def _scope(namespace: Namespace) -> dict[str, str]:
        return {"org_id": namespace.org_id, "namespace_id": namespace.namespace_id}

    # -- uploads --------------------------------------------------------------------------------

    def create_upload(
        self,
        caller: Caller,
        namespace: Namespace,
        *,
        name: str,
        version: str,
        description: str = "",
        file_size_bytes: int | None = None,
        expires_in: int = 3600,
    ) -> UploadTicket:
        """Issue a signed / presigned URL the archive can be PUT to."""
        name, version = check_name(name), check_version(version)
        self.check_declared_size(file_size_bytes)
        if not 1 <= expires_in <= 7 * 24 * 3600:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"presigned_url_expiration ({expires_in}) must be between 1 and 604800 seconds",
                field="presigned_url_expiration",
            )
        upload_id = new_id("plu")
        key = f"{plugin_prefix(namespace)}/_uploads/{upload_id}.zip"
        presigned = self.objects.presign_put(
            key,
            expires_in=expires_in,
            content_type="application/zip",
            max_bytes=self.limits.max_compressed_bytes,
        )
        self.uploads.insert_one(
            {
                "upload_id": upload_id,
                **self._scope(namespace),
                "name": name,
                "version": version,
                "description": description,
                "object_key": key,
                "status": "pending",
                "created_at": now(),
                "expires_at": presigned.expires_at,
                "created_by": caller.key_prefix,
            }
        )
        return UploadTicket(
            upload_id, presigned.url, presigned.expires_at, presigned.headers,
            self.limits.max_compressed_bytes, name, version, key,
        )  # fmt: skip

    def check_declared_size(self, file_size_bytes: int | None) -> None:
        """413 for an archive declared larger than the limit, before any URL is issued."""
        if file_size_bytes is not None and file_size_bytes > self.limits.max_compressed_bytes:
            raise MixpeekError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"file_size_bytes ({file_size_bytes}) exceeds the limit of {self.limits.max_compressed_bytes} bytes",
                field="file_size_bytes",
            )

    def get_upload(self, namespace: Namespace, upload_id: str) -> dict[str, Any]:
        doc = self.uploads.find_one({**self._scope(namespace), "upload_id": upload_id}, {"_id": 0})
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"Upload {upload_id!r} not found", upload_id=upload_id
            )
        return doc

    def confirm_upload(
        self, caller: Caller, namespace: Namespace, upload_id: str, *, message: str = ""
    ) -> dict[str, Any]:
        """Check the uploaded archive and register the version (idempotent).

        Returns:
            The confirm answer: ``success``, ``plugin_id``, ``validation_status``, ``feature_uri``,
            ``feature_uris``, ``violations`` / ``validation_errors`` ...
        """
        upload = self.get_upload(namespace, upload_id)
        if upload["status"] != "pending":
            return upload["result"]  # type: ignore[no-any-return]
        info = self.objects.stat(upload["object_key"])
        if info is None:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"Upload {upload_id!r} has no archive yet: PUT the zip to its presigned_url first",
                upload_id=upload_id,
            )
        if info.size > self.limits.max_compressed_bytes:  # S3 presigned PUTs carry no size limit
            self.objects.delete(upload["object_key"])
            raise MixpeekError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"Archive is {info.size} bytes; the limit is {self.limits.max_compressed_bytes}",
            )
        with self.download_archive(upload["object_key"]) as (path, sha256):
            result = self._register(
                caller,
                namespace,
                path,
                sha256,
                name=upload["name"],
                version=upload["version"],
                description=upload.get("description", ""),
                message=message,
            )
        self.objects.delete(upload["object_key"])
        self.uploads.update_one(
            {"upload_id": upload_id, "status": "pending"},
            {
                "$set": {
                    "status": "confirmed" if result["success"] else "failed",
                    "result": result,
                    "confirmed_at": now(),
                }
            },
        )
        return self.get_upload(namespace, upload_id)["result"]  # type: ignore[no-any-return]

    def publish_archive(
        self,
        caller: Caller,
        namespace: Namespace,
        source: IO[bytes],
        *,
        name: str | None = None,
        version: str | None = None,
        message: str = "",
    ) -> dict[str, Any]:
        """One-shot upload: check and register an archive streamed in the request."""
        with self._spool(source) as (path, sha256):
            return self._register(
                caller,
                namespace,
                path,
                sha256,
                name=name,
                version=version,
                description="",
                message=message,
            )

    @contextmanager
    def download_archive(self, key: str) -> Iterator[tuple[Path, str]]:
        """Stream an object to a private temporary file, hashing it on the way."""
        with self.objects.open_read(key) as source, self._spool(source) as spooled:
            yield spooled

    @contextmanager
    def _spool(self, source: IO[bytes]) -> Iterator[tuple[Path, str]]:
        """Copy a stream to a private temporary file in chunks, hashing it and refusing more
        than the archive limit on the way; yields the file and its sha256."""
        with tempfile.TemporaryDirectory(prefix="mixpeek-archive-") as tmp:
            path = Path(tmp) / "archive.zip"
            digest = hashlib.sha256()
            size = 0
            with path.open("wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > self.limits.max_compressed_bytes:
                        raise MixpeekError(
                            ErrorCode.PAYLOAD_TOO_LARGE,
                            f"Archive exceeds the limit of {self.limits.max_compressed_bytes} bytes",
                        )
                    digest.update(chunk)
                    out.write(chunk)
            yield path, digest.hexdigest()

    def _register(
        self,
        caller: Caller,
        namespace: Namespace,
        path: Path,
        sha256: str,
        *,
        name: str | None,
        version: str | None,
        description: str,
        message: str,
    ) -> dict[str, Any]:
        check = check_plugin_archive(
            path, policy=self.scan_policy, limits=self.limits, sandbox=self.sandbox
        )
        if not check.passed:
            return self._failure(check)
        assert check.description is not None
        manifest_name = check.description["name"]
        manifest_version = check.description["version"]
        if name is not None and name != manifest_name:
            return self._failure(
                check,
                errors=[
                    {
                        "field": "metadata.feature_extractor_name",
                        "message": f"the manifest names the plugin {manifest_name!r}, the upload declared {name!r}",
                    }
                ],
            )
        version = check_version(version) if version else manifest_version
        plugin_id = plugin_id_for(manifest_name, version)
        features = check.description["features"]
        feature_uris = [
            str(FeatureUri(manifest_name, version, f["feature_name"])) for f in features
        ]
        existing = self.versions.find_one({**self._scope(namespace), "plugin_id": plugin_id})
        if existing is not None:
            if existing["sha256"] == sha256:
                return self._success(existing, namespace, already=True)
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"{manifest_name} {version} already exists with different content; publish a new version",
                plugin_id=plugin_id,
            )
        key = archive_key(namespace, manifest_name, version, sha256)
        self.objects.put_file(key, path)
        doc = {
            **self._scope(namespace),
            "plugin_id": plugin_id,
            "name": manifest_name,
            "version": version,
            "manifest_version": manifest_version,
            "description": description or check.description.get("description", ""),
            "message": message,
            "archive_key": key,
            "sha256": sha256,
            "size_bytes": path.stat().st_size,
            "files": check.files,
            "manifest": check.description,
            "features": features,
            "feature_uris": feature_uris,
            "warnings": [v.model_dump() for v in check.violations],
            "validation_status": "passed",
            "created_at": now(),
            "created_by": caller.key_prefix,
            "deployment": {"status": DeploymentStatus.NOT_DEPLOYED.value},
            "scan_report": {
                "rules_at": now(),
                "violations": [v.model_dump() for v in check.violations],
            },
        }
        try:
            self.versions.insert_one(doc)
        except DuplicateKeyError:  # a concurrent confirm of the same version won
            raced = self.versions.find_one({**self._scope(namespace), "plugin_id": plugin_id})
            assert raced is not None
            if raced["sha256"] != sha256:
                self.objects.delete(key)
                raise MixpeekError(
                    ErrorCode.CONFLICT, f"{manifest_name} {version} already exists"
                ) from None
            return self._success(raced, namespace, already=True)
        self.plugins.update_one(
            {**self._scope(namespace), "name": manifest_name},
            {
                "$set": {
                    "active_version": version,
                    "active_plugin_id": plugin_id,
                    "updated_at": now(),
                },
                "$setOnInsert": {"created_at": now()},
            },
            upsert=True,
        )
        self._event(namespace, manifest_name, "publish", version, message, caller)
        return self._success(doc, namespace)

    def _success(
        self, doc: dict[str, Any], namespace: Namespace, *, already: bool = False
    ) -> dict[str, Any]:
        return {
            "success": True,
            "plugin_id": doc["plugin_id"],
            "name": doc["name"],
            "version": doc["version"],
            "validation_status": "passed",
            "feature_uri": doc["feature_uris"][0] if doc["feature_uris"] else None,
            "feature_uris": doc["feature_uris"],
            "sha256": doc["sha256"],
            "violations": doc.get("warnings", []),
            "validation_errors": [],
            "route_prefix": route_prefix(namespace.namespace_id, doc["plugin_id"]),
            "secrets": list((doc.get("manifest") or {}).get("secrets") or []),
            "already_registered": already,
            "deployment_status": HOSTED_DEPLOYMENT.get(DeploymentStatus.of(doc), "pending"),
            "s3_archive_url": doc["archive_key"],
            "message": "already registered" if already else "registered",
        }

    @staticmethod
    def _failure(
        check: PluginCheck, *, errors: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return {
            "success": False,
            "plugin_id": check.plugin_id,
            "validation_status": "failed",
            "stage": check.stage if errors is None else "manifest",
            "detail": check.detail if errors is None else "Manifest does not match the upload",
            "violations": [v.model_dump() for v in check.violations],
            "validation_errors": errors if errors is not None else check.errors,
            "feature_uri": None,
            "feature_uris": [],
        }

    def _event(
        self,
        namespace: Namespace,
        name: str,
        action: str,
        version: str | None,
        message: str,
        caller: Caller,
    ) -> None:
        self.events.insert_one(
            {
                **self._scope(namespace),
                "name": name,
                "action": action,
                "version": version,
                "message": message,
                "actor": caller.key_prefix,
                "at": now(),
            }
        )

    # -- reads ----------------------------------------------------------------------------------

    def get_version(self, namespace: Namespace, plugin_id: str) -> PluginVersion:
        doc = self.versions.find_one(
            {**self._scope(namespace), "plugin_id": plugin_id}, {"_id": 0, "files": 0}
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"Plugin {plugin_id!r} not found", plugin_id=plugin_id
            )
        return doc  # type: ignore[return-value]

    def version_record(self, namespace_id: str, plugin_id: str) -> PluginVersion | None:
        """A version by its namespace and id, for platform work that starts from a record's
        ids (ingestion runs, rollouts, Dagster partitions) rather than a caller."""
        doc = self.versions.find_one(
            {"namespace_id": namespace_id, "plugin_id": plugin_id}, {"_id": 0}
        )
        return doc  # type: ignore[return-value]

    def is_active(self, namespace: Namespace, version: PluginVersion) -> bool:
        """Whether ``version`` is its plugin's active one."""
        plugin = self.plugins.find_one({**self._scope(namespace), "name": version["name"]})
        return bool(plugin and plugin.get("active_plugin_id") == version["plugin_id"])

    def producer_of(self, namespace: Namespace, uri: str) -> PluginVersion:
        """The version of this namespace whose features include ``uri``; 404 otherwise."""
        doc = self.versions.find_one(
            {**self._scope(namespace), "feature_uris": uri}, {"_id": 0, "files": 0}
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"no plugin version in this namespace produces {uri}",
                field="feature_uri",
            )
        return doc  # type: ignore[return-value]

    def serving_version(self, namespace: Namespace, name: str) -> PluginVersion:
        """The version the plugin's name currently routes to (its blue-green alias)."""
        plugin = self.plugins.find_one({**self._scope(namespace), "name": name})
        if plugin is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Plugin {name!r} not found", name=name)
        plugin_id = plugin.get("serving_plugin_id")
        if not plugin_id:
            raise MixpeekError(
                ErrorCode.NOT_DEPLOYED,
                f"Plugin {name!r} has no deployed realtime version; "
                f"POST .../plugins/{plugin['active_plugin_id']}/deploy",
                name=name,
            )
        return self.get_version(namespace, plugin_id)

    def active_by_name(self, name: str, *, namespace_id: str | None = None) -> PluginVersion | None:
        """The active version of the most recently changed plugin called ``name`` in this data
        plane (optionally in one namespace): what a rendered Serve config deploys."""
        query: dict[str, Any] = {"name": name}
        if namespace_id:
            query["namespace_id"] = namespace_id
        plugin = self.plugins.find_one(query, sort=[("updated_at", -1)])
        if plugin is None:
            return None
        return self.version_record(plugin["namespace_id"], plugin["active_plugin_id"])

    def versions_since(self, after: datetime | None, *, limit: int = 500) -> list[PluginVersion]:
        """Versions of every namespace registered at or after ``after``, oldest first (what
        the Dagster sensor turns into partitions)."""
        query: dict[str, Any] = {"created_at": {"$gte": after}} if after else {}
        projection = {"_id": 0, "namespace_id": 1, "plugin_id": 1, "created_at": 1}
        cursor = self.versions.find(query, projection).sort("created_at", 1).limit(limit)
        return list(cursor)  # type: ignore[arg-type]

    def every_version(self) -> list[PluginVersion]:
        """Every version of every namespace, oldest first, with what the Dagster code location
        draws of it (one asset per plugin, its versions as partitions)."""
        projection = {
            "_id": 0, "org_id": 1, "namespace_id": 1, "plugin_id": 1, "name": 1, "version": 1,
            "sha256": 1, "feature_uris": 1, "created_at": 1,
        }  # fmt: skip
        return list(self.versions.find({}, projection).sort("created_at", 1))  # type: ignore[arg-type]

    # -- deployment state (written by the deployer) -------------------------------------------

    def update_deployment(self, namespace_id: str, plugin_id: str, **fields: Any) -> None:
        """Set fields of a version's ``deployment`` (enums stored as their values)."""
        update = {
            f"deployment.{key}": value.value if isinstance(value, Enum) else value
            for key, value in fields.items()
        }
        self.versions.update_one(
            {"namespace_id": namespace_id, "plugin_id": plugin_id}, {"$set": update}
        )

    def with_deployment(self, status: DeploymentStatus) -> list[PluginVersion]:
        """Every version whose deployment is ``status`` (ids and deployment only)."""
        cursor = self.versions.find(
            {"deployment.status": status.value},
            {"_id": 0, "namespace_id": 1, "plugin_id": 1, "deployment": 1},
        )
        return list(cursor)  # type: ignore[arg-type]

    def move_alias(self, version: PluginVersion) -> None:
        """Point the plugin's name at ``version`` if it is the active one (blue-green switch)."""
        self.plugins.update_one(
            {
                "org_id": version["org_id"],
                "namespace_id": version["namespace_id"],
                "name": version["name"],
                "active_plugin_id": version["plugin_id"],
            },
            {"$set": {"serving_plugin_id": version["plugin_id"], "serving_since": now()}},
        )

    def list_plugins(self, namespace: Namespace) -> list[dict[str, Any]]:
        active = {p["name"]: p["active_version"] for p in self.plugins.find(self._scope(namespace))}
        docs = list(
            self.versions.find(self._scope(namespace), {"_id": 0, "files": 0}).sort(
                [("name", 1), ("created_at", 1)]
            )
        )
        for doc in docs:
            doc["is_active"] = active.get(doc["name"]) == doc["version"]
        return docs

    def versions_of(self, namespace: Namespace, name: str) -> list[dict[str, Any]]:
        docs = list(
            self.versions.find(
                {**self._scope(namespace), "name": check_name(name)}, {"_id": 0, "files": 0}
            ).sort("created_at", 1)
        )
        if not docs:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Plugin {name!r} not found", name=name)
        plugin = self.plugins.find_one({**self._scope(namespace), "name": name}) or {}
        for doc in docs:
            doc["is_active"] = doc["version"] == plugin.get("active_version")
        return docs

    def active_version(self, namespace: Namespace, name: str) -> PluginVersion:
        plugin = self.plugins.find_one({**self._scope(namespace), "name": check_name(name)})
        if plugin is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Plugin {name!r} not found", name=name)
        return self.get_version(namespace, plugin["active_plugin_id"])

    def next_version(
        self, namespace: Namespace, name: str, manifest_version: str | None = None
    ) -> str:
        """The version ``push`` registers when none is given: latest + patch, or the manifest's."""
        docs = list(
            self.versions.find({**self._scope(namespace), "name": check_name(name)}, {"version": 1})
        )
        if not docs:
            return check_version(manifest_version or "1.0.0")
        latest = max((d["version"] for d in docs), key=version_key)
        candidate = bump_patch(latest)
        if manifest_version and version_key(check_version(manifest_version)) > version_key(
            candidate
        ):
            return check_version(manifest_version)
        return candidate

    def log(self, namespace: Namespace, name: str) -> list[dict[str, Any]]:
        self.versions_of(namespace, name)  # 404 for unknown names
        cursor = self.events.find({**self._scope(namespace), "name": name}, {"_id": 0}).sort(
            "at", 1
        )
        return list(cursor)

    @contextmanager
    def open_source(self, namespace: Namespace, plugin_id: str) -> Iterator[IO[bytes]]:
        doc = self.get_version(namespace, plugin_id)
        handle = self.objects.open_read(doc["archive_key"])
        try:
            yield handle
        finally:
            handle.close()

    @contextmanager
    def extracted(self, namespace: Namespace, plugin_id: str) -> Iterator[Path]:
        """The version's sources, extracted (through the gate) into a temporary directory."""
        doc = self.get_version(namespace, plugin_id)
        with self.download_archive(doc["archive_key"]) as (path, sha256):
            if sha256 != doc["sha256"]:
                raise MixpeekError(
                    ErrorCode.STACK_ERROR,
                    f"Archive of {plugin_id} does not match its recorded sha256",
                )
            with open_plugin_archive(path, limits=self.limits) as extracted:
                yield extracted.root

    def diff(self, namespace: Namespace, name: str, v1: str, v2: str) -> dict[str, Any]:
        """Per-file unified diff between two versions of a plugin."""
        first = plugin_id_for(check_name(name), check_version(v1))
        second = plugin_id_for(name, check_version(v2))
        with self.extracted(namespace, first) as a, self.extracted(namespace, second) as b:
            files_a = {p.relative_to(a).as_posix(): p for p in a.rglob("*") if p.is_file()}
            files_b = {p.relative_to(b).as_posix(): p for p in b.rglob("*") if p.is_file()}
            changes = []
            for path in sorted(files_a.keys() | files_b.keys()):
                old = files_a.get(path)
                new = files_b.get(path)
                old_bytes = old.read_bytes() if old else b""
                new_bytes = new.read_bytes() if new else b""
                if old_bytes == new_bytes:
                    continue
                status = "added" if old is None else "removed" if new is None else "modified"
                try:
                    old_text = old_bytes.decode().splitlines(keepends=True)
                    new_text = new_bytes.decode().splitlines(keepends=True)
                except UnicodeDecodeError:
                    changes.append(
                        {
                            "path": path,
                            "status": status,
                            "binary": True,
                            "diff": "Binary files differ\n",
                        }
                    )
                    continue
                diff = "".join(
                    difflib.unified_diff(
                        old_text, new_text, fromfile=f"{v1}/{path}", tofile=f"{v2}/{path}"
                    )
                )
                changes.append({"path": path, "status": status, "binary": False, "diff": diff})
        return {"name": name, "v1": check_version(v1), "v2": check_version(v2), "files": changes}

    # -- changes --------------------------------------------------------------------------------

    def rollback(
        self, caller: Caller, namespace: Namespace, name: str, version: str, *, message: str = ""
    ) -> dict[str, Any]:
        """Make an earlier (or any registered) version the active one."""
        version = check_version(version)
        target = self.get_version(namespace, plugin_id_for(check_name(name), version))
        self.plugins.update_one(
            {**self._scope(namespace), "name": name},
            {
                "$set": {
                    "active_version": version,
                    "active_plugin_id": target["plugin_id"],
                    "updated_at": now(),
                }
            },
        )
        self._event(namespace, name, "rollback", version, message, caller)
        return {"name": name, "active_version": version, "plugin_id": target["plugin_id"]}

    def delete_version(
        self, caller: Caller, namespace: Namespace, plugin_id: str
    ) -> dict[str, Any]:
        doc = self.get_version(namespace, plugin_id)
        self.objects.delete(doc["archive_key"])
        self.versions.delete_one({**self._scope(namespace), "plugin_id": plugin_id})
        remaining = list(
            self.versions.find(
                {**self._scope(namespace), "name": doc["name"]}, {"version": 1, "plugin_id": 1}
            )
        )
        plugin = self.plugins.find_one({**self._scope(namespace), "name": doc["name"]})
        if not remaining:
            self.plugins.delete_one({**self._scope(namespace), "name": doc["name"]})
        elif plugin is not None and plugin.get("active_plugin_id") == plugin_id:
            latest = max(remaining, key=lambda d: version_key(d["version"]))
            self.plugins.update_one(
                {"_id": plugin["_id"]},
                {
                    "$set": {
                        "active_version": latest["version"],
                        "active_plugin_id": latest["plugin_id"],
                    }
                },
            )
        self._event(namespace, doc["name"], "delete", doc["version"], "", caller)
        deployed = DeploymentStatus.of(doc) is not DeploymentStatus.NOT_DEPLOYED
        return {"plugin_id": plugin_id, "deleted": True, "deployment_removed": deployed}

    def delete_namespace_contents(self, namespace: Namespace) -> int:
        scope = self._scope(namespace)
        count = self.versions.count_documents(scope)
        self.objects.delete_prefix(plugin_prefix(namespace) + "/")
        for collection in (self.versions, self.plugins, self.uploads, self.events):
            collection.delete_many(scope)
        return count

    def update_scan_report(
        self, namespace: Namespace, plugin_id: str, violations: list[dict[str, Any]]
    ) -> None:
        self.versions.update_one(
            {**self._scope(namespace), "plugin_id": plugin_id},
            {"$set": {"scan_report": {"rules_at": now(), "violations": violations}}},
        )
