"""Namespace models: weights a namespace stores once and plugins load by name.

The platform side of :func:`mixpeek_orchestration.sdk.load_namespace_model`: a
:class:`ModelSource` resolves a model name to a local file (fetched once and cached), and
:func:`load_model_file` loads it. For a ``.safetensors`` file that is its tensors (a dict of
``torch.Tensor``, or numpy arrays when torch is absent), for an ``.onnx`` file an
``onnxruntime.InferenceSession``. Files live in the object store under
``{org_id}/{namespace_id}/models/{name}/``; a local directory serves the same role for
``mixpeek plugin test --models-dir``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

if TYPE_CHECKING:
    from mixpeek_orchestration.storage.objects import ObjectStore

MODEL_FORMATS = (".safetensors", ".onnx")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, f"Invalid model name {name!r}")
    return name


class ModelSource(Protocol):
    def resolve(self, name: str) -> Path:
        """A local path of the model's file."""


class LocalModelDirectory:
    """Models as ``<dir>/<name>.safetensors`` or ``<dir>/<name>.onnx``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def resolve(self, name: str) -> Path:
        _check_name(name)
        for suffix in MODEL_FORMATS:
            candidate = self.root / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
        raise MixpeekError(ErrorCode.NOT_FOUND, f"Model {name!r} not found in {self.root}")


class NamespaceModelRegistry:
    """Models of one namespace in the object store, cached locally on first use.

    Args:
        objects: the object store.
        prefix: ``{org_id}/{namespace_id}/models``.
        cache_dir: where fetched files are kept.
    """

    def __init__(self, objects: ObjectStore, prefix: str, cache_dir: Path) -> None:
        self.objects = objects
        self.prefix = prefix.rstrip("/")
        self.cache_dir = cache_dir

    def register(self, name: str, path: Path) -> str:
        """Store a model file; returns its object key."""
        _check_name(name)
        if path.suffix not in MODEL_FORMATS:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"Model files must be one of {', '.join(MODEL_FORMATS)}; got {path.name!r}",
            )
        self.objects.delete_prefix(f"{self.prefix}/{name}/")
        key = f"{self.prefix}/{name}/model{path.suffix}"
        self.objects.put_file(key, path)
        return key

    def names(self) -> list[str]:
        return sorted({info.key.split("/")[-2] for info in self.objects.list(f"{self.prefix}/")})

    def resolve(self, name: str) -> Path:
        _check_name(name)
        for suffix in MODEL_FORMATS:
            key = f"{self.prefix}/{name}/model{suffix}"
            info = self.objects.stat(key)
            if info is None:
                continue
            local = self.cache_dir / name / f"model{suffix}"
            if not local.is_file() or local.stat().st_size != info.size:
                local.parent.mkdir(parents=True, exist_ok=True)
                with (
                    self.objects.open_read(key) as source,
                    local.with_suffix(".part").open("wb") as out,
                ):
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                local.with_suffix(".part").replace(local)
            return local
        raise MixpeekError(ErrorCode.NOT_FOUND, f"Namespace model {name!r} not found")


def load_model_file(path: Path) -> Any:
    """Load a ``.safetensors`` (tensors dict) or ``.onnx`` (InferenceSession) file, or a
    sentence-transformers directory (a ``SentenceTransformer``)."""
    if path.is_dir():
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path), local_files_only=True)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            from safetensors.numpy import load_file  # type: ignore[assignment]
        return load_file(str(path))
    if path.suffix == ".onnx":
        import onnxruntime

        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raise MixpeekError(ErrorCode.INVALID_REQUEST, f"Unsupported model format {path.suffix!r}")
