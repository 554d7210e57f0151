"""``load_namespace_model``: weights a namespace stored once, loaded by name.

Also importable as ``shared.models.loader.load_namespace_model`` (the hosted product's path).
The plugin's host fetches the model (by presigned URL, verified and cached) and loads it: a
``.safetensors`` file as a dict of tensors, an ``.onnx`` file as an
``onnxruntime.InferenceSession``.
"""

from __future__ import annotations

from typing import Any

from mixpeek_orchestration.sdk._context import current_context

__all__ = ["load_namespace_model"]


def load_namespace_model(name: str) -> Any:
    """Load a model the namespace stored under ``name``.

    Args:
        name: the model's name in the namespace registry.

    Returns:
        A dict of tensors for ``.safetensors`` files, an ``onnxruntime.InferenceSession`` for
        ``.onnx`` files.

    Example:
        >>> weights = load_namespace_model("sentiment_head")
        >>> logits = features @ weights["weight"].T + weights["bias"]
    """
    return current_context().host.load_model(name)
