"""Uploaded models: weights an organisation uploads once and its plugins load by name
(``load_namespace_model(name)``, also as ``shared.models.loader.load_namespace_model``).

The hosted flow: ``POST /v1/models/uploads`` answers a presigned ``PUT``; the client uploads
the file and confirms (``POST /v1/models/uploads/{upload_id}/confirm``), which checks it before
it becomes a model: a ``safetensors`` file (its header parsed), an ``onnx`` file (loaded by
onnxruntime), or a ``sentence_transformers`` directory, zipped, through the plugin archive gate
(sizes, traversal, links, bombs), with its weights in safetensors. Pickle-based formats
(``pytorch``, ``.bin``, ``.pt``, ``.pkl``, ...) are refused: loading them runs code. A model is
the organisation's: every namespace of it may load it, another organisation gets 404.

A worker fetches a model it is asked for once (:class:`StoredModels`): a presigned URL, the
sha256 checked, the file (or the extracted directory) cached by digest, then mounted
read-only into the plugin's sandbox.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import struct
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.storage.ids import new_id, now

if TYPE_CHECKING:
    from mixpeek_orchestration.storage.metadata import MetadataStore
    from mixpeek_orchestration.storage.objects import ObjectStore

logger = logging.getLogger(__name__)

FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "sentence_transformers": ".zip"}
PICKLED = {"pytorch", "pickle", "pkl", "pt", "pth", "bin", "joblib", "torchscript", "keras", "h5"}
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".joblib", ".ckpt", ".h5", ".npy")
MODEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,63}$")
MAX_MODEL_BYTES = 5 * 1024**3
UPLOAD_TTL_S = 3600
FETCH_URL_TTL_S = 900


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"invalid model name {name!r}: 3-64 letters, digits or '_', starting with a letter",
            field="name",
        )
    return name


def check_format(model_format: str) -> str:
    fmt = str(model_format).lower().replace("-", "_")
    if fmt in PICKLED:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"model_format {model_format!r} is pickle-based (loading it runs code) and is refused: "
            "convert the weights to safetensors or ONNX",
            field="model_format",
        )
    if fmt not in FORMATS:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"unsupported model_format {model_format!r}; supported: {sorted(FORMATS)}",
            field="model_format",
        )
    return fmt


class ModelRegistry:
    """``model_uploads`` and ``models`` of a data plane (see the module docstring)."""

    def __init__(self, metadata: MetadataStore, objects: ObjectStore) -> None:
        self.uploads = metadata.collection("model_uploads")
        self.models = metadata.collection("models")
        self.objects = objects

    def ensure_indexes(self) -> None:
        self.uploads.create_index("upload_id", unique=True)
        self.models.create_index("model_id", unique=True)
        self.models.create_index(
            [("org_id", ASCENDING), ("name", ASCENDING), ("version", ASCENDING)], unique=True
        )

    # -- uploads ------------------------------------------------------------------------------

    def create_upload(
        self,
        org_id: str,
        *,
        name: str,
        version: str,
        model_format: str,
        description: str | None = None,
        file_size_bytes: int | None = None,
        expires_in: int = UPLOAD_TTL_S,
    ) -> dict[str, Any]:
        check_model_name(name)
        fmt = check_format(model_format)
        if not isinstance(version, str) or not version.strip() or len(version) > 64:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "version must be 1-64 characters",
                               field="version")  # fmt: skip
        if file_size_bytes is not None and not 0 < file_size_bytes <= MAX_MODEL_BYTES:
            raise MixpeekError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"file_size_bytes must be between 1 and {MAX_MODEL_BYTES}",
                field="file_size_bytes",
            )
        if self.models.find_one({"org_id": org_id, "name": name, "version": version}):
            raise MixpeekError(
                ErrorCode.CONFLICT, f"model {name} {version} already exists", field="version"
            )
        upload_id = new_id("mup")
        key = f"{org_id}/models/{name}/{version}/{upload_id}{FORMATS[fmt]}"
        content_type = (
            "application/zip" if fmt == "sentence_transformers" else "application/octet-stream"
        )
        presigned = self.objects.presign_put(
            key, expires_in=expires_in, content_type=content_type,
            max_bytes=file_size_bytes or MAX_MODEL_BYTES,
        )  # fmt: skip
        expires_at = now() + timedelta(seconds=expires_in)
        self.uploads.insert_one(
            {"upload_id": upload_id, "org_id": org_id, "name": name, "version": version,
             "model_format": fmt, "description": description or "", "key": key,
             "status": "pending", "created_at": now(), "expires_at": expires_at}
        )  # fmt: skip
        return {
            "upload_id": upload_id,
            "presigned_url": presigned.url,
            "headers": presigned.headers,
            "required_content_type": content_type,
            "s3_key": key,
            "expires_at": expires_at,
            "organization_id": org_id,
            "name": name,
            "version": version,
            "model_format": fmt,
        }

    def upload(
        self,
        org_id: str,
        chunks: Iterable[bytes],
        *,
        name: str,
        version: str,
        model_format: str,
        description: str | None = None,
    ) -> dict[str, Any]:
        """The whole flow in one call (the hosted multipart upload): the file written where a
        presigned upload would put it, then confirmed with the same checks."""
        ticket = self.create_upload(
            org_id, name=name, version=version, model_format=model_format,
            description=description,
        )  # fmt: skip
        try:
            self.objects.put_stream(ticket["s3_key"], chunks, max_bytes=MAX_MODEL_BYTES)
        except BaseException:  # too large, or the client went away: nothing is left of it
            self.uploads.delete_one({"upload_id": ticket["upload_id"]})
            self.objects.delete(ticket["s3_key"])
            raise
        return self.confirm(org_id, ticket["upload_id"])

    def confirm(self, org_id: str, upload_id: str) -> dict[str, Any]:
        """Check the uploaded file and register it; a file that fails is deleted and the
        answer names why (nothing is registered)."""
        upload = self.uploads.find_one({"upload_id": upload_id, "org_id": org_id}, {"_id": 0})
        if upload is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"model upload {upload_id!r} not found")
        if upload["status"] == "confirmed":
            model = self.models.find_one({"model_id": upload["model_id"]}, {"_id": 0})
            return {"success": True, "upload_id": upload_id, "model_id": upload["model_id"],
                    "validation_status": "passed", "model": model}  # fmt: skip
        info = self.objects.stat(upload["key"])
        if info is None:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"nothing was uploaded for {upload_id}: PUT the file to its presigned_url first",
            )
        with tempfile.TemporaryDirectory(prefix="mixpeek-model-check-") as work:
            local = Path(work) / Path(upload["key"]).name
            digest = hashlib.sha256()
            with self.objects.open_read(upload["key"]) as source, local.open("wb") as out:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            errors = validate_model_file(local, upload["model_format"], Path(work) / "x")
        if errors:
            self.objects.delete(upload["key"])
            self.uploads.update_one({"upload_id": upload_id}, {"$set": {"status": "failed",
                                                                         "errors": errors}})  # fmt: skip
            return {"success": False, "upload_id": upload_id, "model_id": None,
                    "validation_status": "failed", "validation_errors": errors,
                    "message": "; ".join(errors)}  # fmt: skip
        stamp = now()
        model = {
            "model_id": new_id("mdl"), "org_id": org_id, "name": upload["name"],
            "version": upload["version"], "model_format": upload["model_format"],
            "description": upload["description"], "key": upload["key"],
            "sha256": digest.hexdigest(), "size_bytes": info.size, "validation_status": "passed",
            "source": "customer", "created_at": stamp, "updated_at": stamp, "used_by": [],
        }  # fmt: skip
        try:
            self.models.insert_one(dict(model))
        except DuplicateKeyError:
            raise MixpeekError(
                ErrorCode.CONFLICT, f"model {upload['name']} {upload['version']} already exists"
            ) from None
        self.uploads.update_one(
            {"upload_id": upload_id},
            {"$set": {"status": "confirmed", "model_id": model["model_id"]}},
        )
        return {"success": True, "upload_id": upload_id, "model_id": model["model_id"],
                "validation_status": "passed", "model": model}  # fmt: skip

    # -- models -------------------------------------------------------------------------------

    def list(self, org_id: str) -> list[dict[str, Any]]:
        return list(
            self.models.find({"org_id": org_id}, {"_id": 0}).sort(
                [("name", ASCENDING), ("created_at", DESCENDING)]
            )
        )

    def get(self, org_id: str, model_id: str) -> dict[str, Any]:
        model = self.models.find_one(
            {"org_id": org_id, "$or": [{"model_id": model_id}, {"name": model_id}]},
            {"_id": 0},
            sort=[("created_at", DESCENDING)],
        )
        if model is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"model {model_id!r} not found")
        return model  # type: ignore[no-any-return]

    def by_name(self, org_id: str, name: str) -> dict[str, Any] | None:
        """The newest version of the organisation's model ``name``."""
        return self.models.find_one(  # type: ignore[no-any-return]
            {"org_id": org_id, "name": name}, {"_id": 0}, sort=[("created_at", DESCENDING)]
        )

    @staticmethod
    def enabled_in(model: dict[str, Any], namespace_id: str) -> bool:
        """Whether the namespace's plugins may load the model (every namespace of its
        organisation may, until the namespace disables it)."""
        return namespace_id not in model.get("disabled_namespaces", [])

    def set_enabled(
        self,
        org_id: str,
        model_id: str,
        namespace_id: str,
        enabled: bool,
        *,
        deployed: set[tuple[str, str]],
    ) -> dict[str, Any]:
        """Let the namespace's plugins load the model again, or stop them (409 while one of
        its deployed plugins (``(namespace_id, plugin_id)`` in ``deployed``) has loaded it:
        undeploy it first)."""
        model = self.get(org_id, model_id)
        if not enabled:
            users = sorted(
                u["plugin_id"] for u in model.get("used_by", [])
                if u["namespace_id"] == namespace_id and (namespace_id, u["plugin_id"]) in deployed
            )  # fmt: skip
            if users:
                raise MixpeekError(
                    ErrorCode.CONFLICT,
                    f"model {model['name']} {model['version']} is used by deployed plugin(s) "
                    f"{users} of this namespace: undeploy them first",
                )
        change = "$pull" if enabled else "$addToSet"
        self.models.update_one(
            {"model_id": model["model_id"]},
            {change: {"disabled_namespaces": namespace_id}, "$set": {"updated_at": now()}},
        )
        return self.get(org_id, model["model_id"])

    def mark_used(self, model_id: str, plugin_id: str, namespace_id: str) -> None:
        self.models.update_one(
            {"model_id": model_id},
            {"$addToSet": {"used_by": {"plugin_id": plugin_id, "namespace_id": namespace_id}}},
        )

    def delete(self, org_id: str, model_id: str, *, deployed: set[tuple[str, str]]) -> None:
        """Remove a model and its file; 409 while a deployed plugin (``(namespace_id,
        plugin_id)`` in ``deployed``) has loaded it."""
        model = self.get(org_id, model_id)
        users = sorted(
            u["plugin_id"] for u in model.get("used_by", [])
            if (u["namespace_id"], u["plugin_id"]) in deployed
        )  # fmt: skip
        if users:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"model {model['name']} {model['version']} is used by deployed plugin(s) "
                f"{users}: undeploy them first",
            )
        self.models.delete_one({"model_id": model["model_id"]})
        self.objects.delete(model["key"])

    def delete_organization(self, org_id: str) -> None:
        for model in self.models.find({"org_id": org_id}, {"key": 1}):
            self.objects.delete(model["key"])
        self.models.delete_many({"org_id": org_id})
        self.uploads.delete_many({"org_id": org_id})


def validate_model_file(path: Path, model_format: str, scratch: Path) -> list[str]:
    """Why ``path`` is not a loadable model of ``model_format`` (empty: it is)."""
    try:
        if model_format == "safetensors":
            _check_safetensors(path)
        elif model_format == "onnx":
            import onnxruntime

            onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        else:
            extract_sentence_transformers(path, scratch)
    except MixpeekError as exc:
        return [exc.detail]
    except Exception as exc:
        return [f"not a valid {model_format} model: {type(exc).__name__}: {str(exc)[:300]}"]
    return []


def _check_safetensors(path: Path) -> None:
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) < 8:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "not a safetensors file: too short")
        (length,) = struct.unpack("<Q", raw)
        if not 2 <= length <= 100 * 1024**2:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "not a safetensors file: bad header")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict) or not any(k != "__metadata__" for k in header):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "safetensors file holds no tensors")


def extract_sentence_transformers(archive: Path, dest: Path) -> Path:
    """A zipped sentence-transformers directory, through the archive gate, into ``dest``;
    refused when it holds pickled weights or no safetensors ones."""
    import zipfile

    from mixpeek_orchestration.plugins.archive import (
        ArchiveLimits,
        ArchiveRejected,
        extract_archive,
    )

    try:
        with zipfile.ZipFile(archive) as listing:
            names = listing.namelist()
    except zipfile.BadZipFile:
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "not a zip archive") from None
    pickled = sorted(n for n in names if n.lower().endswith(PICKLED_SUFFIXES))
    if pickled:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"the archive holds pickled weights {pickled[:5]}: save the model with "
            "safe_serialization (model.safetensors) instead",
        )
    limits = ArchiveLimits(
        max_compressed_bytes=MAX_MODEL_BYTES, max_extracted_bytes=MAX_MODEL_BYTES
    )
    try:
        extracted = extract_archive(
            archive, dest, limits=limits, protected_modules=frozenset(), require_manifest=False
        )
    except ArchiveRejected as exc:
        raise MixpeekError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    if not any(f.endswith(".safetensors") for f in extracted.files):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "the archive holds no .safetensors weights")
    if not any(f.split("/")[-1] in ("modules.json", "config.json") for f in extracted.files):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            "not a sentence-transformers directory: no modules.json or config.json",
        )
    return extracted.root


def uploaded_models_dir() -> Path:
    """This node's cache of uploaded models (beside the built-in models' cache), shared by
    every plugin host on the node."""
    from mixpeek_orchestration.models.cache import default_cache_dir

    return default_cache_dir().parent / "uploaded"


class StoredModels:
    """A worker's source of the organisation's models (a ``ModelSource``): each fetched once
    by presigned URL, its sha256 checked, kept under ``cache_dir`` by digest."""

    def __init__(
        self,
        registry: ModelRegistry,
        org_id: str,
        cache_dir: Path,
        *,
        plugin_id: str,
        namespace_id: str,
    ) -> None:
        self.registry = registry
        self.org_id = org_id
        self.cache_dir = cache_dir
        self.plugin_id = plugin_id
        self.namespace_id = namespace_id

    def resolve(self, name: str) -> Path:
        """A plugin's model by name (the newest version), recorded as used by the plugin."""
        model = self.registry.by_name(self.org_id, name)
        if model is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"model {name!r} not found in this organization: upload it with POST "
                "/v1/models/uploads",
            )
        if not self.registry.enabled_in(model, self.namespace_id):
            raise MixpeekError(
                ErrorCode.PERMISSION_DENIED,
                f"model {name!r} is disabled in this namespace: enable it with POST "
                f"/v1/namespaces/{{namespace_id}}/models/org/{model['model_id']}/enable",
            )
        self.registry.mark_used(model["model_id"], self.plugin_id, self.namespace_id)
        return self.fetch(model)

    def cached(self, model: dict[str, Any]) -> Path:
        """Where the model's file (or directory) lies once fetched."""
        fmt = model["model_format"]
        target = self.cache_dir / model["sha256"]
        return target / (f"model{FORMATS[fmt]}" if fmt != "sentence_transformers" else "model")

    def fetch(self, model: dict[str, Any]) -> Path:
        """The model in this node's cache: fetched by presigned URL and its sha256 checked
        the first time, read from the cache after."""
        from mixpeek_orchestration.plugins.fetch import download_archive

        fmt = model["model_format"]
        target = self.cache_dir / model["sha256"]
        final = self.cached(model)
        if final.exists():
            return final
        work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self._dir()))
        try:
            url = self.registry.objects.presign_get(model["key"], expires_in=FETCH_URL_TTL_S).url
            download = work / f"download{FORMATS[fmt]}"
            download_archive(url, model["sha256"], download)
            if fmt == "sentence_transformers":
                root = extract_sentence_transformers(download, work / "extracted")
                root.rename(work / "model")
                download.unlink()
            else:
                download.rename(work / final.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                work.rename(target)  # another worker process may have won: keep theirs
            except OSError:
                if not final.exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return final

    def _dir(self) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir
