"""`create_app(store)`: the FastAPI app behind `govex serve` and the Airflow plugin."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.store import open_store
from exchange.web import (
    accesslog,
    api,
    disclosure_api,
    disclosure_pages,
    notifications_api,
    pages,
    request_pages,
    requests_api,
    usage_api,
    usage_pages,
    verify_api,
)
from exchange.web.auth import ApiPrincipal, PageAuthError, PageError
from exchange.web.limits import BodyLimit
from exchange.web.origin import SameOrigin
from exchange.web.service import Context
from govex.settings import load_settings

#: Every answer under /data-docs. Data Docs are Great Expectations' HTML around provider data,
#: served under the signed-in origin, so they get more than govex's own pages:
#: - `sandbox` (no allow-scripts, no allow-same-origin, no allow-forms): the document runs in
#:   an opaque origin with scripts and forms off. Even a script that slipped past escaping and
#:   the rest of this policy could not read the session cookie, call /api/v1 with it or read
#:   any govex answer, and Data Docs written before their values were escaped stay inert.
#: - `default-src 'none'`: no script, font, image, frame or connection from anywhere, the
#:   public CDNs GE's templates name included. quality.docs inlines the one stylesheet the
#:   pages need (a sandboxed page's own requests reach govex without the SameSite cookie, so
#:   a stylesheet file under /data-docs would be refused anyway), hence `style-src
#:   'unsafe-inline'`: the pages hold no markup from the data (masked, escaped, re-serialised).
#: - `form-action`, `base-uri`, `frame-ancestors`: not covered by default-src.
DATA_DOCS_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
DATA_DOCS_PREFIX = "/data-docs"


def _app_path(request: Request) -> str:
    """The request's path below the root path it is mounted at (Airflow: /govex)."""
    base = str(request.scope.get("root_path", "")).rstrip("/")
    path = request.url.path
    return path[len(base):] if base and path.startswith(base) else path


def is_data_docs(request: Request) -> bool:
    """Whether the request is for /data-docs or anything below it (whatever route answers)."""
    path = _app_path(request)
    return path == DATA_DOCS_PREFIX or path.startswith(DATA_DOCS_PREFIX + "/")


class SecurityHeaders:
    """The headers every answer carries, as pure ASGI (a `@app.middleware("http")` wrapper
    costs each request a task and a stream copy: felt by the verification API's latency).

    `nosniff`, `same-origin` referrers, no framing, and `Cache-Control: no-store` (everything
    but /healthz is someone's authorised view) where a route did not set its own; under
    /data-docs the sandboxing `DATA_DOCS_CSP`, with the last word (a 401 there keeps the
    sign-in page's own policy if it set one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        data_docs = is_data_docs(Request(scope))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if data_docs:
                    if message["status"] == 401:
                        headers.setdefault("Content-Security-Policy", DATA_DOCS_CSP)
                    else:
                        headers["Content-Security-Policy"] = DATA_DOCS_CSP
            await send(message)

        await self.app(scope, receive, with_headers)


_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"),
)


def data_docs_dir() -> Path:
    """The local folder Data Docs are served from (`Settings.data_docs_cache`)."""
    return load_settings().data_docs_cache


def create_app(
    store: sa.Engine | None = None, *, docs_dir: Path | None = None,
    docs_location: str | None = None,
) -> FastAPI:
    """The web app and REST API on `store` (default: the store GOVEX_DB_URL names, which must
    be at the current schema revision) serving Data Docs from the local folder `docs_dir`;
    runs leave them at `docs_location` (default: `docs_dir` when given, else
    Settings.data_docs_location, a folder or object storage, rendered into
    Settings.data_docs_cache)."""
    settings = load_settings()
    engine = store if store is not None else open_store(settings)
    if docs_location is None:
        docs_location = str(docs_dir) if docs_dir is not None else settings.data_docs_location
    # Record keys in the old GET URLs stay out of the server's access log (`govex serve`, and
    # Airflow's API server when mounted there).
    accesslog.install()
    app = FastAPI(
        title="govex",
        summary="Government data sharing exchange: catalog, checklist, runs, quality.",
        description="Every route but /healthz needs `Authorization: Bearer <token>` with a "
        "token from `govex token create --department D --role R`.",
        version="1",
        # The schema is served below behind the same bearer token as the API; no Swagger UI
        # (it would load scripts from a CDN into an authenticated origin).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = engine
    app.state.context = Context(store=engine, data_docs_dir=docs_dir or data_docs_dir(),
                                data_docs_location=docs_location)
    app.include_router(api.router)
    app.include_router(requests_api.router)
    app.include_router(notifications_api.router)
    app.include_router(disclosure_api.router)
    app.include_router(verify_api.router)
    app.include_router(usage_api.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request, principal: ApiPrincipal) -> JSONResponse:
        del principal
        schema = app.openapi()
        root = str(request.scope.get("root_path", "")).rstrip("/")
        if root:  # mounted (Airflow: /govex): tell clients where the paths start
            schema = {**schema, "servers": [{"url": root}]}
        return JSONResponse(schema)

    app.include_router(pages.router)
    app.include_router(request_pages.router)
    app.include_router(disclosure_pages.router)
    app.include_router(usage_pages.router)

    @app.exception_handler(PageAuthError)
    async def _signin(request: Request, error: PageAuthError) -> HTMLResponse:
        return pages.signin_page(request, error.reason, 401)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, error: PageError) -> HTMLResponse:
        principal = None  # the error page shows no navigation that could mislead
        page = pages.render(request, "error.html", principal, status_code=error.status,
                            status=error.status, message=error.message)
        page.headers.update(error.headers or {})
        return page

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        del request
        return JSONResponse({"detail": api.validation_sentence(error.errors())},
                            status_code=422)

    # Outermost last: the security headers below wrap every answer, the origin check refuses
    # a forged request before its body is read, and the size limit counts what is read.
    app.add_middleware(BodyLimit)
    app.add_middleware(SameOrigin)

    # Outermost: every answer (errors, redirects, /data-docs files) leaves through it.
    app.add_middleware(SecurityHeaders)
    return app
