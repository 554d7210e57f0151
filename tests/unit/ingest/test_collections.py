"""Collections: plugin parameters are checked against the version's schema when pinned."""

from __future__ import annotations

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.collections import check_parameters

SCHEMA = {
    "type": "object",
    "properties": {"threshold": {"type": "number", "minimum": 0, "maximum": 1}},
    "additionalProperties": False,
}


def test_parameters_within_the_schema_pass() -> None:
    check_parameters(SCHEMA, {"threshold": 0.3})
    check_parameters(SCHEMA, {})
    check_parameters(None, {})


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"threshold": 5}, "feature_extractor.parameters.threshold"),
        ({"threshold": "high"}, "feature_extractor.parameters.threshold"),
        ({"treshold": 0.2}, "feature_extractor.parameters"),
    ],
)
def test_parameters_outside_the_schema_are_refused_naming_the_field(
    parameters: dict[str, object], field: str
) -> None:
    with pytest.raises(MixpeekError) as caught:
        check_parameters(SCHEMA, parameters)
    assert caught.value.code is ErrorCode.INVALID_PARAMETERS
    assert caught.value.to_response()["field"] == field


def test_a_plugin_without_parameters_refuses_some() -> None:
    with pytest.raises(MixpeekError, match="takes no parameters"):
        check_parameters(None, {"x": 1})
