"""Extractor submissions and the install's catalogue of published extractors: the newer hosted
plugin API (``/v1/extractors...``), on the same checks and registry as namespace plugins.

An organisation submits an archive (presigned PUT, then confirm); confirming runs the very
checks a namespace upload runs (archive gate, scan, manifest, dry run in the sandbox) and keeps
the archive when they pass. A passed submission can be published under a ``public_name``, which
any organisation of this install may install into one of its namespaces: installing registers
the archive there as a plugin version, through the registry (the same scan again, the same
versions, rollback and deploy).

Example:
    >>> ticket = submissions.create_upload(caller, name="my_extractor", version="1.0.0")
    >>> # PUT the zip to ticket["presigned_url"]
    >>> submissions.confirm(caller, ticket["submission_id"])["status"]
    'approved'
    >>> submissions.publish(caller, ticket["submission_id"], public_name="acme-my-extractor")
    >>> submissions.install(caller, namespace, "acme-my-extractor")["installed_extractor_id"]
    'my_extractor_1_0_0'
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.registry import PluginRegistry, check_name, check_version
from mixpeek_orchestration.plugins.validation import check_plugin_archive
from mixpeek_orchestration.sdk._manifest import plugin_id_for
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.objects import ObjectStore
from mixpeek_orchestration.tenancy.accounts import Caller, Namespace

PUBLIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")
PUBLISHED_FIELDS = ("display_name", "description", "tags", "category", "is_active")


class Submissions:
    """Submissions of every organisation (always read through the caller's), and the
    published extractors of the install."""

    def __init__(
        self, metadata: MetadataStore, objects: ObjectStore, registry: PluginRegistry
    ) -> None:
        self.submissions = metadata.collection("extractor_submissions")
        self.published = metadata.collection("published_extractors")
        self.objects = objects
        self.registry = registry

    def ensure_indexes(self) -> None:
        self.submissions.create_index("submission_id", unique=True)
        self.submissions.create_index([("org_id", 1), ("submitted_at", 1)])
        self.published.create_index("public_name", unique=True)
        self.published.create_index("extractor_id", unique=True)

    # -- submissions ----------------------------------------------------------------------------

    def create_upload(
        self,
        caller: Caller,
        *,
        name: str,
        version: str,
        description: str = "",
        file_size_bytes: int | None = None,
        expires_in: int = 3600,
    ) -> dict[str, Any]:
        """A presigned URL to PUT the extractor's zip to; confirm it next."""
        name, version = check_name(name), check_version(version)
        self.registry.check_declared_size(file_size_bytes)
        limit = self.registry.limits.max_compressed_bytes
        submission_id = new_id("sub")
        key = f"{caller.org_id}/_submissions/{submission_id}.zip"
        presigned = self.objects.presign_put(
            key, expires_in=expires_in, content_type="application/zip", max_bytes=limit
        )
        submitted = now()
        self.submissions.insert_one(
            {
                "submission_id": submission_id,
                "org_id": caller.org_id,
                "extractor_name": name,
                "version": version,
                "description": description,
                "object_key": key,
                "status": "pending",
                "submitted_at": submitted,
                "expires_at": submitted + timedelta(seconds=expires_in),
                "submitted_by": caller.key_prefix,
            }
        )
        return {
            "submission_id": submission_id,
            "presigned_url": presigned.url,
            "upload_headers": presigned.headers,
            "s3_key": key,
            "expires_at": presigned.expires_at,
            "name": name,
            "version": version,
            "required_content_type": "application/zip",
        }

    def get(self, caller: Caller, submission_id: str) -> dict[str, Any]:
        doc = self.submissions.find_one(
            {"org_id": caller.org_id, "submission_id": submission_id}, {"_id": 0}
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"submission {submission_id!r} not found",
                field="submission_id",
            )
        return doc

    def list(self, caller: Caller, *, status: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"org_id": caller.org_id}
        if status:
            query["status"] = status
        return list(self.submissions.find(query, {"_id": 0}).sort("submitted_at", ASCENDING))

    def confirm(self, caller: Caller, submission_id: str) -> dict[str, Any]:
        """Run the plugin checks on the uploaded archive: ``approved`` keeps it for publishing
        and installing, ``rejected`` says why (violations, manifest errors). Confirming again
        answers the same."""
        doc = self.get(caller, submission_id)
        if doc["status"] != "pending":
            return _confirmed(doc)
        if self.objects.stat(doc["object_key"]) is None:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"submission {submission_id!r} has no archive yet: PUT the zip to its "
                "presigned_url first",
                field="submission_id",
            )
        registry = self.registry
        with registry.download_archive(doc["object_key"]) as (path, sha256):
            check = check_plugin_archive(
                path, policy=registry.scan_policy, limits=registry.limits, sandbox=registry.sandbox
            )
        violations = [v.model_dump() for v in check.violations]
        outcome: dict[str, Any] = {
            "security_scan_passed": check.stage != "scan",
            "security_violations": [v for v in violations if v["severity"] == "error"],
            "manifest_valid": check.passed,
            "sha256": sha256,
            "reviewed_at": now(),
        }
        named = (check.description or {}).get("name")
        if check.passed and named != doc["extractor_name"]:
            outcome |= {
                "status": "rejected", "manifest_valid": False,
                "message": f"the manifest names the extractor {named!r}, the submission "
                f"{doc['extractor_name']!r}",
            }  # fmt: skip
        elif check.passed:
            outcome |= {
                "status": "approved",
                "message": "checks passed",
                "manifest": check.description,
            }
        else:
            outcome |= {"status": "rejected", "message": check.detail or "checks failed",
                        "validation_errors": check.errors}  # fmt: skip
        if outcome["status"] == "rejected":
            self.objects.delete(doc["object_key"])
        self.submissions.update_one(
            {"submission_id": submission_id, "status": "pending"}, {"$set": outcome}
        )
        return _confirmed(self.get(caller, submission_id))

    def _approved(self, caller: Caller, submission_id: str) -> dict[str, Any]:
        doc = self.get(caller, submission_id)
        if doc["status"] != "approved":
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"submission {submission_id!r} is {doc['status']}: only an approved one can be "
                "published",
                field="extractor_id",
            )
        return doc

    # -- published extractors -------------------------------------------------------------------

    def publish(
        self, caller: Caller, submission_id: str, *, public_name: str | None = None, **listing: Any
    ) -> dict[str, Any]:
        """List an approved submission under ``public_name`` (default: its name and version)
        for any organisation of this install to install."""
        doc = self._approved(caller, submission_id)
        public = public_name or f"{doc['extractor_name']}-{doc['version']}".replace(".", "-")
        if not PUBLIC_NAME.fullmatch(public):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"public_name {public!r} must be 2-63 lower-case letters, digits, '_' or '-'",
                field="public_name",
            )
        record = {
            "public_id": new_id("pub"),
            "extractor_id": submission_id,
            "org_id": caller.org_id,
            "public_name": public,
            "extractor_name": doc["extractor_name"],
            "version": doc["version"],
            "display_name": listing.get("display_name") or doc["extractor_name"],
            "description": listing.get("description") or doc.get("description", ""),
            "tags": listing.get("tags") or [],
            "category": listing.get("category"),
            "is_active": True,
            "install_count": 0,
            "trust_tier": "community",
            "created_at": now(),
            "updated_at": now(),
        }
        try:
            self.published.insert_one(record)
        except DuplicateKeyError:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"public_name {public!r} or submission {submission_id!r} is published already",
                field="public_name",
            ) from None
        record.pop("_id", None)
        return record

    def get_published(self, caller: Caller, submission_id: str) -> dict[str, Any]:
        doc = self.published.find_one(
            {"org_id": caller.org_id, "extractor_id": submission_id}, {"_id": 0}
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"extractor {submission_id!r} is not published",
                field="extractor_id",
            )
        return doc

    def update_published(
        self, caller: Caller, submission_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        doc = self.get_published(caller, submission_id)
        update = {k: changes[k] for k in PUBLISHED_FIELDS if k in changes}
        if update:
            self.published.update_one(
                {"public_id": doc["public_id"]}, {"$set": update | {"updated_at": now()}}
            )
        return self.get_published(caller, submission_id)

    def unpublish(self, caller: Caller, submission_id: str) -> dict[str, Any]:
        """Take the listing down; namespaces that installed it keep their plugin version."""
        doc = self.get_published(caller, submission_id)
        self.published.delete_one({"public_id": doc["public_id"]})
        return {"success": True, "extractor_id": submission_id, "public_name": doc["public_name"]}

    def install(self, caller: Caller, namespace: Namespace, public_name: str) -> dict[str, Any]:
        """Register a published extractor's archive in ``namespace`` as a plugin version (the
        registry checks it again; installing twice answers the same version)."""
        listing = self.published.find_one({"public_name": public_name, "is_active": True})
        if listing is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"no published extractor is named {public_name!r}",
                field="public_name",
            )
        source = self.submissions.find_one({"submission_id": listing["extractor_id"]})
        if source is None or source["status"] != "approved":
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"published extractor {public_name!r} has no archive any more",
                field="public_name",
            )
        with self.objects.open_read(source["object_key"]) as archive:
            result = self.registry.publish_archive(
                caller,
                namespace,
                archive,
                name=source["extractor_name"],
                version=source["version"],
                message=f"installed from {public_name}",
            )
        if not result["success"]:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"published extractor {public_name!r} failed this install's checks: "
                f"{result.get('detail', 'validation failed')}",
                field="public_name",
            )
        if not result.get("already_registered"):
            self.published.update_one(
                {"public_id": listing["public_id"]}, {"$inc": {"install_count": 1}}
            )
        return {
            "success": True,
            "installed_extractor_id": plugin_id_for(source["extractor_name"], source["version"]),
            "source_public_name": public_name,
            "source_version": source["version"],
            "feature_uri": result["feature_uri"],
            "feature_uris": result["feature_uris"],
            "namespace_id": namespace.namespace_id,
        }


def _confirmed(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "success": doc["status"] == "approved",
        "submission_id": doc["submission_id"],
        "status": doc["status"],
        "security_scan_passed": doc.get("security_scan_passed"),
        "security_violations": doc.get("security_violations") or [],
        "manifest_valid": doc.get("manifest_valid"),
        "message": doc.get("message", ""),
    }
