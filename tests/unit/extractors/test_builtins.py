"""Built-in extractors produce real, meaningful embeddings offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.extractors import BUILTIN_EXTRACTORS, get_builtin


def test_registry_lists_builtins_by_name() -> None:
    assert set(BUILTIN_EXTRACTORS) >= {"text_extractor", "image_extractor"}
    text = get_builtin("text_extractor")
    assert text.feature_uris == ["mixpeek://text_extractor@1.0.0/text_extractor_embedding"]
    assert text.service_class.__name__ == "TextEmbeddingBatch"
    with pytest.raises(MixpeekError, match="built-ins"):
        get_builtin("nope")


def test_text_extractor_is_semantic() -> None:
    from mixpeek_orchestration.extractors.text import TextEmbeddingBatch, TextEmbeddingHandler

    batch = pd.DataFrame(
        {
            "text": [
                "a dog runs in the park",
                "a puppy playing outside",
                "stock markets fell sharply",
            ]
        }
    )
    out = TextEmbeddingBatch()(batch)
    vectors = np.stack(out["text_extractor_embedding"].to_list())
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    query = np.array(TextEmbeddingHandler().predict({"text": "dogs outdoors"})["embedding"])
    assert int(np.argmax(vectors @ query)) in (0, 1)


def _image(path: Path, colour: tuple[int, int, int], shape: str, offset: int = 0) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (128, 128), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    box = (24 + offset, 24 + offset, 96 + offset, 96 + offset)
    (draw.rectangle if shape == "rect" else draw.ellipse)(box, fill=colour)
    image.save(path)
    return path


def test_image_extractor_captures_visual_similarity(tmp_path: Path) -> None:
    from mixpeek_orchestration.extractors.image import ImageEmbeddingBatch, ImageEmbeddingHandler

    paths = [
        _image(tmp_path / "a.png", (220, 30, 30), "rect"),
        _image(tmp_path / "b.png", (220, 30, 30), "rect", offset=8),
        _image(tmp_path / "c.png", (30, 60, 220), "ellipse"),
    ]
    out = ImageEmbeddingBatch()(pd.DataFrame({"data": [str(p) for p in paths]}))
    vectors = np.stack(out["image_extractor_embedding"].to_list())
    assert vectors.shape == (3, 1280) and np.all(np.isfinite(vectors))
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    answer = ImageEmbeddingHandler().predict({"path": str(paths[0])})
    assert np.allclose(answer["embedding"], vectors[0], atol=1e-4)


def test_image_extractor_on_a_real_photo() -> None:
    """sklearn ships two real photos; a pretrained net tells them apart from a flat image."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from mixpeek_orchestration.extractors.image import embed_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    flat = Image.new("RGB", (224, 224), (128, 128, 128))
    vectors = embed_images([*photos, flat])
    assert vectors.shape == (3, 1280)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
