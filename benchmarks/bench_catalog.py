"""What users open at catalog scale: the quality dashboard, the catalog page and the list API on
a generated catalog of N resources over about 200 departments, and the Airflow DAG files built
from it; each beside a baseline measured in the same run.

    govex bench catalog --resources 5000     (or: python -m benchmarks.bench_catalog)

The catalog (`benchmarks.large_catalog`: one subscription per resource, 5 finished runs each with
per-check results, some quarantined records) is generated into a fresh store, SQLite by default
or a new PostgreSQL database (`--store postgresql`, server at GOVEX_BENCH_PG). The web app runs
under uvicorn on 127.0.0.1 and is fetched over HTTP as an admin (who sees every department),
median of `--repeat` requests after one warm-up. Baselines, same run, same machine:

- the same pages on a generated catalog of `--baseline` resources (default 100), served by a
  second app on its own store: what the catalog's size adds;
- a static body of the dashboard's size served by the big catalog's app: what the page costs
  beyond moving its bytes.

DAG files: the time `build_dags()` takes for the whole catalog in this process, and the time
Airflow's own `DagBag` takes to parse the one file `dags/govex_exchanges.py` in a fresh process
(Airflow imported before the clock starts, as the DAG processor has; its 30 s import timeout
raised so the file is timed rather than cut off), beside the same at the baseline size; then
the catalog split into one file per department (`govex dags split`): the main file and a few
department files parsed the same way. Targets (issue #15): dashboard under 1 s and 500 KB at
5,000 resources; DAG parsing under 10 s per file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import large_catalog

ADMIN_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
PAGES = ("/quality", "/catalog", "/subscriptions", "/api/v1/resources", "/api/v1/subscriptions")
STATIC = "/_bench/static"
DEPARTMENT_FILES = 5  # department DAG files timed after the split (their median is printed)

PARSE = """
import json, sys, time
import airflow.sdk, airflow.models  # the one-time Airflow import: not measured
from airflow.dag_processing.dagbag import DagBag

started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "dags": len(bag.dags),
                  "errors": {str(k): str(v)[-300:] for k, v in bag.import_errors.items()}}))
"""


@contextmanager
def _store(kind: str, admin_url: str, folder: Path, name: str) -> Iterator[str]:
    """A fresh, empty store URL: a SQLite file in `folder`, or a new PostgreSQL database
    (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / (name + '.db')}"
        return
    import psycopg

    database = f"govex_bench_catalog_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        yield f"{base}/{database}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextmanager
def _serve(url: str, docs: Path, static_size: Callable[[], int]) -> Iterator[tuple[str, str]]:
    """The govex web app on the store at `url` under uvicorn on a free local port, plus a
    route answering `static_size()` bytes of static HTML; yields (base URL, admin token)."""
    import uvicorn
    from fastapi.responses import HTMLResponse

    from exchange.store import create_store_engine, tokens
    from exchange.web import create_app

    engine = create_store_engine(url)
    with engine.begin() as conn:
        token = tokens.create_token(conn, large_catalog.department(0), "admin")
    app = create_app(engine, docs_dir=docs)

    @app.get(STATIC, include_in_schema=False)
    def static() -> HTMLResponse:
        return HTMLResponse("x" * static_size())

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def _fetch(base: str, path: str, token: str) -> tuple[float, int]:
    """(seconds, body bytes) of one GET."""
    # http://127.0.0.1:<port> of the server this benchmark started: no other scheme.
    request = urllib.request.Request(  # noqa: S310
        base + path, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        body = response.read()
        if response.status != 200:
            msg = f"GET {path} answered {response.status}"
            raise RuntimeError(msg)
    return time.perf_counter() - started, len(body)


def _timed(base: str, path: str, token: str, repeat: int) -> tuple[float, int]:
    """Median seconds over `repeat` GETs after one warm-up, and the body size."""
    _fetch(base, path, token)
    samples = [_fetch(base, path, token) for _ in range(repeat)]
    return statistics.median(s for s, _ in samples), samples[-1][1]


def _airflow_env(workdir: Path, store_url: str) -> dict[str, str]:
    home = workdir / "airflow-home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        # Time the whole file rather than see it cut off at Airflow's default 30 s.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "3600",
        "GOVEX_DB_URL": store_url,
    }


@dataclass(frozen=True)
class Parsed:
    seconds: float
    dags: int


def _parse(path: Path, env: dict[str, str]) -> Parsed:
    """Airflow's DagBag over one DAG file, in a fresh process; an import error fails the
    benchmark (a file that does not parse has no parse time)."""
    result = subprocess.run([sys.executable, "-c", PARSE, str(path)], env=env,
                            capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        msg = f"parsing {path.name} failed: {result.stderr[-2000:]}"
        raise RuntimeError(msg)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if found["errors"]:
        msg = f"{path.name} does not parse: {found['errors']}"
        raise RuntimeError(msg)
    return Parsed(float(found["seconds"]), int(found["dags"]))


def _build_seconds(store_url: str) -> tuple[float, int]:
    """`build_dags()` of the whole catalog in this process: (seconds, DAGs)."""
    from exchange.airflow import build_dags

    started = time.perf_counter()
    dags = build_dags(store_url)
    return time.perf_counter() - started, len(dags)


def _dag_folder(workdir: Path, name: str) -> Path:
    from exchange.airflow import dag_files

    folder = workdir / name
    folder.mkdir()
    (folder / "govex_exchanges.py").write_text(dag_files.BODY, encoding="utf-8")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=5000, help="resources in the catalog")
    parser.add_argument("--departments", type=int, default=large_catalog.DEPARTMENTS)
    parser.add_argument("--runs", type=int, default=large_catalog.RUNS_PER_RESOURCE,
                        help="finished runs per resource (the dashboard shows 30 at most)")
    parser.add_argument("--baseline", type=int, default=100,
                        help="resources of the baseline catalog")
    parser.add_argument("--repeat", type=int, default=5, help="requests timed per page")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--admin-url", default=os.environ.get("GOVEX_BENCH_PG", ADMIN_PG),
                        help="PostgreSQL server for --store postgresql")
    parser.add_argument("--apply", action="store_true",
                        help="load the catalog with `govex apply` of a written workspace "
                        "(minutes at 5,000 resources: YAML) instead of writing its rows")
    parser.add_argument("--skip-dags", action="store_true", help="web pages only")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration otherwise

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (_store(args.store, args.admin_url, work, "big") as big_url,
              _store(args.store, args.admin_url, work, "base") as base_url):
            started = time.perf_counter()
            for url, size, name in ((big_url, args.resources, "big"),
                                    (base_url, args.baseline, "base")):
                engine = large_catalog.build_store(
                    url, size, departments=min(args.departments, size),
                    runs_per_resource=args.runs,
                    apply_from=work / f"ws-{name}" if args.apply else None)
                engine.dispose()
            print(f"catalogs generated ({args.store} stores, "
                  f"{'govex apply' if args.apply else 'rows written'}) in "
                  f"{time.perf_counter() - started:.1f} s: {args.resources:,} and "
                  f"{args.baseline:,} resources, {args.runs} runs each")
            dashboard_size = [0]
            print(f"\n{'page (admin, default paging)':34} {args.resources:>7,} resources "
                  f"{args.baseline:>9,} resources (baseline)")
            figures: dict[str, tuple[float, int]] = {}
            with (_serve(big_url, work / "docs", lambda: dashboard_size[0]) as (big, big_token),
                  _serve(base_url, work / "docs", lambda: 1) as (base, base_token)):
                for path in PAGES:
                    figures[path] = _timed(big, path, big_token, args.repeat)
                    baseline = _timed(base, path, base_token, args.repeat)
                    seconds, size = figures[path]
                    print(f"{path:34} {seconds * 1000:7.0f} ms {size / 1024:7.1f} KiB "
                          f"{baseline[0] * 1000:7.0f} ms {baseline[1] / 1024:7.1f} KiB")
                dashboard_size[0] = figures["/quality"][1]
                static = _timed(big, STATIC, big_token, args.repeat)
                print(f"{'static body of /quality size':34} {static[0] * 1000:7.0f} ms "
                      f"{static[1] / 1024:7.1f} KiB  (same app, same server)")
            seconds, size = figures["/quality"]
            met = seconds < 1.0 and size < 500 * 1024
            print(f"target /quality < 1 s and < 500 KB at {args.resources:,}: "
                  f"{'met' if met else 'NOT met'}")
            if args.skip_dags:
                return 0

            print("\nDAG files")
            from exchange.airflow import dag_files  # Airflow: seconds to import, so here

            build, built = _build_seconds(big_url)
            base_build, base_built = _build_seconds(base_url)
            print(f"build_dags() in process         {build:7.2f} s ({built:,} DAGs)   "
                  f"baseline {base_build:6.2f} s ({base_built:,} DAGs)")
            one_big = _parse(_dag_folder(work, "dags-one-big") / "govex_exchanges.py",
                             _airflow_env(work, big_url))
            one_base = _parse(_dag_folder(work, "dags-one-base") / "govex_exchanges.py",
                              _airflow_env(work, base_url))
            print(f"one file, DagBag parse          {one_big.seconds:7.2f} s "
                  f"({one_big.dags:,} DAGs)   baseline {one_base.seconds:6.2f} s "
                  f"({one_base.dags:,} DAGs)")
            folder = _dag_folder(work, "dags-split")
            departments = [large_catalog.department(n)
                           for n in range(min(args.departments, args.resources))]
            split = dag_files.write_department_files(folder, departments)
            env = _airflow_env(work, big_url)
            main_file = _parse(folder / "govex_exchanges.py", env)
            step = max(1, len(split.written) // DEPARTMENT_FILES)
            parsed = [_parse(folder / name, env)
                      for name in split.written[::step][:DEPARTMENT_FILES]]
            per_file = statistics.median(p.seconds for p in parsed)
            print(f"split: {len(split.written)} department files; the main file "
                  f"{main_file.seconds:.2f} s ({main_file.dags} DAGs); a department file "
                  f"{per_file:.2f} s (median of {len(parsed)}, {parsed[0].dags} DAGs each)")
            slowest = max([main_file.seconds, *(p.seconds for p in parsed)])
            print(f"target DAG parsing < 10 s per file after the split: "
                  f"{'met' if slowest < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
