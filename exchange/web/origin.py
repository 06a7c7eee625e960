"""Cross-site request forgery: state-changing browser requests must come from govex's own pages.

The sign-in cookie is `SameSite=Lax`, which keeps it off cross-site POSTs but not off
same-site ones (a sibling host under the same registrable domain), and does nothing for a
forged sign-in (login CSRF: a foreign page signs the victim in as the attacker). So every
POST, PUT, PATCH and DELETE that

- carries the sign-in cookie, or
- is a form (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`: what a
  page on another site can send without asking) and has no `Authorization` header,

must name its origin, and it must be this site's: the `Origin` header, or when a browser
leaves it out the origin of the `Referer`, equal to `scheme://host[:port]` of the request as it
arrived (its scheme, and the `Host` header it was sent with, so the check holds under a mount
point such as `/govex` in Airflow's API server and behind a proxy that keeps `Host`). Default
ports are dropped before comparing. Anything else is refused with 403 before any route runs.

Bearer-token calls without the cookie are not browser sessions (a foreign page cannot set
`Authorization`) and pass unchecked. Behind a proxy that terminates TLS, run the server with
its proxy headers trusted (uvicorn `--proxy-headers`) so the request's scheme is `https`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse

from exchange.web.auth import COOKIE

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The content types a page on another site can POST without a CORS preflight.
FORM_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of `url` in lower case without a default port; None when it
    has none (`null`, a relative URL, a bad port)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origin(scope: Scope, headers: Headers) -> str | None:
    """The origin the request was sent to: its scheme and the Host it came with."""
    scheme = str(scope.get("scheme", "http"))
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        if not server:
            return None
        host = f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])
    return origin_of(f"{scheme}://{host}")


def needs_check(scope: Scope, headers: Headers) -> bool:
    """A state-changing request a browser may have been tricked into sending."""
    if scope["type"] != "http" or str(scope["method"]).upper() not in UNSAFE_METHODS:
        return False
    if COOKIE in cookie_parser(headers.get("cookie", "")):
        return True
    if headers.get("authorization"):
        return False
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type in FORM_TYPES


def refusal(scope: Scope, headers: Headers) -> str | None:
    """Why the request must be refused (one sentence), or None when it may go on."""
    if not needs_check(scope, headers):
        return None
    expected = own_origin(scope, headers)
    sent = headers.get("origin")
    named = "Origin"
    if sent is None:
        sent, named = headers.get("referer"), "Referer"
    if sent is None:
        return (
            "refused: this form or signed-in request carries neither an Origin nor a Referer "
            f"header, so it cannot be told from one forged by another site (expected "
            f"{expected}); nothing was changed"
        )
    got = origin_of(sent)
    if got is None or expected is None or got != expected:
        return (
            f"refused: the request came from {got or repr(sent[:100])} ({named} header), not "
            f"from this site ({expected}); forms must be sent from govex's own pages, and "
            "nothing was changed"
        )
    return None


class SameOrigin:
    """ASGI middleware: 403 for state-changing browser requests from another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = refusal(scope, Headers(scope=scope))
            if reason is not None:
                await JSONResponse({"detail": reason}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
