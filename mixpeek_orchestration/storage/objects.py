"""Object store: one interface, two backends.

* :class:`LocalObjectStore` keeps objects under a directory. Its upload / download URLs are
  HMAC-signed and expiring, served by the platform API, and an upload streams to disk in chunks
  (never buffered whole) with the size limit enforced while streaming.
* :class:`S3ObjectStore` talks to S3 or any S3-compatible server through boto3, with real
  presigned URLs.

Keys are relative, ``/``-separated paths (``{org_id}/{namespace_id}/...``); anything that could
escape the store's root (``..``, absolute paths, backslashes, empty segments) is refused.

Example:
    >>> store = LocalObjectStore(Path("/tmp/objs"), signing_key=b"k", public_url="http://127.0.0.1:8000")
    >>> store.put_bytes("org/ns/hello.txt", b"hi").size
    2
    >>> upload = store.presign_put("org/ns/big.zip", expires_in=600, max_bytes=10_000_000)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.health import ComponentHealth

if TYPE_CHECKING:
    from mixpeek_orchestration.settings import MixpeekSettings

CHUNK_SIZE = 1024 * 1024
HEALTH_PREFIX = ".health"


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object."""

    key: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True)
class PresignedRequest:
    """A URL a client can use without credentials until ``expires_at``."""

    url: str
    method: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``invalid_object_key``."""
    problem = None
    if not key:
        problem = "is empty"
    elif key.startswith("/"):
        problem = "is absolute"
    elif "\\" in key or "\x00" in key:
        problem = "contains a backslash or NUL"
    elif any(part in ("", ".", "..") for part in key.split("/")):
        problem = "has an empty, '.' or '..' segment"
    elif len(key.encode()) > 1024:
        problem = "is longer than 1024 bytes"
    if problem:
        raise MixpeekError(ErrorCode.INVALID_OBJECT_KEY, f"Object key {key!r} {problem}", key=key)
    return key


class ObjectStore(ABC):
    """Interface every object-store backend implements."""

    backend: str

    @abstractmethod
    def put_stream(
        self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> ObjectInfo:
        """Write an object from an iterable of chunks, refusing more than ``max_bytes``."""

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self.put_stream(key, [data])

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        with path.open("rb") as handle:
            return self.put_stream(key, iter(lambda: handle.read(CHUNK_SIZE), b""))

    @abstractmethod
    def open_read(self, key: str) -> IO[bytes]:
        """Open an object for streaming reads; raises ``not_found`` when it does not exist."""

    def get_bytes(self, key: str) -> bytes:
        with self.open_read(key) as handle:
            return handle.read()

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size and etag of an object, or ``None`` when it does not exist."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Delete one object; ``True`` when it existed."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order."""

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for info in list(self.list(prefix)):
            count += self.delete(info.key)
        return count

    @abstractmethod
    def presign_put(
        self,
        key: str,
        *,
        expires_in: int,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> PresignedRequest:
        """A URL a client can ``PUT`` the object's bytes to."""

    @abstractmethod
    def presign_get(self, key: str, *, expires_in: int) -> PresignedRequest:
        """A URL a client (or a worker) can ``GET`` the object from."""

    @abstractmethod
    def health(self) -> ComponentHealth:
        """Write, read back and delete a probe object."""

    def _probe(self, description: str) -> ComponentHealth:
        key = f"{HEALTH_PREFIX}/probe-{os.getpid()}-{time.monotonic_ns()}"
        payload = os.urandom(16)
        self.put_bytes(key, payload)
        try:
            if self.get_bytes(key) != payload:
                return ComponentHealth.error(f"{description}: probe read back different bytes")
        finally:
            self.delete(key)
        return ComponentHealth.ok(description)


# -- local directory ------------------------------------------------------------------------


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``, with HMAC-signed URLs served by the platform API.

    Args:
        root: the directory holding the objects.
        signing_key: secret for URL signatures.
        public_url: base URL of the API that serves ``/v1/storage/...``.
    """

    backend = "local"

    def __init__(self, root: Path, *, signing_key: bytes, public_url: str) -> None:
        self.root = root
        self._signing_key = signing_key
        self.public_url = public_url.rstrip("/")
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put_stream(
        self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> ObjectInfo:
        with self.writer(key, max_bytes=max_bytes) as writer:
            for chunk in chunks:
                writer.write(chunk)
        return writer.info

    def writer(self, key: str, *, max_bytes: int | None = None) -> _AtomicWriter:
        """A context manager writing ``key`` atomically: visible only once closed without error."""
        return _AtomicWriter(self.path_for(key), key, max_bytes)

    def open_read(self, key: str) -> IO[bytes]:
        path = self.path_for(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Object {key!r} not found", key=key) from None

    def stat(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        if not path.is_file():
            return None
        st = path.stat()
        return ObjectInfo(key, st.st_size, None, datetime.fromtimestamp(st.st_mtime, UTC))

    def delete(self, key: str) -> bool:
        path = self.path_for(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        count = super().delete_prefix(prefix)
        if prefix.endswith("/"):
            shutil.rmtree(self.path_for(prefix.rstrip("/")), ignore_errors=True)
        return count

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the deepest directory the prefix names, not the whole store, with one
        # stat per file and plain strings (a sensor lists every landing prefix each tick).
        # Links are not followed: nothing outside the root is listed.
        base_key = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.path_for(base_key) if base_key else self.root
        if not base.is_dir():
            return
        cut = len(str(self.root)) + 1
        found: list[ObjectInfo] = []
        directories = [str(base)]
        while directories:
            with os.scandir(directories.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        directories.append(entry.path)
                        continue
                    if entry.name.startswith(".upload-") or not entry.is_file(
                        follow_symlinks=False
                    ):
                        continue
                    key = entry.path[cut:].replace(os.sep, "/")
                    if key.startswith(prefix):
                        st = entry.stat(follow_symlinks=False)
                        found.append(
                            ObjectInfo(
                                key, st.st_size, None, datetime.fromtimestamp(st.st_mtime, UTC)
                            )
                        )
        found.sort(key=lambda info: info.key)
        yield from found

    # Signed URLs. The signature covers the method, key, expiry and limits, so none of them
    # can be changed without invalidating the URL.

    def _sign(self, method: str, key: str, expires: int, max_bytes: int | None, ctype: str) -> str:
        message = "\n".join([method, key, str(expires), str(max_bytes or ""), ctype]).encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def _presign(
        self, method: str, key: str, expires_in: int, max_bytes: int | None, content_type: str
    ) -> PresignedRequest:
        validate_key(key)
        if expires_in <= 0:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, f"expires_in ({expires_in}) must be > 0")
        expires = int(time.time()) + expires_in
        params: dict[str, Any] = {"expires": expires}
        if max_bytes is not None:
            params["max_bytes"] = max_bytes
        if content_type:
            params["content_type"] = content_type
        params["signature"] = self._sign(method, key, expires, max_bytes, content_type)
        url = f"{self.public_url}/v1/storage/{quote(key)}?{urlencode(params)}"
        headers = {"Content-Type": content_type} if content_type else {}
        return PresignedRequest(url, method, datetime.fromtimestamp(expires, UTC), headers)

    def presign_put(
        self,
        key: str,
        *,
        expires_in: int,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> PresignedRequest:
        return self._presign("PUT", key, expires_in, max_bytes, content_type or "")

    def presign_get(self, key: str, *, expires_in: int) -> PresignedRequest:
        return self._presign("GET", key, expires_in, None, "")

    def verify(
        self,
        method: str,
        key: str,
        *,
        expires: int,
        signature: str,
        max_bytes: int | None = None,
        content_type: str = "",
    ) -> None:
        """Check a signed URL's parameters; raises ``signature_invalid`` / ``signature_expired``."""
        validate_key(key)
        expected = self._sign(method, key, expires, max_bytes, content_type)
        # bytes: compare_digest refuses a str holding anything but ASCII
        if not hmac.compare_digest(expected.encode(), signature.encode(errors="replace")):
            raise MixpeekError(ErrorCode.SIGNATURE_INVALID, "Upload URL signature is invalid")
        if expires < time.time():
            try:
                when = datetime.fromtimestamp(expires, UTC).isoformat()
            except (OverflowError, OSError, ValueError):
                when = f"{expires} (seconds since the epoch)"
            raise MixpeekError(ErrorCode.SIGNATURE_EXPIRED, f"Upload URL expired at {when}")

    async def receive(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None
    ) -> ObjectInfo:
        """Stream an HTTP request body into ``key``; nothing is kept if the limit is passed."""
        with self.writer(key, max_bytes=max_bytes) as writer:
            async for chunk in chunks:
                writer.write(chunk)
        return writer.info

    def health(self) -> ComponentHealth:
        return self._probe(f"local directory {self.root}")


class _AtomicWriter:
    """Writes to a temporary file beside the target and renames it into place on success."""

    def __init__(self, target: Path, key: str, max_bytes: int | None) -> None:
        self.target = target
        self.key = key
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.md5(usedforsecurity=False)
        self._handle: IO[bytes] | None = None
        self.info: ObjectInfo

    def __enter__(self) -> _AtomicWriter:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.target.parent)
        self._tmp = Path(tmp)
        self._handle = os.fdopen(fd, "wb")
        return self

    def write(self, chunk: bytes) -> None:
        assert self._handle is not None
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise MixpeekError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"Upload exceeds the limit of {self.max_bytes} bytes",
                max_bytes=self.max_bytes,
            )
        self._hash.update(chunk)
        self._handle.write(chunk)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._handle is not None
        self._handle.close()
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        os.replace(self._tmp, self.target)
        self.info = ObjectInfo(self.key, self.size, self._hash.hexdigest(), datetime.now(UTC))


# -- S3 -------------------------------------------------------------------------------------


class S3ObjectStore(ObjectStore):
    """Objects in an S3 (or S3-compatible) bucket, under an optional key prefix.

    Args:
        bucket: the bucket name.
        prefix: a key prefix every object lives under (one bucket can serve several stacks).
        client_kwargs: passed to ``boto3.client("s3", ...)`` (endpoint, region, credentials).
    """

    backend = "s3"

    def __init__(self, bucket: str, *, prefix: str = "", **client_kwargs: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client_kwargs = client_kwargs

    @cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        return boto3.client("s3", config=config, **self._client_kwargs)

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def put_stream(
        self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> ObjectInfo:
        # Spool to a temporary file (in memory while small) so boto3 can stream a multipart
        # upload of known length; the limit is enforced before anything reaches the bucket.
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK_SIZE) as spool:
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise MixpeekError(
                        ErrorCode.PAYLOAD_TOO_LARGE,
                        f"Upload exceeds the limit of {max_bytes} bytes",
                        max_bytes=max_bytes,
                    )
                spool.write(chunk)
            spool.seek(0)
            self.client.upload_fileobj(spool, self.bucket, self._full(key))
        info = self.stat(key)
        assert info is not None
        return info

    def open_read(self, key: str) -> IO[bytes]:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise MixpeekError(
                    ErrorCode.NOT_FOUND, f"Object {key!r} not found", key=key
                ) from None
            raise
        return response["Body"]  # type: ignore[no-any-return]

    def stat(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return ObjectInfo(
            key, head["ContentLength"], head.get("ETag", "").strip('"'), head.get("LastModified")
        )

    def delete(self, key: str) -> bool:
        existed = self.stat(key) is not None
        self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        return existed

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    item["Key"][len(self.prefix) :],
                    item["Size"],
                    item.get("ETag", "").strip('"'),
                    item.get("LastModified"),
                )

    def presign_put(
        self,
        key: str,
        *,
        expires_in: int,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> PresignedRequest:
        # A presigned PUT cannot carry a size limit; callers check the stored size on confirm.
        params = {"Bucket": self.bucket, "Key": self._full(key)}
        if content_type:
            params["ContentType"] = content_type
        url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        headers = {"Content-Type": content_type} if content_type else {}
        expires_at = datetime.fromtimestamp(time.time() + expires_in, UTC)
        return PresignedRequest(url, "PUT", expires_at, headers)

    def presign_get(self, key: str, *, expires_in: int) -> PresignedRequest:
        url = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._full(key)},
            ExpiresIn=expires_in,
        )
        return PresignedRequest(url, "GET", datetime.fromtimestamp(time.time() + expires_in, UTC))

    def health(self) -> ComponentHealth:
        self.client.head_bucket(Bucket=self.bucket)
        return self._probe(f"s3 bucket {self.bucket}")


def object_store_from_settings(settings: MixpeekSettings) -> ObjectStore:
    """The configured backend: S3 when ``MIXPEEK_S3_BUCKET`` is set, else the local directory."""
    if settings.s3_bucket:
        kwargs: dict[str, Any] = {"region_name": settings.s3_region}
        if settings.s3_endpoint_url:
            kwargs["endpoint_url"] = settings.s3_endpoint_url
        if settings.s3_access_key_id and settings.s3_secret_access_key:
            kwargs["aws_access_key_id"] = settings.s3_access_key_id
            kwargs["aws_secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
        return S3ObjectStore(settings.s3_bucket, prefix=settings.s3_prefix, **kwargs)
    return LocalObjectStore(
        settings.objects_dir,
        signing_key=settings.signing_key,
        public_url=settings.public_url or settings.api_url,
    )
