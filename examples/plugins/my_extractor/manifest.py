from pydantic import BaseModel, Field
from typing import List

class MyInput(BaseModel):
    text: str = Field(..., description="Input text")

class MyOutput(BaseModel):
    embedding: List[float] = Field(..., description="384-dim embedding")
    label: str

class MyParams(BaseModel):
    """User-configurable parameters for collections."""
    threshold: float = Field(default=0.5, ge=0, le=1)

metadata = {
    "feature_extractor_name": "my_extractor",
    "version": "1.0.0",
    "description": "My custom extractor",
    "category": "text",
}

input_schema = MyInput
output_schema = MyOutput
parameter_schema = MyParams
supported_input_types = ["text"]

# Define output features for vector indexing
features = [
    {
        "feature_name": "my_extractor_embedding",
        "feature_type": "embedding",
        "embedding_dim": 384,
        "distance_metric": "cosine",
    },
]
