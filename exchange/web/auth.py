"""Authentication for the web app: a bearer token in `Authorization`, or the HttpOnly cookie the
sign-in page sets (so browsers can use the pages without scripts).

The cookie holds a sign-in session id (`exchange.store.tokens.start_session`), never the token:
a stolen cookie dies with its session (12 hours at most, or sign-out, or the token's revocation
or expiry), and the store keeps only the id's SHA-256. The cookie is `SameSite=Strict` (no
other site's page, link or form sends it), `Secure` whenever the request came over HTTPS, and
scoped to the app's path (`/govex` inside Airflow's API server). That alone does not stop a
same-site page or a forged sign-in, so every state-changing browser request must also come
from govex's own origin (`exchange.web.origin`).

Each token's use is written to the audit log (`token_use`, at most once a minute per token)
with the route and its resource, never a record key: see `used_path`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

import records
from exchange.store import InvalidToken, Principal
from exchange.store import tokens as store_tokens

COOKIE = "govex_session"
#: Before sessions the cookie held the token itself; sign-in and sign-out delete it.
LEGACY_COOKIE = "govex_token"
#: Path parameters that name a record (citizen ID numbers, company codes): never written to
#: the audit log. Every other path parameter (resource code, run id, dispute id) is.
SECRET_PARAMS = frozenset({"key"})
REDACTED = "{key}"

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
    """A page cannot be shown: 403, 404 or 429 with a sentence saying why."""

    def __init__(self, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def store_of(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.store
    return engine


def used_path(request: Request) -> str:
    """The route the request matched, its path parameters filled in except record keys
    (`/api/v1/trace/PSB-RES-001/{key}`): what the audit log may say about a request."""
    route = request.scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):  # not routed: say nothing of the path's contents
        return "?"
    filled = template
    for name, value in request.path_params.items():
        if name not in SECRET_PARAMS:
            filled = filled.replace("{" + name + "}", str(value))
    return filled


def _auditor(request: Request, conn: sa.Connection) -> Callable[[Principal], None]:
    def audit(principal: Principal) -> None:
        # Audit a token's use with the same throttle as last_used_at (once a minute per
        # token, tokens.LAST_USED_RESOLUTION), in the same transaction; auditing every
        # request would turn reads into writes.
        records.append_audit(
            conn, kind="token_use", subject=principal.token_id,
            actor=f"{principal.department}/{principal.role}",
            detail={"method": request.method, "path": used_path(request)},
        )

    return audit


def check_token(request: Request, token: str) -> Principal:
    with store_of(request).begin() as conn:
        return store_tokens.authenticate(conn, token, on_recorded=_auditor(request, conn))


def check_session(request: Request, session_id: str) -> Principal:
    with store_of(request).begin() as conn:
        return store_tokens.session_principal(conn, session_id,
                                              on_recorded=_auditor(request, conn))


def start_session(request: Request, token: str) -> store_tokens.Session:
    """Sign in: a new session for `token` (InvalidToken when the token is not valid)."""
    with store_of(request).begin() as conn:
        return store_tokens.start_session(conn, token, on_recorded=_auditor(request, conn))


def end_session(request: Request) -> None:
    """Sign out: the session in the request's cookie, if any, is deleted."""
    session_id = request.cookies.get(COOKIE)
    if session_id:
        with store_of(request).begin() as conn:
            store_tokens.end_session(conn, session_id)


def _credentials(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> tuple[str, str] | None:
    """("token", bearer token) if an Authorization header was sent (an empty token when it is
    not a Bearer one, which then fails as a bad token), else ("session", the cookie's id), else
    None."""
    if credentials is not None:
        return "token", credentials.credentials
    if request.headers.get("authorization"):
        return "token", ""
    session_id = request.cookies.get(COOKIE)
    return ("session", session_id) if session_id else None


def _principal(request: Request, kind: str, secret: str) -> Principal:
    if kind == "session":
        return check_session(request, secret)
    if not secret:
        msg = "not a govex token"
        raise InvalidToken(msg)
    return check_token(request, secret)


def api_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    sent = _credentials(request, credentials)
    if sent is None:
        raise HTTPException(
            status_code=401,
            detail="authentication required: send 'Authorization: Bearer <token>' with a "
            "token from `govex token create`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    kind, secret = sent
    try:
        return _principal(request, kind, secret)
    except InvalidToken as error:
        advice = ("sign in again with a current token" if kind == "session"
                  else "issue a new one with `govex token create`")
        raise HTTPException(
            status_code=401,
            detail=f"invalid {kind} ({error}): {advice}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from error


def page_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    sent = _credentials(request, credentials)
    if sent is None:
        msg = "Please sign in with your govex token. 请使用令牌登录。"
        raise PageAuthError(msg)
    kind, secret = sent
    try:
        return _principal(request, kind, secret)
    except InvalidToken as error:
        if kind == "session":
            msg = f"Please sign in again with a current token: {error}. 请重新登录。"
        else:
            msg = f"Your token is not valid ({error}); sign in with a current one. 令牌无效。"
        raise PageAuthError(msg) from error


ApiPrincipal = Annotated[Principal, Depends(api_principal)]
PagePrincipal = Annotated[Principal, Depends(page_principal)]
