"""Domain errors that carry their HTTP status and contract code.

Services raise these; one exception mapper (``api.error_handlers``) turns every failure
into the contract's ``{"message", "code"}`` body.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base of every error the API answers on purpose."""

    status_code = 500
    code = "GENERIC_ERROR"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    """400: the request is malformed or a value is out of range."""

    status_code = 400
    code = "BAD_REQUEST"


class NotAuthenticated(ApiError):
    """401: no token, or an unknown one."""

    status_code = 401
    code = "NOT_AUTHENTICATED"


class NotFound(ApiError):
    """404: unknown id, or one of another account (never reveal which)."""

    status_code = 404
    code = "NOT_FOUND"


class MethodNotAllowed(ApiError):
    """405: wrong HTTP method."""

    status_code = 405
    code = "METHOD_NOT_ALLOWED"


class LimitsReached(ApiError):
    """429: an account quota or rate limit; carries ``Retry-After``."""

    status_code = 429
    code = "LIMITS_REACHED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(ApiError):
    """503: a dependency is down and the request cannot be honoured safely."""

    status_code = 503
    code = "SERVICE_UNAVAILABLE"
