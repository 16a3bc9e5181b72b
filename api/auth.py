"""Bearer-token authentication: every API request is scoped to the token's account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware

from api.accounts.service import AccountService
from api.errors import NotAuthenticated


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account a valid token belongs to."""

    account_id: str


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Resolves ``Authorization: Bearer <token>``; anything else is a 401."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        """Look the token up (by hash) and attach its account to the request."""
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Authentication required: send Authorization: Bearer <token>")
        accounts: AccountService = connection.app.state.accounts
        account_id = await accounts.authenticate(token.strip())
        if account_id is None:
            raise NotAuthenticated("Invalid token")
        return AuthenticationResult(user=Principal(account_id), auth=token)


def auth_middleware() -> DefineMiddleware:
    """The middleware, leaving the OpenAPI docs and health check public."""
    return DefineMiddleware(BearerAuthMiddleware, exclude=["^/schema", "^/health"])


async def provide_account_id(request: Request[Principal, str, Any]) -> str:
    """Dependency: the calling account's id."""
    principal: Principal = request.user
    return principal.account_id
