"""Buckets and their objects (SPEC §7): what ingestion reads.

A bucket declares its blob properties (``bucket_schema``); an object is a set of blobs under
those properties, inline text or a stored file. Files reach a bucket two ways, both ending as an
object here: an API call naming an upload, or a file landing under the bucket's storage prefix
(``landing_prefix``), which :meth:`Buckets.register_landed_files` turns into an object.

Every object gets a sequence number from one counter; the ingestion planner follows that
sequence with a cursor, so no object is missed after a restart and none is planned twice.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from mixpeek_orchestration.batch.rows import BLOB_MIME_DEFAULTS, blob_type_for_mime
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.aggregations import (
    aggregation_pipeline,
    aggregation_rows,
    refused_by_store,
)
from mixpeek_orchestration.ingest.exports import exports_prefix
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.objects import ObjectStore, validate_key
from mixpeek_orchestration.storage.pages import decode_cursor, page
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.tenancy.accounts import Namespace

BLOB_TYPES = frozenset(BLOB_MIME_DEFAULTS) | {"json"}
SCALAR_TYPES = frozenset(
    {"string", "number", "integer", "float", "boolean", "object", "array", "date", "datetime"}
)
"""Bucket schema types of plain fields: an object carries them in its metadata, not as blobs."""
FIELD_TYPES = BLOB_TYPES | SCALAR_TYPES
LIVE = [None, "active"]
"""The ``lifecycle_state`` of an object that is processed (missing: never changed)."""
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_INLINE_TEXT = 1 << 20  # 1 MiB of inline text per blob
UPLOAD_EXPIRES_S = 3600
PAGE_LIMIT = 1000


def landing_prefix(namespace: Namespace | dict[str, Any], bucket_id: str) -> str:
    """Where files dropped for ``bucket_id`` land in the object store."""
    org, ns = (
        (namespace.org_id, namespace.namespace_id)
        if isinstance(namespace, Namespace)
        else (namespace["org_id"], namespace["namespace_id"])
    )
    return f"{org}/{ns}/buckets/{bucket_id}/files/"


def _upload_out(record: dict[str, Any]) -> dict[str, Any]:
    """An upload as the hosted API shows it (``s3_key`` is the object-store key)."""
    out = {k: v for k, v in record.items() if k not in ("_id", "key", "org_id")}
    return {
        **out,
        "s3_key": record["key"],
        "presigned_url_expiration": record.get("presigned_url_expiration", UPLOAD_EXPIRES_S),
        "create_object_on_confirm": bool(record.get("create_object_on_confirm")),
        "status": record.get("status", "PENDING"),
    }


def _confirmed(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "upload_id": record["upload_id"],
        "status": record["status"],
        "file_size_bytes": record.get("file_size_bytes"),
        "completed_at": record.get("completed_at"),
        "object_id": record.get("object_id"),
        "message": record.get("message", ""),
    }


def _checksum(value: Any, where: str) -> str:
    """A blob's content hash as ``algorithm:hex`` (a bare 64-digit hex is SHA-256)."""
    text = value if isinstance(value, str) else ""
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return f"sha256:{text.lower()}"
    if re.fullmatch(r"[a-z0-9]+:[0-9a-fA-F]+", text):
        return text
    raise MixpeekError(
        ErrorCode.INVALID_REQUEST, f"{where} must be 'algorithm:hex' or 64 hex digits", field=where
    )


def _checked_properties(bucket_schema: Any) -> dict[str, dict[str, Any]]:
    """A bucket schema's properties, each with a known type (lower-cased, as stored)."""
    properties = bucket_schema.get("properties") if isinstance(bucket_schema, dict) else None
    if not isinstance(properties, dict) or not properties:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            "bucket_schema.properties must name at least one property",
            field="bucket_schema.properties",
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        kind = kind.lower() if isinstance(kind, str) else kind
        if kind not in FIELD_TYPES:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"bucket_schema.properties.{name}.type must be one of {sorted(FIELD_TYPES)}, "
                f"not {kind!r}",
                field=f"bucket_schema.properties.{name}.type",
            )
        checked[name] = {**spec, "type": kind}
    return checked


class Buckets:
    """Buckets and objects of every namespace, always queried within one namespace."""

    def __init__(self, metadata: MetadataStore, objects: ObjectStore) -> None:
        self.store = objects
        self.buckets = metadata.collection("buckets")
        self.objects = metadata.collection("objects")
        self.uploads = metadata.collection("object_uploads")
        self.counters = metadata.collection("counters")
        # landed files this process knows are registered, per bucket: a sensor ticking every
        # few seconds lists a bucket's prefix, and must not read back every object it has
        # (key -> the file's last modification seen; None: not listed yet)
        self._landed: dict[str, dict[str, Any]] = {}

    def ensure_indexes(self) -> None:
        self.buckets.create_index("bucket_id", unique=True)
        self.buckets.create_index(
            [("org_id", 1), ("namespace_id", 1), ("bucket_name", 1)], unique=True
        )
        self.objects.create_index("object_id", unique=True)
        self.objects.create_index("seq", unique=True)
        self.objects.create_index([("bucket_id", 1), ("seq", 1)])
        self.objects.create_index("source_key", unique=True, sparse=True)
        self.uploads.create_index("upload_id", unique=True)

    # -- buckets --------------------------------------------------------------------------------

    def create_bucket(
        self,
        namespace: Namespace,
        *,
        bucket_name: str,
        bucket_schema: dict[str, Any],
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not BUCKET_NAME.fullmatch(bucket_name or ""):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"bucket_name {bucket_name!r} must be 1-63 letters, digits, '_', '.' or '-'",
                field="bucket_name",
            )
        properties = _checked_properties(bucket_schema)
        doc = {
            **scope(namespace),
            "bucket_id": new_id("bkt"),
            "bucket_name": bucket_name,
            "description": description,
            "bucket_schema": {"properties": properties},
            "metadata": metadata or {},
            "created_at": now(),
        }
        try:
            self.buckets.insert_one(doc)
        except DuplicateKeyError:
            raise MixpeekError(
                ErrorCode.CONFLICT, f"bucket {bucket_name!r} already exists", field="bucket_name"
            ) from None
        doc.pop("_id", None)
        return doc

    def get_bucket(self, namespace: Namespace, bucket: str) -> dict[str, Any]:
        """A bucket by id or name."""
        doc = self.buckets.find_one(
            {**scope(namespace), "$or": [{"bucket_id": bucket}, {"bucket_name": bucket}]},
            {"_id": 0},
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"bucket {bucket!r} not found", field="bucket_id"
            )
        return doc

    def list_buckets(self, namespace: Namespace) -> list[dict[str, Any]]:
        return list(self.buckets.find(scope(namespace), {"_id": 0}).sort("created_at", ASCENDING))

    def update_bucket(
        self, namespace: Namespace, bucket: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Rename a bucket, change its description or metadata, or add properties to its
        schema (a property objects may already use keeps its type: 409 otherwise)."""
        doc = self.get_bucket(namespace, bucket)
        update: dict[str, Any] = {}
        if "bucket_name" in changes and changes["bucket_name"] != doc["bucket_name"]:
            name = changes["bucket_name"]
            if not isinstance(name, str) or not BUCKET_NAME.fullmatch(name):
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"bucket_name {name!r} must be 1-63 letters, digits, '_', '.' or '-'",
                    field="bucket_name",
                )
            update["bucket_name"] = name
        for field in ("description", "metadata"):
            if field in changes:
                update[field] = changes[field]
        if "bucket_schema" in changes:
            properties = _checked_properties(changes["bucket_schema"])
            for name, spec in doc["bucket_schema"]["properties"].items():
                if properties.get(name, {}).get("type") != spec["type"]:
                    raise MixpeekError(
                        ErrorCode.CONFLICT,
                        f"bucket_schema.properties.{name} ({spec['type']}) cannot be removed or "
                        "change type: objects may hold it; add new properties instead",
                        field=f"bucket_schema.properties.{name}",
                    )
            update["bucket_schema"] = {"properties": properties}
        if update:
            update["updated_at"] = now()
            try:
                self.buckets.update_one({"bucket_id": doc["bucket_id"]}, {"$set": update})
            except DuplicateKeyError:
                raise MixpeekError(
                    ErrorCode.CONFLICT,
                    f"bucket {update['bucket_name']!r} already exists",
                    field="bucket_name",
                ) from None
        return self.get_bucket(namespace, doc["bucket_id"])

    def usage(self, bucket_ids: list[str]) -> dict[str, tuple[int, int]]:
        """Objects and stored bytes per bucket, in one aggregation."""
        groups = self.objects.aggregate(
            [
                {"$match": {"bucket_id": {"$in": bucket_ids}}},
                {
                    "$group": {
                        "_id": "$bucket_id",
                        "n": {"$sum": 1},
                        "bytes": {"$sum": {"$sum": "$blobs.size_bytes"}},
                    }
                },
            ]
        )
        return {g["_id"]: (int(g["n"]), int(g["bytes"] or 0)) for g in groups}

    def count_in(self, namespace: Namespace) -> tuple[int, int]:
        """The namespace's buckets and objects."""
        return (
            self.buckets.count_documents(scope(namespace)),
            self.objects.count_documents(scope(namespace)),
        )

    def all_buckets(self) -> list[dict[str, Any]]:
        """Every bucket of every namespace (the ingestion sensor's view)."""
        return list(self.buckets.find({}, {"_id": 0}))

    def object_stats(self, bucket_ids: list[str] | None = None) -> dict[str, tuple[int, datetime]]:
        """Objects per bucket and when the newest was made (of ``bucket_ids``, else of every
        bucket holding any), in one aggregation: what the buckets' Dagster assets observe."""
        match = {"bucket_id": {"$in": bucket_ids}} if bucket_ids is not None else {}
        groups = self.objects.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": "$bucket_id",
                        "n": {"$sum": 1},
                        "last": {"$max": "$created_at"},
                    }
                },
            ]
        )
        return {g["_id"]: (int(g["n"]), g["last"]) for g in groups}

    def delete_bucket(self, namespace: Namespace, bucket: str) -> dict[str, Any]:
        doc = self.get_bucket(namespace, bucket)
        removed = self.objects.delete_many({"bucket_id": doc["bucket_id"]}).deleted_count
        self.store.delete_prefix(
            f"{namespace.org_id}/{namespace.namespace_id}/buckets/{doc['bucket_id']}/"
        )
        self.buckets.delete_one({"bucket_id": doc["bucket_id"]})
        return {"bucket_id": doc["bucket_id"], "deleted": True, "objects_deleted": removed}

    def delete_namespace(self, namespace: Namespace) -> int:
        """Every bucket, object, upload and stored file of a namespace (collection exports
        too); returns the objects removed."""
        removed = self.objects.delete_many(scope(namespace)).deleted_count
        self.uploads.delete_many(scope(namespace))
        self.buckets.delete_many(scope(namespace))
        self.store.delete_prefix(f"{namespace.org_id}/{namespace.namespace_id}/buckets/")
        self.store.delete_prefix(exports_prefix(namespace))
        return removed

    # -- uploads --------------------------------------------------------------------------------

    def create_upload(
        self,
        namespace: Namespace,
        bucket: str,
        *,
        filename: str,
        content_type: str | None = None,
        size_bytes: int | None = None,
        expires_in: int = UPLOAD_EXPIRES_S,
        create_object_on_confirm: bool = False,
        blob_property: str | None = None,
        object_metadata: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A presigned PUT for one file. Name it in an object's blob as ``upload_id``, or
        confirm it with ``create_object_on_confirm`` to make the object from it (under
        ``blob_property``, or the one property of the file's type)."""
        doc = self.get_bucket(namespace, bucket)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", filename or "")[:200].lstrip(".")
        if not safe:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "filename is required", field="filename")
        if blob_property is not None:
            self.blob_property(doc, blob_property, field="blob_property")
        content_type = content_type or mimetypes.guess_type(safe)[0] or "application/octet-stream"
        upload_id = new_id("upl")
        key = f"{namespace.org_id}/{namespace.namespace_id}/buckets/{doc['bucket_id']}/uploads/{upload_id}/{safe}"
        request = self.store.presign_put(
            key, expires_in=expires_in, content_type=content_type, max_bytes=size_bytes
        )
        created = now()
        record = {
            **scope(namespace),
            "upload_id": upload_id,
            "bucket_id": doc["bucket_id"],
            "key": key,
            "filename": safe,
            "content_type": content_type,
            "file_size_bytes": size_bytes,
            "presigned_url_expiration": expires_in,
            "create_object_on_confirm": create_object_on_confirm,
            "blob_property": blob_property,
            "object_metadata": object_metadata or {},
            "metadata": metadata or {},
            "status": "PENDING",
            "created_at": created,
            "expires_at": created + timedelta(seconds=expires_in),
        }
        self.uploads.insert_one(record)
        return {
            **_upload_out(record),
            "presigned_url": request.url,
            "upload_url": request.url,
            "method": request.method,
            "headers": request.headers,
        }

    def blob_property(self, bucket: dict[str, Any], name: str, *, field: str) -> str:
        """``name`` if it is one of the bucket's blob properties; 422 naming ``field`` else."""
        spec = bucket["bucket_schema"]["properties"].get(name)
        if spec is None or spec["type"] in SCALAR_TYPES:
            blobs = sorted(
                p for p, s in bucket["bucket_schema"]["properties"].items()
                if s["type"] not in SCALAR_TYPES
            )  # fmt: skip
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"{field} {name!r} is not a blob property of the bucket ({blobs})",
                field=field,
            )
        return name

    def _upload(self, namespace: Namespace, bucket: str, upload_id: str) -> dict[str, Any]:
        doc = self.get_bucket(namespace, bucket)
        record = self.uploads.find_one(
            {**scope(namespace), "bucket_id": doc["bucket_id"], "upload_id": upload_id},
            {"_id": 0},
        )
        if record is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"upload {upload_id!r} not found", field="upload_id"
            )
        return record

    def get_upload(self, namespace: Namespace, bucket: str, upload_id: str) -> dict[str, Any]:
        return _upload_out(self._upload(namespace, bucket, upload_id))

    def list_uploads(self, namespace: Namespace, bucket: str) -> list[dict[str, Any]]:
        doc = self.get_bucket(namespace, bucket)
        found = self.uploads.find({**scope(namespace), "bucket_id": doc["bucket_id"]}, {"_id": 0})
        return [_upload_out(r) for r in found.sort("created_at", ASCENDING)]

    def delete_upload(self, namespace: Namespace, bucket: str, upload_id: str) -> dict[str, Any]:
        """Forget an upload and delete its file (an object made from it keeps its file only
        while the upload exists: refused then)."""
        record = self._upload(namespace, bucket, upload_id)
        if record.get("object_id"):
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"upload {upload_id!r} made object {record['object_id']!r}: delete the object",
                field="upload_id",
            )
        self.store.delete(record["key"])
        self.uploads.delete_one({"upload_id": upload_id})
        return {"upload_id": upload_id, "deleted": True}

    def confirm_upload(
        self,
        namespace: Namespace,
        bucket: str,
        upload_id: str,
        *,
        file_size_bytes: int | None = None,
    ) -> dict[str, Any]:
        """Check the file arrived (and has the size said), mark the upload confirmed, and make
        its object when the upload asked for one. Confirming again answers the same."""
        record = self._upload(namespace, bucket, upload_id)
        if record.get("status") == "COMPLETED":
            return _confirmed(record)
        info = self.store.stat(record["key"])
        if info is None:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"upload {upload_id!r} has no file yet: PUT it to the presigned_url first",
                field="upload_id",
            )
        expected = file_size_bytes or record.get("file_size_bytes")
        if expected is not None and expected != info.size:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"upload {upload_id!r} holds {info.size} bytes, not the {expected} said",
                field="file_size_bytes",
            )
        changes: dict[str, Any] = {
            "status": "COMPLETED", "file_size_bytes": info.size, "completed_at": now(),
        }  # fmt: skip
        message = "upload confirmed"
        if record.get("create_object_on_confirm"):
            bucket_doc = self.get_bucket(namespace, bucket)
            prop = record.get("blob_property") or self._property_for(bucket_doc, record)
            if prop is None:
                message = (
                    "upload confirmed; no object made: the bucket has no single blob property "
                    "for this file's type (give blob_property when creating the upload)"
                )
            else:
                obj = self.create_object(
                    namespace,
                    bucket_doc["bucket_id"],
                    blobs=[{"property": prop, "upload_id": upload_id}],
                    metadata=record.get("object_metadata") or {},
                )
                changes["object_id"] = obj["object_id"]
                message = f"upload confirmed; object {obj['object_id']} made"
        changes["message"] = message
        self.uploads.update_one({"upload_id": upload_id}, {"$set": changes})
        return _confirmed(record | changes)

    @staticmethod
    def _property_for(bucket: dict[str, Any], upload: dict[str, Any]) -> str | None:
        kind = blob_type_for_mime(upload["content_type"])
        props = [p for p, s in bucket["bucket_schema"]["properties"].items() if s["type"] == kind]
        return props[0] if len(props) == 1 else None

    # -- objects --------------------------------------------------------------------------------

    def _next_seq(self, count: int = 1) -> int:
        """Take ``count`` consecutive sequence numbers; returns the first."""
        doc = self.counters.find_one_and_update(
            {"_id": "object_seq"},
            {"$inc": {"value": count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upserted
        return int(doc["value"]) - count + 1

    def _blob(
        self, namespace: Namespace, bucket: dict[str, Any], index: int, blob: Any
    ) -> dict[str, Any]:
        where = f"blobs[{index}]"
        if not isinstance(blob, dict):
            raise MixpeekError(ErrorCode.INVALID_REQUEST, f"{where} must be an object", field=where)
        properties = bucket["bucket_schema"]["properties"]
        prop = blob.get("property")
        if prop not in properties:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"{where}.property {prop!r} is not in the bucket schema ({sorted(properties)})",
                field=f"{where}.property",
            )
        if properties[prop]["type"] in SCALAR_TYPES:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"{where}.property {prop!r} is a {properties[prop]['type']} field, not a blob: "
                "give its value in the object's metadata",
                field=f"{where}.property",
            )
        kind = blob.get("type") or properties[prop]["type"]
        kind = kind.lower() if isinstance(kind, str) else kind
        if kind != properties[prop]["type"]:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"{where}.type {kind!r} does not match the schema's {properties[prop]['type']!r} for {prop!r}",
                field=f"{where}.type",
            )
        out: dict[str, Any] = {
            "blob_id": new_id("blob", 6),
            "property": prop,
            "type": kind,
            "metadata": blob.get("metadata") or {},
        }
        if blob.get("checksum"):
            out["details"] = {"hash": _checksum(blob["checksum"], f"{where}.checksum")}
        upload_id, data = blob.get("upload_id"), blob.get("data")
        if upload_id:
            upload = self.uploads.find_one({**scope(namespace), "upload_id": upload_id})
            if upload is None or upload["bucket_id"] != bucket["bucket_id"]:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"{where}.upload_id {upload_id!r} is not an upload to this bucket",
                    field=f"{where}.upload_id",
                )
            info = self.store.stat(upload["key"])
            if info is None:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"{where}.upload_id {upload_id!r} has no file yet: PUT it to the upload_url first",
                    field=f"{where}.upload_id",
                )
            out |= {
                "key": upload["key"],
                "mime_type": upload["content_type"],
                "size_bytes": info.size,
                "filename": upload["filename"],
            }
        elif isinstance(data, str) and data.startswith(("http://", "https://")):
            mime = blob.get("mime_type") or mimetypes.guess_type(data.split("?")[0])[0]
            out |= {
                "url": data,
                "mime_type": mime or BLOB_MIME_DEFAULTS.get(kind, "application/octet-stream"),
                "size_bytes": 0,
            }
        elif kind in ("text", "json") and data is not None:
            text = data if isinstance(data, str) else json.dumps(data)
            if len(text.encode()) > MAX_INLINE_TEXT:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"{where}.data is over {MAX_INLINE_TEXT} bytes; upload it as a file",
                    field=f"{where}.data",
                )
            out |= {
                "text": text,
                "mime_type": "text/plain" if kind == "text" else "application/json",
                "size_bytes": 0,
            }
        else:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"{where} needs inline text in 'data' (text blobs), an http(s) URL in 'data', "
                "or an 'upload_id'",
                field=f"{where}.data",
            )
        return out

    def create_object(
        self,
        namespace: Namespace,
        bucket: str,
        *,
        blobs: list[Any],
        metadata: dict[str, Any] | None = None,
        key_prefix: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Validate every blob first (nothing is stored when one is wrong), then insert. An
        object already made with the same ``idempotency_key`` in the bucket is answered again
        instead of a second one."""
        doc = self.get_bucket(namespace, bucket)
        if idempotency_key:
            made = self.objects.find_one(
                {"bucket_id": doc["bucket_id"], "idempotency_key": idempotency_key}, {"_id": 0}
            )
            if made is not None:
                return made
        if not isinstance(blobs, list) or not blobs:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "blobs must be a non-empty list", field="blobs"
            )
        checked = [self._blob(namespace, doc, i, blob) for i, blob in enumerate(blobs)]
        return self._insert(
            doc, checked, metadata=metadata, key_prefix=key_prefix, idempotency_key=idempotency_key
        )

    def _insert(
        self,
        bucket: dict[str, Any],
        blobs: list[dict[str, Any]],
        *,
        metadata: dict[str, Any] | None = None,
        key_prefix: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        obj = {
            "org_id": bucket["org_id"],
            "namespace_id": bucket["namespace_id"],
            "object_id": new_id("obj"),
            "bucket_id": bucket["bucket_id"],
            "key_prefix": key_prefix or "",
            "metadata": metadata or {},
            "blobs": blobs,
            "seq": self._next_seq(),
            "created_at": now(),
        }
        if idempotency_key:
            obj["idempotency_key"] = idempotency_key
        self.objects.insert_one(obj)
        obj.pop("_id", None)
        return obj

    def update_object(
        self,
        namespace: Namespace,
        bucket: str,
        object_id: str,
        *,
        key_prefix: str | None = None,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> dict[str, Any]:
        """Change an object's ``key_prefix`` or metadata (merged, or replaced whole). Documents
        already made from it keep the metadata they were made with until it is processed
        again."""
        doc = self.get_bucket(namespace, bucket)
        current = self.get_object(namespace, doc["bucket_id"], object_id)
        update: dict[str, Any] = {}
        if key_prefix is not None:
            update["key_prefix"] = key_prefix
        if metadata is not None:
            update["metadata"] = metadata if replace_metadata else current["metadata"] | metadata
        if update:
            update["updated_at"] = now()
            self.objects.update_one({"object_id": object_id}, {"$set": update})
        return self.get_object(namespace, doc["bucket_id"], object_id)

    def get_object(self, namespace: Namespace, bucket_id: str, object_id: str) -> dict[str, Any]:
        doc = self.objects.find_one(
            {**scope(namespace), "bucket_id": bucket_id, "object_id": object_id}, {"_id": 0}
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"object {object_id!r} not found", field="object_id"
            )
        return doc

    def object_by_id(self, object_id: str) -> dict[str, Any] | None:
        """An object by id alone (lineage, which starts from a document's record)."""
        return self.objects.find_one({"object_id": object_id}, {"_id": 0})

    def list_objects(
        self,
        namespace: Namespace,
        bucket: str,
        *,
        limit: int = 100,
        cursor: str | None = None,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of the bucket's objects in creation order: after ``cursor``, or from
        ``offset`` when no cursor is given."""
        doc = self.get_bucket(namespace, bucket)
        limit = max(1, min(limit, PAGE_LIMIT))
        found = self.objects.find(
            {"bucket_id": doc["bucket_id"], "seq": {"$gt": decode_cursor(cursor)}}, {"_id": 0}
        ).sort("seq", ASCENDING)
        if offset and not cursor:
            found = found.skip(offset)
        items = list(found.limit(limit + 1))
        result = page(items, limit)
        result["total"] = self.objects.count_documents({"bucket_id": doc["bucket_id"]})
        return result

    def aggregate_objects(
        self,
        namespace: Namespace,
        bucket: str,
        body: dict[str, Any],
        match: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A hosted aggregation (group_by, aggregations, having, range buckets, sort, limit)
        over a bucket's objects (those matching the store query ``match``)."""
        doc = self.get_bucket(namespace, bucket)
        pipeline = aggregation_pipeline(
            {**scope(namespace), "bucket_id": doc["bucket_id"]}, match or {}, body
        )
        with refused_by_store():
            results = aggregation_rows(list(self.objects.aggregate(pipeline)))
        return {"results": results, "total_groups": len(results)}

    def soft_delete(
        self,
        namespace: Namespace,
        bucket_id: str,
        object_ids: list[str],
        *,
        reason: str,
        lifecycle_state: str,
        source: str,
    ) -> list[str]:
        """Mark objects of a bucket (the caller resolved it) out of processing (kept, with
        their files): no trigger or batch processes them again. Returns the ids of those found
        (others are ignored)."""
        query = {
            **scope(namespace),
            "bucket_id": bucket_id,
            "object_id": {"$in": object_ids},
        }
        found = [o["object_id"] for o in self.objects.find(query, {"_id": 0, "object_id": 1})]
        self.objects.update_many(
            query,
            {"$set": {"lifecycle_state": lifecycle_state, "lifecycle_reason": reason,
                      "lifecycle_source": source, "lifecycle_changed_at": now()}},
        )  # fmt: skip
        return found

    def delete_object(self, namespace: Namespace, bucket_id: str, object_id: str) -> dict[str, Any]:
        doc = self.get_object(namespace, bucket_id, object_id)
        for blob in doc["blobs"]:
            if blob.get("key"):
                self.store.delete(blob["key"])
        self.objects.delete_one({"object_id": object_id})
        return doc

    def last_seq(self) -> int:
        """The highest sequence number an object has taken (0: none yet): one small read, for
        a sensor that waits for the next object."""
        doc = self.counters.find_one({"_id": "object_seq"})
        return int(doc["value"]) if doc else 0

    def objects_after(self, seq: int, *, limit: int) -> list[dict[str, Any]]:
        """Objects of every bucket with ``seq`` above ``seq``, in sequence order."""
        return list(
            self.objects.find({"seq": {"$gt": seq}}, {"_id": 0}).sort("seq", ASCENDING).limit(limit)
        )

    def objects_by_id(
        self, object_ids: Iterable[str], *, seq_range: tuple[int, int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The objects with these ids; ``seq_range`` (first, last sequence numbers they lie
        within, as an ingestion batch records) reads them by the sequence index instead of a
        long ``$in``, which some MongoDB-compatible servers answer slowly."""
        ids = list(object_ids)
        if seq_range is not None:
            wanted = set(ids)
            for doc in self.objects.find(
                {"seq": {"$gte": seq_range[0], "$lte": seq_range[1]}}, {"_id": 0}
            ):
                if doc["object_id"] in wanted and doc.get("lifecycle_state") in LIVE:
                    yield doc
            return
        for start in range(0, len(ids), 500):
            yield from self.objects.find(
                {"object_id": {"$in": ids[start : start + 500]}, "lifecycle_state": {"$in": LIVE}},
                {"_id": 0},
            )

    def holds_objects(self, bucket_ids: list[str]) -> bool:
        return self.objects.find_one({"bucket_id": {"$in": bucket_ids}}, {"_id": 1}) is not None

    def object_ids_in(self, bucket_ids: list[str]) -> Iterator[tuple[int, str]]:
        """The live objects of these buckets (soft-deleted ones are left out), in order."""
        for doc in self.objects.find(
            {"bucket_id": {"$in": bucket_ids}, "lifecycle_state": {"$in": LIVE}},
            {"_id": 0, "seq": 1, "object_id": 1},
        ).sort("seq", ASCENDING):
            yield doc["seq"], doc["object_id"]

    # -- files landing under a bucket's prefix --------------------------------------------------

    def remember_landed(self, bucket_ids: list[str]) -> None:
        """Read which files of these buckets are objects already, once per process and for all
        of them in one query (a sensor's first tick over a thousand buckets would otherwise
        make a thousand); afterwards this process keeps track of what it registers."""
        missing = [b for b in bucket_ids if b not in self._landed]
        if not missing:
            return
        for bucket_id in missing:
            self._landed[bucket_id] = {}
        for doc in self.objects.find(
            {"bucket_id": {"$in": missing}, "source_key": {"$exists": True}},
            {"_id": 0, "bucket_id": 1, "source_key": 1},
        ):
            self._landed[doc["bucket_id"]][doc["source_key"]] = None

    def register_landed_files(self, bucket: dict[str, Any], *, limit: int = 5000) -> int:
        """Turn files found under the bucket's landing prefix into objects (once each).

        At most ``limit`` per call, inserted together with one block of sequence numbers, so a
        sensor tick stays short; the rest come next tick.
        """
        prefix = landing_prefix(bucket, bucket["bucket_id"])
        self.remember_landed([bucket["bucket_id"]])
        known = self._landed[bucket["bucket_id"]]
        properties = bucket["bucket_schema"]["properties"]
        blobs: list[tuple[str, dict[str, Any]]] = []
        for info in self.store.list(prefix):
            if info.key in known:
                seen = known[info.key]
                if seen is None or seen == info.last_modified:
                    known[info.key] = info.last_modified
                    continue
                # the file changed since: registered still, or deleted and landed again?
                if self.objects.find_one({"source_key": info.key}, {"_id": 1}) is not None:
                    known[info.key] = info.last_modified
                    continue
            mime = mimetypes.guess_type(info.key)[0] or "application/octet-stream"
            kind = blob_type_for_mime(mime)
            prop = next((p for p, spec in properties.items() if spec["type"] == kind), None)
            if prop is None and kind == "json":  # JSON is text to a schema without JSON
                kind = "text"
                prop = next((p for p, spec in properties.items() if spec["type"] == kind), None)
            if prop is None:
                continue  # the schema has no property for this kind of file
            blob = {
                "blob_id": new_id("blob", 6),
                "property": prop,
                "type": kind,
                "metadata": {},
                "key": validate_key(info.key),
                "mime_type": mime,
                "size_bytes": info.size,
                "filename": info.key.rsplit("/", 1)[-1],
            }
            blobs.append((info.key, blob))
            if len(blobs) >= limit:
                break
        if not blobs:
            return 0
        first = self._next_seq(len(blobs))
        docs = []
        for offset, (key, blob) in enumerate(blobs):
            relative = key[len(prefix) :]
            docs.append(
                {
                    "org_id": bucket["org_id"],
                    "namespace_id": bucket["namespace_id"],
                    "object_id": new_id("obj"),
                    "bucket_id": bucket["bucket_id"],
                    "key_prefix": relative.rsplit("/", 1)[0] if "/" in relative else "",
                    "metadata": {},
                    "blobs": [blob],
                    "seq": first + offset,
                    "created_at": now(),
                    "source_key": key,
                }
            )
        known.update(dict.fromkeys(key for key, _ in blobs))  # modification seen next listing
        try:
            return len(self.objects.insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            # another process registered some of them (the unique source key refused them):
            # those numbers stay unused
            return int(exc.details.get("nInserted", 0))

    def created_before(self, seq: int) -> datetime | None:
        doc = self.objects.find_one({"seq": seq}, {"created_at": 1})
        return doc["created_at"] if doc else None
