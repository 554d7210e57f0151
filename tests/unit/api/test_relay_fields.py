"""The API's fields added to a handler's answer without decoding it."""

from __future__ import annotations

import json

import pytest

from mixpeek_orchestration.serve.relay import with_fields


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            b'{"embedding": [0.5, 1.0]}',
            {"embedding": [0.5, 1.0], "plugin_id": "p", "latency_ms": 1.5},
        ),
        (b"{}", {"plugin_id": "p", "latency_ms": 1.5}),
        (b'  { "a": {"b": "}"} }\n', {"a": {"b": "}"}, "plugin_id": "p", "latency_ms": 1.5}),
        # the handler's own plugin_id loses, as in {**answer, **fields}
        (b'{"plugin_id": "theirs"}', {"plugin_id": "p", "latency_ms": 1.5}),
    ],
)
def test_fields_are_added_at_the_end_of_the_object(answer: bytes, expected: dict) -> None:
    combined = with_fields(answer, {"plugin_id": "p", "latency_ms": 1.5})
    assert json.loads(combined) == expected


def test_a_handler_that_answers_not_found_is_not_taken_for_a_missing_deployment() -> None:
    from mixpeek_orchestration.errors import ErrorCode
    from mixpeek_orchestration.serve.relay import _error

    serve_404 = _error("/inference/x", 404, b"Path '/inference/x' not found.")
    assert serve_404.code is ErrorCode.NOT_DEPLOYED
    handler_404 = _error(
        "/inference/x", 404, b'{"detail": "secret \'k\' is not set", "code": "not_found"}'
    )
    assert handler_404.code is ErrorCode.NOT_FOUND and "secret 'k'" in handler_404.detail
