"""The one place every failure becomes the contract's ``{"message", "code"}`` body."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from api.errors import ApiError, BadRequest, MethodNotAllowed, NotFound
from api.wire import ErrorBody, describe_validation_error

log = logging.getLogger(__name__)


def _respond(error: ApiError) -> Response[ErrorBody]:
    return Response(
        ErrorBody(message=error.message, code=error.code),
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/json",
    )


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        key = item.get("key")
        source = item.get("source")
        if source == "body":
            if key == "data":
                # Litestar reports the whole body as "data": an empty or non-object body.
                text = describe_validation_error(message)
                return text if "is not allowed" in text else "Request body must be a JSON object"
            return describe_validation_error(message, str(key))
        if key:
            return describe_validation_error(message, str(key))
    return str(exc.detail) if exc.detail else "Invalid request"


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Map any exception to a contract error; 500 never carries internals."""
    if isinstance(exc, ApiError):
        return _respond(exc)
    if isinstance(exc, ValidationException):
        return _respond(BadRequest(_validation_message(exc)))
    if isinstance(exc, NotFoundException):
        return _respond(NotFound("Not found"))
    if isinstance(exc, MethodNotAllowedException):
        allowed = (exc.headers or {}).get("allow")
        error = MethodNotAllowed(f"Method {request.method} not allowed")
        if allowed:
            error.headers["Allow"] = allowed
        return _respond(error)
    if isinstance(exc, HTTPException) and exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = request.app.state.max_request_bytes
        return _respond(BadRequest(f"Request body must be at most {limit} bytes"))
    if isinstance(exc, HTTPException) and 400 <= exc.status_code < 500:
        detail = str(exc.detail)
        if detail.startswith("JSON is malformed"):
            detail = "Invalid JSON body"
        return _respond(BadRequest(detail))
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(
        ErrorBody(message="An unexpected error occurred", code="GENERIC_ERROR"),
        status_code=500,
        media_type="application/json",
    )
