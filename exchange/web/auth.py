"""Authentication for the web app: a bearer token in `Authorization`, or the HttpOnly cookie the
sign-in page sets (so browsers can use the pages without scripts).

The cookie is `SameSite=Lax` (a cross-site form cannot submit with it) and `Secure` whenever the
request came over HTTPS. That alone does not stop a same-site page or a forged sign-in, so every
state-changing browser request must also come from govex's own origin (`exchange.web.origin`).
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

import records
from exchange.store import InvalidToken, Principal, authenticate

COOKIE = "govex_token"
COOKIE_MAX_AGE = 12 * 3600  # seconds: a working day, then sign in again

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `govex token create --department D --role R`.",
)


class PageAuthError(Exception):
    """A page was asked for without a valid token: answer 401 with the sign-in form."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PageError(Exception):
    """A page cannot be shown: 403 or 404 with a sentence saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def store_of(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.store
    return engine


def _check(request: Request, token: str) -> Principal:
    with store_of(request).begin() as conn:

        def audit(principal: Principal) -> None:
            # Audit a token's use with the same throttle as last_used_at (once a minute per
            # token, tokens.LAST_USED_RESOLUTION), in the same transaction; auditing every
            # request would turn reads into writes.
            records.append_audit(
                conn, kind="token_use", subject=principal.token_id,
                actor=f"{principal.department}/{principal.role}",
                detail={"method": request.method, "path": request.url.path},
            )

        return authenticate(conn, token, on_recorded=audit)


def token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token if an Authorization header was sent (an empty string when it is not a
    Bearer one, which then fails as a bad token), else the sign-in cookie."""
    if credentials is not None:
        return credentials.credentials
    if request.headers.get("authorization"):
        return ""
    return request.cookies.get(COOKIE)


def api_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = token_of(request, credentials)
    if not token:
        raise HTTPException(
            status_code=401,
            detail="authentication required: send 'Authorization: Bearer <token>' with a "
            "token from `govex token create`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return _check(request, token)
    except InvalidToken as error:
        raise HTTPException(
            status_code=401,
            detail=f"invalid token ({error}): issue a new one with `govex token create`",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from error


def page_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = token_of(request, credentials)
    if not token:
        msg = "Please sign in with your govex token. 请使用令牌登录。"
        raise PageAuthError(msg)
    try:
        return _check(request, token)
    except InvalidToken as error:
        msg = "Your token is not valid (unknown or revoked); sign in with a current one. 令牌无效。"
        raise PageAuthError(msg) from error


ApiPrincipal = Annotated[Principal, Depends(api_principal)]
PagePrincipal = Annotated[Principal, Depends(page_principal)]
