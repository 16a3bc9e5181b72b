"""Errors of the model runtime: one readable message each, safe to store as a run summary."""

from __future__ import annotations

from typing import Literal

ModelErrorKind = Literal[
    "config",  # the model name or provider setup is wrong; retrying will not help
    "auth",  # the provider refused our credentials (401/403)
    "rate_limit",  # 429 after the client's own retries
    "timeout",  # no answer within the provider's timeout, on every attempt
    "connection",  # the provider could not be reached
    "request",  # the provider rejected the request (other 4xx)
    "server",  # the provider failed (5xx) after the client's own retries
    "response",  # the provider answered with something we cannot use
]


class ModelError(Exception):
    """A model call or model lookup failed; ``message`` is a one-line, secret-free summary.

    Invariant: the message never carries a stack trace or an API key, so the flow can store
    it verbatim as the execution summary.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ModelErrorKind,
        model: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ModelErrorKind = kind
        self.model = model
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class ProviderConfigError(ValueError):
    """The operator's provider configuration is invalid; raised at start-up, not per run."""
