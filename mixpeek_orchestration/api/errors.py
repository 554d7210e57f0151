"""Maps every error to one body both worlds read (SPEC §12 and the hosted API):

``{"success": false, "status": 404, "error": {"message", "type", "code", "details"},
"detail": str, "code": str, ...fields}``

The official client parses ``success`` / ``status`` / ``error`` (its ``ErrorResponse``); this
project's CLI and client read ``detail``, ``code`` and the structured fields beside them.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mixpeek_orchestration.errors import ERROR_ENVELOPE_KEYS, MixpeekError

logger = logging.getLogger(__name__)

_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    402: "PaymentRequiredError",
    403: "ForbiddenError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    422: "ValidationError",
    429: "RateLimitError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}


def error_type(status: int) -> str:
    """The hosted API's machine-readable error type for an HTTP status."""
    if status in _TYPES:
        return _TYPES[status]
    try:
        return "".join(w.capitalize() for w in HTTPStatus(status).phrase.split()) + "Error"
    except ValueError:
        return "ServerError" if status >= 500 else "ClientError"


def error_body(status: int, detail: str, code: str, fields: dict[str, Any] | None = None) -> dict:
    """The error body for ``status``: the hosted envelope with this project's keys beside it."""
    fields = {k: v for k, v in (fields or {}).items() if k not in ERROR_ENVELOPE_KEYS}
    return {
        "success": False,
        "status": status,
        "error": {
            "message": detail,
            "type": error_type(status),
            "code": code,
            "details": fields or None,
        },
        "detail": detail,
        "code": code,
        **fields,
    }


def error_response(
    status: int,
    detail: str,
    code: str,
    fields: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, detail, code, fields), status, headers=headers)


def _location(loc: tuple[object, ...] | list[object]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MixpeekError)
    async def _mixpeek_error(_: Request, exc: MixpeekError) -> JSONResponse:
        return error_response(exc.http_status, exc.detail, str(exc.code.value), exc.fields)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _location(e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        fields: dict[str, Any] = {"errors": errors}
        if errors:  # the first offending field, as a domain refusal names its one
            fields["field"] = errors[0]["field"]
        return error_response(422, f"Invalid request: {detail}", "invalid_request", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        documented = allowed_methods(app, request.url.path) if exc.status_code == 405 else []
        if documented:  # every method of the path, not only those of the first route
            headers["Allow"] = ", ".join(documented)
        return error_response(exc.status_code, str(exc.detail), code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"Internal error: {type(exc).__name__}", "internal_error")


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the API documents for ``path``: those of the most specific documented path
    matching it (``/v1/buckets/list`` rather than ``/v1/buckets/{bucket_id}``), where
    Starlette's 405 names only those of the first route whose path matched."""
    table: list[tuple[re.Pattern[str], int, list[str]]] | None = getattr(
        app.state, "allow_table", None
    )
    if table is None:
        table = []
        for template, operations in app.openapi()["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            methods = sorted(m.upper() for m in operations)
            table.append((re.compile(f"^{pattern}$"), literal, methods))
        app.state.allow_table = table
    matches = [(literal, methods) for pattern, literal, methods in table if pattern.match(path)]
    if not matches:
        return []
    return max(matches)[1]
