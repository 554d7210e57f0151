"""llm_tagger: labels text with an LLM (``sdk.llm.chat``) and embeds it (``sdk.llm.embed``).

The platform makes the calls: with the organisation's provider key, through the egress proxy,
metered per namespace, plugin and collection (``GET /v1/organizations/usage``).
"""

from typing import List

from pydantic import BaseModel, Field


class TagInput(BaseModel):
    text: str


class TagOutput(BaseModel):
    llm_tagger_embedding: List[float]
    sentiment: str = Field(..., pattern="^(positive|negative)$")
    llm_cost_usd: float


class TagParams(BaseModel):
    chat_model: str = Field(default="gpt-4o-mini", description="Model that labels the text")
    embedding_model: str = Field(default="text-embedding-3-small", description="Embedding model")
    provider: str | None = Field(default=None, description="A configured provider, or the default")


metadata = {
    "feature_extractor_name": "llm_tagger",
    "version": "1.0.0",
    "description": "Sentiment labels and embeddings from an LLM provider",
    "category": "text",
}

input_schema = TagInput
output_schema = TagOutput
parameter_schema = TagParams
supported_input_types = ["text"]

features = [
    {
        "feature_name": "llm_tagger_embedding",
        "feature_type": "embedding",
        "embedding_dim": 8,
        "distance_metric": "cosine",
    },
    {"feature_name": "sentiment", "feature_type": "classification"},
]
