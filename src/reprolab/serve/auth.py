"""Bearer-token auth: every route but /health and /ready (and /metrics when made public)
needs `Authorization: Bearer <token>`; the comparison takes constant time."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reprolab.serve.errors import ApiError

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer(token: str | None) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency; with no token configured it lets everything through (the
    service then listens on loopback only, see ServeSettings.check)."""
    scheme = HTTPBearer(auto_error=False, description="REPROLAB_API_TOKEN of the service")
    expected = None if token is None else token.encode()

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Depends(scheme),  # noqa: B008
    ) -> None:
        if expected is None:
            return
        if credentials is None:
            raise ApiError(
                401,
                "Authorization: missing bearer token (Authorization: Bearer <token>)",
                "Authorization",
                CHALLENGE,
            )
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise ApiError(403, "Authorization: the bearer token is not valid", "Authorization")

    return check
