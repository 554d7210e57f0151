"""A handler's answer passed on under a key, beside the API's fields, without decoding it."""

from __future__ import annotations

import json

import pytest

from mixpeek_orchestration.serve.relay import wrapped


@pytest.mark.parametrize(
    "answer",
    [b'{"embedding": [0.5, 1.0]}', b"{}", b'  { "a": {"b": "}"} }\n', b'{"plugin_id": "theirs"}'],
)
def test_an_answer_is_wrapped_untouched_beside_the_fields(answer: bytes) -> None:
    combined = wrapped(answer, "data", {"plugin_id": "p", "latency_ms": 1.5})
    assert json.loads(combined) == {
        "data": json.loads(answer), "plugin_id": "p", "latency_ms": 1.5,
    }  # fmt: skip
    assert json.loads(wrapped(answer, "data", {})) == {"data": json.loads(answer)}


def test_a_handler_that_answers_not_found_is_not_taken_for_a_missing_deployment() -> None:
    from mixpeek_orchestration.errors import ErrorCode
    from mixpeek_orchestration.serve.relay import _error

    serve_404 = _error("/inference/x", 404, b"Path '/inference/x' not found.")
    assert serve_404.code is ErrorCode.NOT_DEPLOYED
    handler_404 = _error(
        "/inference/x", 404, b'{"detail": "secret \'k\' is not set", "code": "not_found"}'
    )
    assert handler_404.code is ErrorCode.NOT_FOUND and "secret 'k'" in handler_404.detail
