"""`govex demo [--no-serve]`: the demo city end to end on the embedded defaults.

Generate the city's source data, apply its workspace, run every resource's exchange through
Airflow (`dag.test()`) while the tax vertical system pushes its records over an embedded Kafka
broker (`govex ingest` lands them, then their DAG delivers them), print a summary per resource
and subscriber; then serve the web app until Ctrl-C (`--no-serve` exits after the summary).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import catalog
from exchange.cli.apply import audit_apply, print_plan
from exchange.cli.catalog import print_catalog
from exchange.cli.output import table
from exchange.run import RunSummary, load_summary, runs
from exchange.store import open_store
from govex.errors import GovexError
from govex.settings import load_settings

DEMO_WORKSPACE = Path(__file__).resolve().parents[2] / "examples" / "city"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the demo city end to end on the embedded defaults",
        description="Generate the demo city's source data, apply its workspace, run every "
        "resource's exchange through Airflow and print a summary. Connections default to "
        "SQLite files under the workspace; set the GOVEX_DEMO_*_URL variables to use "
        "PostgreSQL or MariaDB.",
    )
    p.add_argument("--no-serve", action="store_true", help="exit after the summary")
    p.add_argument("--workspace", default=str(DEMO_WORKSPACE), help="demo workspace directory")
    p.add_argument(
        "--seed", type=int, default=20261127, help="generator seed (same seed, same data)"
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply the generated row counts")
    p.set_defaults(handler=run)


def _latest_run(engine: sa.Engine, code: str) -> RunSummary | None:
    with engine.connect() as conn:
        run_id = conn.execute(
            sa.select(runs.c.run_id)
            .where(runs.c.resource == code)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        return load_summary(conn, run_id) if run_id else None


def print_run_table(summaries: list[tuple[str, RunSummary | None, str]]) -> None:
    rows: list[tuple[object, ...]] = []
    for code, summary, note in summaries:
        if summary is None:
            rows.append((code, "-", "-", "-", "-", "-", note))
            continue
        delivered = ", ".join(f"{d.subscription}={d.delivered}" for d in summary.deliveries)
        rows.append((code, summary.status, summary.read, summary.passed, summary.quarantined,
                     delivered or "-", note))
    table(rows, ["RESOURCE", "STATUS", "READ", "PASSED", "QUARANTINED", "DELIVERED", "NOTE"])


class VerticalSystem:
    """The demo's pushing side: an embedded Kafka broker and the tax ministry's system, which
    pushes its records (some broken) in the background while the pulled resources run; then
    `govex ingest` lands them and the resource's DAG delivers them like any other."""

    def __init__(self, codes: list[str], seed: int, scale: float) -> None:
        self.codes = codes
        self.seed, self.scale = seed, scale
        self.broker: Any = None
        self.pushing: Future[Any] | None = None
        self.unavailable = "Kafka-fed: no embedded broker"
        self._bootstrap_before: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tax-vertical")

    def __enter__(self) -> VerticalSystem:
        if not self.codes:
            return self
        from exchange.demo import broker as embedded
        from exchange.demo import city


        try:
            self.broker = embedded.EmbeddedBroker().start()
        except GovexError as error:
            print(f"      the embedded Kafka broker did not start ({error}); the Kafka-fed "
                  "resources wait for `govex ingest`", flush=True)
            self.unavailable = f"Kafka-fed: broker did not start ({str(error)[:40]})"
            return self
        self._bootstrap_before = os.environ.get("GOVEX_KAFKA_BOOTSTRAP")
        os.environ["GOVEX_KAFKA_BOOTSTRAP"] = self.broker.bootstrap
        n = max(20, round(1260 * self.scale))
        envelopes = city.tax_credit_messages(self.seed, n)
        print(f"      vertical system tax-vertical pushes {len(envelopes)} records to "
              f"{city.vertical.TOPIC} on the embedded broker {self.broker.bootstrap} "
              "while the pulls run", flush=True)
        self.pushing = self._pool.submit(city.vertical.push, self.broker.bootstrap, envelopes)
        return self

    def ingest(self, engine: sa.Engine, code: str) -> str | None:
        """Land what was pushed for `code` (waits for the push to finish); a summary note,
        or None when there is no broker."""
        from exchange.ingest import run_ingest

        if self.pushing is None:
            return None
        try:
            pushed = self.pushing.result()
        except Exception as error:  # noqa: BLE001 - the demo goes on without the pushed data
            print(f"      the tax vertical system could not push ({error})", flush=True)
            self.unavailable = f"Kafka-fed: push failed ({str(error)[:40]})"
            return None
        print(f"      {code}: govex ingest lands the {pushed.messages} pushed messages …",
              end="", flush=True)
        # A new broker keeps nothing (memory storage): offsets stored for an earlier demo
        # point past its topics, so read from the beginning; a re-pushed record lands once.
        [stats] = run_ingest(engine, resource=code, max_messages=pushed.messages,
                             idle_timeout=15.0, from_beginning=True)
        print(f" {stats.landed} landed, {stats.rejected} to the DLQ govex.dlq.{code}, "
              f"{stats.duplicates} duplicate(s) skipped", flush=True)
        return (f"pushed {pushed.messages}: landed {stats.landed}, DLQ {stats.rejected}, "
                f"dup {stats.duplicates}")

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.broker is not None:
            self.broker.stop()
            if self._bootstrap_before is None:
                os.environ.pop("GOVEX_KAFKA_BOOTSTRAP", None)
            else:
                os.environ["GOVEX_KAFKA_BOOTSTRAP"] = self._bootstrap_before


def run(args: argparse.Namespace) -> int:
    from exchange.demo import airflow_driver
    from exchange.demo import city as democity  # the generator pulls in Faker: demo only

    started = time.monotonic()
    root = Path(args.workspace)
    print(f"[1/5] reading the demo workspace {root}", flush=True)
    ws = catalog.load_workspace(root)
    targets = {
        name: catalog.resolve_connection(name, d.item, ws.root, file=d.file).target
        for name, d in ws.connections.items()
        if d.item.kind != "kafka"
    }
    print(f"[2/5] generating source data (seed {args.seed}, scale {args.scale})", flush=True)
    manifest = democity.generate_city(ws.root, targets, seed=args.seed, scale=args.scale)
    for generated in manifest.resources:
        print(f"      {generated.resource}: {generated.rows} rows, "
              f"{len(generated.defects)} planted defects")
    print("[3/5] applying the workspace to the metadata store", flush=True)
    settings = load_settings()
    engine = open_store(settings)
    result = catalog.apply_workspace(engine, ws.root, on_applied=audit_apply(ws.root))
    print_plan(result.plan)
    with engine.connect() as conn:
        print_catalog(catalog.list_resources(conn))
        declarations = catalog.resource_declarations(conn)
    store_url = engine.url.render_as_string(hide_password=False)
    os.environ["GOVEX_DB_URL"] = store_url
    print("[4/5] preparing Airflow (a private AIRFLOW_HOME under .govex/airflow)", flush=True)
    airflow_driver.prepare_airflow(Path(".govex") / "airflow")
    summaries: list[tuple[str, RunSummary | None, str]] = []
    codes = sorted(declarations)
    pushed = [c for c in codes if "kafka" in declarations[c]["source"]]
    with VerticalSystem(pushed, args.seed, args.scale) as vertical:
        for index, code in enumerate(codes, start=1):
            if code in pushed:
                continue
            print(f"      ({index}/{len(codes)}) {code}: DAG govex__{code} …", end="",
                  flush=True)
            state = airflow_driver.run_dag(store_url, code)
            summary = _latest_run(engine, code)
            status = summary.status if summary else "no run"
            print(f" {state} (govex run {status})", flush=True)
            note = "" if summary is None else summary.message[:60]
            summaries.append((code, summary, note))
        for code in pushed:
            landed = vertical.ingest(engine, code)
            if landed is None:
                summaries.append((code, None, vertical.unavailable))
                continue
            print(f"      {code}: DAG govex__{code} (its landing asset) …", end="", flush=True)
            state = airflow_driver.run_dag(store_url, code)
            summary = _latest_run(engine, code)
            print(f" {state} (govex run {summary.status if summary else 'no run'})",
                  flush=True)
            summaries.append((code, summary, landed))
    summaries.sort(key=lambda item: item[0])
    print("[5/5] summary", flush=True)
    print_run_table(summaries)
    print(f"\ndemo city exchanged in {time.monotonic() - started:.1f}s")
    failed = [c for c, s, _ in summaries if s is not None and s.status == "failed"]
    if not args.no_serve:
        from exchange.cli.serve import DEFAULT_HOST, DEFAULT_PORT, serve
        from exchange.store import tokens

        with engine.begin() as conn:
            owner = tokens.create_token(conn, "gsc", "checklist_owner")
            admin = tokens.create_token(conn, "gsc", "admin")
        print(f"\nweb app: http://{DEFAULT_HOST}:{DEFAULT_PORT}/  (Ctrl-C to stop)")
        print(f"  sign in as checklist owner with  {owner}")
        print(f"  or as admin with                 {admin}")
        serve(engine, DEFAULT_HOST, DEFAULT_PORT)
    return 1 if failed else 0
