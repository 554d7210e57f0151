from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sdk._manifest import (
    ServeConfig,
    feature_uri,
    manifest_from_namespace,
    normalize_version,
    plugin_id_for,
)


class In(BaseModel):
    text: str


class Out(BaseModel):
    embedding: list[float]


class Params(BaseModel):
    threshold: float = 0.5


def namespace(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metadata": {
            "feature_extractor_name": "my_extractor",
            "version": "1.0.0",
            "description": "d",
            "category": "text",
        },
        "input_schema": In,
        "output_schema": Out,
        "parameter_schema": Params,
        "supported_input_types": ["text"],
        "features": [
            {
                "feature_name": "my_extractor_embedding",
                "feature_type": "embedding",
                "embedding_dim": 384,
                "distance_metric": "cosine",
            }
        ],
    }
    base.update(overrides)
    return base


def test_valid_manifest_and_derived_ids() -> None:
    manifest = manifest_from_namespace(namespace())
    assert manifest.plugin_id == "my_extractor_1_0_0"
    assert manifest.feature_uris == ["mixpeek://my_extractor@1.0.0/my_extractor_embedding"]
    assert manifest.describe()["parameter_schema"]["properties"]["threshold"]["default"] == 0.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.0.0", "1.0.0"),
        ("v1", "1.0.0"),
        ("1.0", "1.0.0"),
        ("v2.3", "2.3.0"),
        ("10.20.30", "10.20.30"),
    ],
)
def test_versions_normalise_to_semver(raw: str, expected: str) -> None:
    assert normalize_version(raw) == expected


@pytest.mark.parametrize("raw", ["", "1.0.0.0", "latest", "01.0.0", "1.-1.0", "v", "1.0.0-beta"])
def test_bad_versions_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="not semver"):
        normalize_version(raw)


def test_ids_and_uris() -> None:
    assert plugin_id_for("x", "v1") == "x_1_0_0"
    assert feature_uri("x", "1.2", "f") == "mixpeek://x@1.2.0/f"


def _feature(**changes: Any) -> dict[str, Any]:
    feature = {
        "feature_name": "emb",
        "feature_type": "embedding",
        "embedding_dim": 8,
        "distance_metric": "cosine",
    }
    feature.update(changes)
    return feature


INVALID = [
    ("misspelled feature key", {"features": [{**_feature(), "embeding_dim": 8}]}, "embeding_dim"),
    ("zero dim", {"features": [_feature(embedding_dim=0)]}, "embedding_dim"),
    (
        "missing dim",
        {"features": [{"feature_name": "emb", "feature_type": "embedding"}]},
        "embedding_dim",
    ),
    ("bad metric", {"features": [_feature(distance_metric="manhattan")]}, "distance_metric"),
    ("bad feature type", {"features": [_feature(feature_type="vector")]}, "feature_type"),
    (
        "dim on a label",
        {"features": [{"feature_name": "l", "feature_type": "classification", "embedding_dim": 3}]},
        "embedding_dim",
    ),
    ("no features", {"features": []}, "features"),
    ("duplicate features", {"features": [_feature(), _feature()]}, "duplicate feature_name"),
    (
        "bad name",
        {
            "metadata": {
                "feature_extractor_name": "My-Extractor",
                "version": "1.0.0",
                "category": "text",
            }
        },
        "feature_extractor_name",
    ),
    (
        "bad version",
        {"metadata": {"feature_extractor_name": "x", "version": "latest", "category": "text"}},
        "version",
    ),
    (
        "bad category",
        {"metadata": {"feature_extractor_name": "x", "version": "1", "category": "sound"}},
        "category",
    ),
    (
        "unknown metadata key",
        {
            "metadata": {
                "feature_extractor_name": "x",
                "version": "1",
                "category": "text",
                "colour": 1,
            }
        },
        "colour",
    ),
    ("schema not pydantic", {"input_schema": dict}, "input_schema"),
    ("bad input type", {"supported_input_types": ["hologram"]}, "supported_input_types"),
    ("bad container image", {"container_image": "Not An Image!"}, "container_image"),
    (
        "serve min above max",
        {"serve_config": {"min_replicas": 3, "max_replicas": 1}},
        "max_replicas (1)",
    ),
    ("unknown serve key", {"serve_config": {"replicas": 2}}, "replicas"),
    ("negative batch", {"compute_profile": {"batch_size": -1}}, "batch_size"),
]


@pytest.mark.parametrize(("case", "overrides", "named"), INVALID, ids=[c for c, _, _ in INVALID])
def test_invalid_manifests_name_the_problem(
    case: str, overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(MixpeekError) as info:
        manifest_from_namespace(namespace(**overrides))
    assert info.value.code is ErrorCode.INVALID_MANIFEST
    assert named in info.value.detail
    assert info.value.fields["errors"]


def test_missing_required_names() -> None:
    ns = namespace()
    del ns["features"], ns["output_schema"]
    with pytest.raises(MixpeekError) as info:
        manifest_from_namespace(ns)
    fields = {e["field"] for e in info.value.fields["errors"]}
    assert fields == {"features", "output_schema"}


def test_parameters_are_validated_with_defaults() -> None:
    manifest = manifest_from_namespace(namespace())
    assert manifest.validate_parameters(None) == {"threshold": 0.5}
    assert manifest.validate_parameters({"threshold": 0.9}) == {"threshold": 0.9}
    with pytest.raises(MixpeekError) as info:
        manifest.validate_parameters({"threshold": "high"})
    assert info.value.code is ErrorCode.INVALID_PARAMETERS
    assert info.value.fields["errors"][0]["field"] == "threshold"


def test_serve_config_messages_quote_values() -> None:
    with pytest.raises(ValueError, match=r"num_replicas \(5\) must lie between"):
        ServeConfig(num_replicas=5, min_replicas=1, max_replicas=2)


def test_declared_secrets_are_part_of_the_description() -> None:
    manifest = manifest_from_namespace(namespace(secrets=["openai_api_key", "hf.token"]))
    assert manifest.describe()["secrets"] == ["openai_api_key", "hf.token"]
    assert manifest_from_namespace(namespace()).describe()["secrets"] == []


def test_a_secret_name_that_cannot_exist_is_refused_at_confirm() -> None:
    with pytest.raises(MixpeekError) as info:
        manifest_from_namespace(namespace(secrets=["not a name"]))
    assert info.value.code is ErrorCode.INVALID_MANIFEST and "secrets" in info.value.detail
