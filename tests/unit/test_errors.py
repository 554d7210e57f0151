from __future__ import annotations

from mixpeek_orchestration.errors import ErrorCode, MixpeekError


def test_error_codes_carry_status_and_retryability() -> None:
    assert ErrorCode.NOT_FOUND.value == "not_found"
    assert ErrorCode.NOT_FOUND.http_status == 404
    assert ErrorCode.COMPONENT_UNAVAILABLE.retryable is True
    assert ErrorCode.INVALID_REQUEST.retryable is False
    values = [code.value for code in ErrorCode]
    assert len(values) == len(set(values))


def test_error_response_shape() -> None:
    error = MixpeekError(ErrorCode.PAYLOAD_TOO_LARGE, "too big", max_bytes=10)
    assert error.http_status == 413
    assert error.to_response() == {
        "detail": "too big",
        "code": "payload_too_large",
        "max_bytes": 10,
    }
