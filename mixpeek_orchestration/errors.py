"""One error taxonomy for the platform.

Each :class:`ErrorCode` carries a stable string value (sent to clients as ``code``), the HTTP
status the API answers with, and whether retrying can help. Domain code raises
:class:`MixpeekError`; the API has a single handler that turns it into
``{"detail": ..., "code": ..., **fields}``.

Definition-time errors (a bad plugin, bad settings, bad request) are never retryable;
runtime errors (an unreachable component, a failed row) may be.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(Enum):
    """Stable error codes: ``(value, http_status, retryable)``."""

    INVALID_SETTINGS = ("invalid_settings", 500, False)
    INVALID_REQUEST = ("invalid_request", 422, False)
    INVALID_OBJECT_KEY = ("invalid_object_key", 400, False)
    NOT_FOUND = ("not_found", 404, False)
    CONFLICT = ("conflict", 409, False)
    UNAUTHORIZED = ("unauthorized", 401, False)
    PERMISSION_DENIED = ("permission_denied", 403, False)
    BUDGET_EXCEEDED = ("budget_exceeded", 402, False)
    SIGNATURE_INVALID = ("signature_invalid", 403, False)
    SIGNATURE_EXPIRED = ("signature_expired", 403, False)
    PAYLOAD_TOO_LARGE = ("payload_too_large", 413, False)
    ARCHIVE_REJECTED = ("archive_rejected", 422, False)
    UNSUPPORTED_OPERATION = ("unsupported_operation", 400, False)
    INVALID_MANIFEST = ("invalid_manifest", 422, False)
    INVALID_PARAMETERS = ("invalid_parameters", 422, False)
    INVALID_PLUGIN = ("invalid_plugin", 422, False)
    SECURITY_SCAN_FAILED = ("security_scan_failed", 422, False)
    PLUGIN_RUNTIME_ERROR = ("plugin_runtime_error", 500, False)
    OUTPUT_INVALID = ("output_invalid", 422, False)
    BLOCKED_BY_GUARD = ("blocked_by_guard", 403, False)
    BLOCKED_BY_SANDBOX = ("blocked_by_sandbox", 403, False)
    PLUGIN_HOST_CRASHED = ("plugin_host_crashed", 502, True)
    PLUGIN_TIMEOUT = ("plugin_timeout", 504, True)
    TOOL_UNAVAILABLE = ("tool_unavailable", 400, False)
    NOT_DEPLOYED = ("not_deployed", 409, False)
    REALTIME_ERROR = ("realtime_error", 502, True)
    COMPONENT_UNAVAILABLE = ("component_unavailable", 503, True)
    STACK_ERROR = ("stack_error", 500, False)
    INTERNAL_ERROR = ("internal_error", 500, True)

    def __init__(self, value: str, http_status: int, retryable: bool) -> None:
        self._value_ = value  # type: ignore[assignment]  # the code's stable string
        self.http_status = http_status
        self.retryable = retryable


ERROR_ENVELOPE_KEYS = frozenset({"success", "status", "error", "detail", "code"})
"""The keys of the API's error body itself (``api/errors.py``); structured fields sit beside them
and never overwrite one."""


class MixpeekError(Exception):
    """An error with a stable code and structured fields for the client.

    Args:
        code: the error's :class:`ErrorCode`.
        detail: a human-readable sentence naming what was wrong.
        **fields: structured extras sent alongside ``detail`` (``field``, ``violations``, ...).

    Example:
        >>> raise MixpeekError(ErrorCode.NOT_FOUND, "Plugin 'x_1_0_0' not found", plugin_id="x_1_0_0")
    """

    def __init__(self, code: ErrorCode, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.fields = fields

    @property
    def http_status(self) -> int:
        return self.code.http_status

    def to_response(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code.value, **self.fields}
