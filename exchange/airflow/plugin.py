"""The govex web app and REST API inside Airflow 3's API server, under `/govex`.

Registered through the `airflow.plugins` entry point (pyproject:
`[project.entry-points."airflow.plugins"] govex = "exchange.airflow.plugin:GovexPlugin"`), or by
dropping a one-line module importing `GovexPlugin` into `$AIRFLOW_HOME/plugins`. Then
`airflow api-server` serves the catalog, quality dashboards, runs, trace and disputes at
`http://<airflow>/govex/` (API under `/govex/api/v1/...`, OpenAPI at `/govex/openapi.json`),
linked from Airflow's navigation as "govex". The same app runs standalone with `govex serve`.

Lazily mounted: Airflow loads plugins in every component (scheduler, DAG processor, workers),
so this module imports nothing of the web app. The app, `exchange.web:create_app()`, is built
on the first request to `/govex`; until that module exists (or while it fails to build) the
mount answers 503 with the reason, and retries on the next request. govex authenticates its
own API (bearer tokens), independent of Airflow's auth manager.

Preloading the engine: a govex task spends about a second importing the run engine (pyarrow,
SQLAlchemy, the connectors, the gate) before it reads a row. Airflow 3's task supervisor forks
each task process from the worker that runs it, so what the worker imported before the fork
the task inherits. With `[core] lazy_load_plugins = False` (AIRFLOW__CORE__LAZY_LOAD_PLUGINS=
False) every Airflow process loads its plugins when it starts, and this module then imports
the engine (`PRELOADED`) once, in the worker, for every task it will fork. With lazy plugin
loading (Airflow's default) it preloads nothing: a plugin loaded inside a task process would
only move the cost, and put it on tasks that are not govex's. Great Expectations is not
preloaded: only runs with declared expectations import it.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

URL_PREFIX = "/govex"
APP_FACTORY = "exchange.web:create_app"
#: What a worker imports for the task processes it forks (see the module docstring).
PRELOADED = ("exchange.airflow.operators", "exchange.run", "quality", "quality.ge_gate",
             "quality.national", "connectors", "records", "lineage")


def preload() -> list[str]:
    """Import the run engine now, so that forked task processes inherit it; the modules that
    failed to import are logged and skipped (a task then imports them and reports why)."""
    loaded = []
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - never stop an Airflow component from starting
            log.exception("govex: could not preload %s", name)
        else:
            loaded.append(name)
    return loaded


def _plugins_load_at_start() -> bool:
    """Whether this process loads its plugins when it starts (lazy_load_plugins = False)."""
    from airflow import settings

    return not getattr(settings, "LAZY_LOAD_PLUGINS", True)


class LazyApp:
    """An ASGI app that builds the real one (`module:factory`) on first use."""

    def __init__(self, factory: str = APP_FACTORY) -> None:
        self.factory = factory
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    def load(self) -> ASGIApp | str:
        """The app, or why it is not available (a sentence for the 503)."""
        if self._app is not None:
            return self._app
        module_name, _, attribute = self.factory.partition(":")
        with self._lock:
            if self._app is None:
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError as error:
                    if error.name != module_name:
                        raise
                    return f"the govex web app ({module_name}) is not installed in this version"
                try:
                    self._app = getattr(module, attribute)()
                except Exception as error:  # noqa: BLE001 - answer 503, keep Airflow serving
                    log.exception("govex: building the web app failed")
                    return f"the govex web app failed to start: {error}"
        return self._app  # type: ignore[return-value]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # mounted apps get none from Starlette; be safe anyway
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        app = self.load()
        if not isinstance(app, str):
            await app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1013})
            return
        body = app.encode("utf-8")
        await send({
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})


class GovexPlugin(AirflowPlugin):
    """Mounts the govex web app at /govex in the Airflow API server and links it in the nav."""

    name = "govex"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "govex"}]
    external_views = [
        {"name": "govex", "href": f"{URL_PREFIX}/", "destination": "nav", "category": "browse"}
    ]


if _plugins_load_at_start():
    preload()
