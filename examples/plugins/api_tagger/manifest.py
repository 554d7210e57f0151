"""api_tagger: labels text by calling an external HTTP API (an ``API`` resource step)."""

from pydantic import BaseModel, Field


class TagInput(BaseModel):
    text: str


class TagOutput(BaseModel):
    sentiment: str = Field(..., pattern="^(positive|negative|neutral)$")
    sentiment_score: float


class TagParams(BaseModel):
    endpoint: str = Field(default="http://127.0.0.1:8765/classify", description="Classifier URL")
    max_concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight at most")


metadata = {
    "feature_extractor_name": "api_tagger",
    "version": "1.0.0",
    "description": "Sentiment labels from an external classification API",
    "category": "text",
}

input_schema = TagInput
output_schema = TagOutput
parameter_schema = TagParams
supported_input_types = ["text"]

features = [
    {"feature_name": "sentiment", "feature_type": "classification"},
]
