"""`govex serve [--host 127.0.0.1] [--port 8765]`: the web app and REST API under uvicorn."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from govex.errors import DeclarationError

if TYPE_CHECKING:
    import sqlalchemy as sa

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the web app and REST API",
        description="Serve the catalog, quality dashboard and REST API (OpenAPI at "
        "/openapi.json). Every route but /healthz needs a token from `govex token create`.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT})")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.store import open_store
    from govex.settings import load_settings

    if not 0 <= args.port <= 65535:  # noqa: PLR2004 - the TCP port range
        msg = f"--port {args.port} is not a TCP port (0-65535)"
        raise DeclarationError(msg, field="--port", value=args.port)
    serve(open_store(load_settings()), args.host, args.port)
    return 0


def serve(store: sa.Engine, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the web app on `store` until Ctrl-C (also what `govex demo` ends with)."""
    import uvicorn  # loaded only when serving: keeps `govex --help` fast

    from exchange.notify import start_sender_thread
    from exchange.web import create_app

    # create_app puts exchange.web.accesslog's filter on uvicorn's access logger: the record
    # keys of the old GET trace URLs are written as [redacted]. uvicorn's own logging config,
    # applied inside uvicorn.run, replaces handlers but keeps logger filters.
    app = create_app(store)
    # The webhook sender runs beside the app, so a running web app delivers the events its
    # requests' steps write; a step never waits for it (it only reads the outbox).
    stop = start_sender_thread(store)
    print(f"govex serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        stop.set()
