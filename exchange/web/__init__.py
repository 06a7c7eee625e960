"""The govex web app and REST API: catalog, checklist, runs, quality dashboard, quarantine.

`create_app(store)` builds the FastAPI app; `govex serve` runs it under uvicorn and the Airflow
plugin mounts it at `/govex` in Airflow's API server. Every route but `/healthz` and the
sign-in page needs a bearer token (`govex token create`); who may read what is decided in
`exchange.web.policy`. Before any route runs, `exchange.web.origin` refuses state-changing
browser requests from other origins (403) and `exchange.web.limits` bodies over their route's
limit (413).
"""

from exchange.web.app import create_app

__all__ = ["create_app"]
