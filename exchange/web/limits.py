"""Request body size limits per route, enforced while the body streams in: 413 past the limit.

The limits, in bytes of request body as received (after any transfer encoding, before any
parsing):

- `LINEAGE_EVENT_MAX` (1 MiB), `POST /api/v1/lineage`: one RunEvent, with room for the schema
  and column-lineage facets of wide tables;
- `SIGNIN_FORM_MAX` (8 KiB), `POST /signin`: a token (49 characters) and a next path;
- `VERIFY_BODY_MAX` (1 MiB), `POST /api/v1/verify/{code}`: up to 1000 records of keys and
  values, about 200–400 KiB with names and addresses written as JSON escapes;
- `BODY_MAX` (64 KiB), every other route: dispute bodies and page forms, a few sentences.

A route that needs more (a batch of records, say) gets its own line in `ROUTE_LIMITS`; a path
segment written `{name}` there matches any one segment.

`BodyLimit` is pure ASGI and does not trust `Content-Length` alone: a declared length over the
limit is refused before anything is read, and every body, chunked ones included, is counted as
it arrives; the first byte past the limit stops the request with 413 before any route sees the
body, so nothing is parsed or stored. Paths are matched below the app's mount point (`/govex`
inside Airflow's API server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

KiB = 1024  # bytes
MiB = 1024 * KiB

LINEAGE_EVENT_MAX = 1 * MiB
SIGNIN_FORM_MAX = 8 * KiB
VERIFY_BODY_MAX = 1 * MiB
BODY_MAX = 64 * KiB

#: (method, path below the mount point) → largest body in bytes; anything else: BODY_MAX.
ROUTE_LIMITS: dict[tuple[str, str], int] = {
    ("POST", "/api/v1/lineage"): LINEAGE_EVENT_MAX,
    ("POST", "/signin"): SIGNIN_FORM_MAX,
    ("POST", "/api/v1/verify/{code}"): VERIFY_BODY_MAX,
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def route_path(scope: Scope) -> str:
    """The request path below the mount point, without a trailing slash."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", "")).rstrip("/")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.rstrip("/") or "/"


def limit_for(method: str, path: str) -> int:
    """The largest body `method path` (below the mount point) accepts, in bytes."""
    method, path = method.upper(), path.rstrip("/") or "/"
    exact = ROUTE_LIMITS.get((method, path))
    if exact is not None:
        return exact
    for (route_method, template), limit in ROUTE_LIMITS.items():
        if route_method == method and "{" in template and _fits(template, path):
            return limit
    return BODY_MAX


def _fits(template: str, path: str) -> bool:
    """Whether `path` is one of `template`'s (a `{name}` segment matches any one segment)."""
    want, have = template.split("/"), path.split("/")
    return len(want) == len(have) and all(
        w == h or (w.startswith("{") and w.endswith("}") and bool(h))
        for w, h in zip(want, have, strict=True))


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit // KiB} KiB"


def _sentence(method: str, path: str, limit: int) -> str:
    return (
        f"the request body is larger than {_size(limit)}, the limit for {method} {path}, so "
        "it was refused and nothing was changed"
    )


class BodyTooLarge(HTTPException):
    """Raised from `receive` the moment the body passes its limit. An HTTPException, so
    FastAPI's body reading lets it through and the app answers it like any other (413)."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


class BodyLimit:
    """ASGI middleware: refuse bodies over their route's limit with 413 (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = str(scope["method"]), route_path(scope)
        limit = limit_for(method, path)
        detail = _sentence(method, path, limit)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(detail)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:  # the app answered and then read on: nothing left to say
                raise
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
