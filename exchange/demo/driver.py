"""The demo city end to end (`govex demo`): generate the source data, apply the workspace,
take the conditional subscriptions through the sharing-request workflow (`grants.py`), run
every resource's exchange through Airflow (`dag.test()`) while the tax vertical system pushes
its records over an embedded Kafka broker (`govex ingest` lands them, then their DAG delivers
them), and return one outcome per resource.

`run_demo` reports its progress to a `Progress` (the CLI prints it; by default nothing is said)
and returns results as data; printing them is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

import catalog
from exchange.demo import airflow_driver, city, grants
from exchange.demo import broker as embedded
from exchange.ingest import run_ingest
from exchange.run import RunSummary, load_summary, runs
from govex.errors import GovexError

AIRFLOW_HOME = Path(".govex") / "airflow"
STEPS = 5


@dataclass(frozen=True)
class Outcome:
    """One resource's line of the demo's summary: its latest run (None when it did not run)
    and a note (the run's message, or what happened to the pushed records)."""

    resource: str
    summary: RunSummary | None
    note: str

    @property
    def failed(self) -> bool:
        return self.summary is not None and self.summary.status == "failed"


class Progress(Protocol):
    """What the demo tells its caller as it goes."""

    def say(self, text: str, *, end: str = "\n") -> None:
        """One line of progress (`end=""`: the line goes on with the next `say`)."""

    def applied(self, plan: catalog.Plan, resources: list[dict[str, object]]) -> None:
        """The workspace was applied: its plan and the catalog's resources."""


class Silent:
    """A `Progress` that says nothing."""

    def say(self, text: str, *, end: str = "\n") -> None:
        pass

    def applied(self, plan: catalog.Plan, resources: list[dict[str, object]]) -> None:
        pass


def _latest_run(engine: sa.Engine, code: str) -> RunSummary | None:
    with engine.connect() as conn:
        run_id = conn.execute(
            sa.select(runs.c.run_id)
            .where(runs.c.resource == code)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        return load_summary(conn, run_id) if run_id else None


class VerticalSystem:
    """The demo's pushing side: an embedded Kafka broker and the tax ministry's system, which
    pushes its records (some broken) in the background while the pulled resources run; then
    `govex ingest` lands them and the resource's DAG delivers them like any other."""

    def __init__(self, codes: list[str], seed: int, scale: float, progress: Progress) -> None:
        self.codes = codes
        self.seed, self.scale = seed, scale
        self.progress = progress
        self.broker: embedded.EmbeddedBroker | None = None
        self.pushing: Future[Any] | None = None
        self.unavailable = "Kafka-fed: no embedded broker"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tax-vertical")

    def __enter__(self) -> VerticalSystem:
        if not self.codes:
            return self
        try:
            self.broker = embedded.EmbeddedBroker().start()
        except GovexError as error:
            self.progress.say(f"      the embedded Kafka broker did not start ({error}); the "
                              "Kafka-fed resources wait for `govex ingest`")
            self.unavailable = f"Kafka-fed: broker did not start ({str(error)[:40]})"
            return self
        n = max(20, round(1260 * self.scale))
        envelopes = city.tax_credit_messages(self.seed, n)
        self.progress.say(f"      vertical system tax-vertical pushes {len(envelopes)} records "
                          f"to {city.vertical.TOPIC} on the embedded broker "
                          f"{self.broker.bootstrap} while the pulls run")
        self.pushing = self._pool.submit(city.vertical.push, self.broker.bootstrap, envelopes)
        return self

    def ingest(self, engine: sa.Engine, code: str) -> str | None:
        """Land what was pushed for `code` (waits for the push to finish); a summary note,
        or None when there is no broker."""
        if self.pushing is None or self.broker is None:
            return None
        try:
            pushed = self.pushing.result()
        except Exception as error:  # noqa: BLE001 - the demo goes on without the pushed data
            self.progress.say(f"      the tax vertical system could not push ({error})")
            self.unavailable = f"Kafka-fed: push failed ({str(error)[:40]})"
            return None
        self.progress.say(f"      {code}: govex ingest lands the {pushed.messages} pushed "
                          "messages …", end="")
        # A new broker keeps nothing (memory storage): offsets stored for an earlier demo
        # point past its topics, so read from the beginning; a re-pushed record lands once.
        [stats] = run_ingest(engine, resource=code, max_messages=pushed.messages,
                             idle_timeout=15.0, from_beginning=True,
                             bootstrap=self.broker.bootstrap)
        self.progress.say(f" {stats.landed} landed, {stats.rejected} to the DLQ "
                          f"govex.dlq.{code}, {stats.duplicates} duplicate(s) skipped")
        return (f"pushed {pushed.messages}: landed {stats.landed}, DLQ {stats.rejected}, "
                f"dup {stats.duplicates}")

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.broker is not None:
            self.broker.stop()


def run_demo(
    engine: sa.Engine,
    workspace: Path,
    *,
    seed: int = city.DEFAULT_SEED,
    scale: float = 1.0,
    airflow_home: Path = AIRFLOW_HOME,
    on_applied: Callable[[sa.Connection, catalog.Plan], None] | None = None,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Run the demo city in `workspace` (a writable copy: its `data/` is generated) against the
    metadata store `engine`; one outcome per resource, by code. `on_applied` runs inside the
    apply's transaction (the caller's audit entry)."""
    say = progress or Silent()
    say.say(f"[1/{STEPS}] reading the demo workspace {workspace}")
    ws = catalog.load_workspace(workspace)
    targets = {
        name: catalog.resolve_connection(name, d.item, ws.root, file=d.file).target
        for name, d in ws.connections.items()
        if d.item.kind != "kafka"
    }
    say.say(f"[2/{STEPS}] generating source data (seed {seed}, scale {scale})")
    manifest = city.generate_city(ws.root, targets, seed=seed, scale=scale)
    for generated in manifest.resources:
        say.say(f"      {generated.resource}: {generated.rows} rows, "
                f"{len(generated.defects)} planted defects")
    say.say(f"[3/{STEPS}] applying the workspace to the metadata store")
    result = catalog.apply_workspace(engine, ws.root, on_applied=on_applied)
    # The conditional subscriptions are asked for, reviewed and approved, never declared.
    for grant in grants.grant_requests(engine, ws.root):
        say.say(f"      {grant.request}: {grant.consumer} asked for {grant.resource}, the "
                f"authority reviewed, {grant.provider} approved: {grant.subscription}")
    with engine.connect() as conn:
        resources = catalog.list_resources(conn)
        declarations = catalog.resource_declarations(conn)
    say.applied(result.plan, resources)
    store_url = engine.url.render_as_string(hide_password=False)
    say.say(f"[4/{STEPS}] preparing Airflow (a private AIRFLOW_HOME under {airflow_home})")
    airflow_driver.prepare_airflow(airflow_home, store_url)
    outcomes: list[Outcome] = []
    codes = sorted(declarations)
    pushed = [c for c in codes if "kafka" in declarations[c]["source"]]
    with VerticalSystem(pushed, seed, scale, say) as vertical:
        for index, code in enumerate(codes, start=1):
            if code in pushed:
                continue
            say.say(f"      ({index}/{len(codes)}) {code}: DAG govex__{code} …", end="")
            state = airflow_driver.run_dag(store_url, code)
            summary = _latest_run(engine, code)
            say.say(f" {state} (govex run {summary.status if summary else 'no run'})")
            note = "" if summary is None else summary.message[:60]
            outcomes.append(Outcome(code, summary, note))
        for code in pushed:
            landed = vertical.ingest(engine, code)
            if landed is None:
                outcomes.append(Outcome(code, None, vertical.unavailable))
                continue
            say.say(f"      {code}: DAG govex__{code} (its landing asset) …", end="")
            state = airflow_driver.run_dag(store_url, code)
            summary = _latest_run(engine, code)
            say.say(f" {state} (govex run {summary.status if summary else 'no run'})")
            outcomes.append(Outcome(code, summary, landed))
    return sorted(outcomes, key=lambda outcome: outcome.resource)

