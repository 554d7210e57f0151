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
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.objects import ObjectStore, validate_key
from mixpeek_orchestration.storage.pages import decode_cursor, page
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.tenancy.accounts import Namespace

BLOB_TYPES = frozenset(BLOB_MIME_DEFAULTS) | {"json"}
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
        properties = (bucket_schema or {}).get("properties")
        if not isinstance(properties, dict) or not properties:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "bucket_schema.properties must name at least one blob property",
                field="bucket_schema.properties",
            )
        for name, spec in properties.items():
            kind = spec.get("type") if isinstance(spec, dict) else None
            if kind not in BLOB_TYPES:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"bucket_schema.properties.{name}.type must be one of {sorted(BLOB_TYPES)}, "
                    f"not {kind!r}",
                    field=f"bucket_schema.properties.{name}.type",
                )
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
        """Every bucket, object, upload and stored file of a namespace; returns the objects
        removed."""
        removed = self.objects.delete_many(scope(namespace)).deleted_count
        self.uploads.delete_many(scope(namespace))
        self.buckets.delete_many(scope(namespace))
        self.store.delete_prefix(f"{namespace.org_id}/{namespace.namespace_id}/buckets/")
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
    ) -> dict[str, Any]:
        """A presigned PUT for one file; name it in an object's blob as ``upload_id``."""
        doc = self.get_bucket(namespace, bucket)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", filename or "")[:200].lstrip(".")
        if not safe:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "filename is required", field="filename")
        content_type = content_type or mimetypes.guess_type(safe)[0] or "application/octet-stream"
        upload_id = new_id("upl")
        key = f"{namespace.org_id}/{namespace.namespace_id}/buckets/{doc['bucket_id']}/uploads/{upload_id}/{safe}"
        request = self.store.presign_put(
            key, expires_in=UPLOAD_EXPIRES_S, content_type=content_type, max_bytes=size_bytes
        )
        record = {
            **scope(namespace),
            "upload_id": upload_id,
            "bucket_id": doc["bucket_id"],
            "key": key,
            "filename": safe,
            "content_type": content_type,
            "created_at": now(),
            "expires_at": now() + timedelta(seconds=UPLOAD_EXPIRES_S),
        }
        self.uploads.insert_one(record)
        return {
            "upload_id": upload_id,
            "upload_url": request.url,
            "method": request.method,
            "headers": request.headers,
            "content_type": content_type,
            "expires_at": record["expires_at"],
        }

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
        kind = blob.get("type") or properties[prop]["type"]
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
    ) -> dict[str, Any]:
        """Validate every blob first (nothing is stored when one is wrong), then insert."""
        doc = self.get_bucket(namespace, bucket)
        if not isinstance(blobs, list) or not blobs:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "blobs must be a non-empty list", field="blobs"
            )
        checked = [self._blob(namespace, doc, i, blob) for i, blob in enumerate(blobs)]
        return self._insert(doc, checked, metadata=metadata, key_prefix=key_prefix)

    def _insert(
        self,
        bucket: dict[str, Any],
        blobs: list[dict[str, Any]],
        *,
        metadata: dict[str, Any] | None = None,
        key_prefix: str | None = None,
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
        self.objects.insert_one(obj)
        obj.pop("_id", None)
        return obj

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
        self, namespace: Namespace, bucket: str, *, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        doc = self.get_bucket(namespace, bucket)
        limit = max(1, min(limit, PAGE_LIMIT))
        items = list(
            self.objects.find(
                {"bucket_id": doc["bucket_id"], "seq": {"$gt": decode_cursor(cursor)}}, {"_id": 0}
            )
            .sort("seq", ASCENDING)
            .limit(limit + 1)
        )
        result = page(items, limit)
        result["total"] = self.objects.count_documents({"bucket_id": doc["bucket_id"]})
        return result

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
                if doc["object_id"] in wanted:
                    yield doc
            return
        for start in range(0, len(ids), 500):
            yield from self.objects.find(
                {"object_id": {"$in": ids[start : start + 500]}}, {"_id": 0}
            )

    def object_ids_in(self, bucket_ids: list[str]) -> Iterator[tuple[int, str]]:
        for doc in self.objects.find(
            {"bucket_id": {"$in": bucket_ids}}, {"_id": 0, "seq": 1, "object_id": 1}
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
