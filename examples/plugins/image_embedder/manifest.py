"""image_embedder: the built-in EfficientNet-Lite0 embedding plus each image's dominant colour."""

from pydantic import BaseModel, Field


class ImageInput(BaseModel):
    url: str = Field(..., description="URL or path of the image")


class ImageOutput(BaseModel):
    embedding: list[float] = Field(..., description="1280-d visual embedding")
    dominant_color: str = Field(..., pattern=r"^#[0-9a-f]{6}$")


class ImageParams(BaseModel):
    batch_size: int = Field(default=8, ge=1, le=64)


metadata = {
    "feature_extractor_name": "image_embedder",
    "version": "1.0.0",
    "description": "Visual-similarity embeddings (EfficientNet-Lite0) and dominant colours",
    "category": "image",
}

input_schema = ImageInput
output_schema = ImageOutput
parameter_schema = ImageParams
supported_input_types = ["image"]

features = [
    {
        "feature_name": "image_embedding",
        "feature_type": "embedding",
        "embedding_dim": 1280,
        "distance_metric": "cosine",
    },
]
