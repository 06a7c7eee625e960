"""Airflow's CeleryExecutor for real: two `airflow celery worker` processes that share no disk
run several resources' DAGs, and every record reaches every target exactly once — also when
one worker is killed with SIGKILL in the middle of a delivery and its task retries on the other.

The deployment is `celery_cluster.Cluster` (Redis broker, PostgreSQL for Airflow, the govex
store on PostgreSQL, staging on a local S3-API server, department databases on PostgreSQL and
MariaDB). Its timeouts are tuned so that recovery takes seconds: see `celery_cluster.TIMINGS`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import catalog
from exchange.store import create_store_engine, upgrade
from tests.exchange.conftest import CONTRACT, create_source, make_rows

from .celery_cluster import Cluster, running_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.solo]

WORKERS = ("worker-a", "worker-b")
RESOURCES = ("PSB-RES-001", "PSB-RES-002", "PSB-RES-003")
FIRST_ROWS = 400  # per resource, before any run
BATCH_ROWS = 100  # GOVEX_BATCH_ROWS: many small batches, so a delivery can be caught mid-way
VICTIM = "PSB-RES-001"
VICTIM_ROWS = 6_000  # new rows of the victim resource in the kill test: 60 batches


def _table(code: str) -> str:
    return f"residents_{code[-1]}"


def _subscriptions(code: str) -> list[dict[str, Any]]:
    """One subscriber per write mode, on two database servers."""
    n = code[-1]
    return [
        {"id": f"SUB-GSC-{n}01", "consumer": "gsc", "mode": "upsert",
         "fields": ["id_no", "name", "birth_date", "score"], "masking": {"name": "mask_name"},
         "target": {"connection": "gsc_pg", "table": f"gsc_residents_{n}"}},
        {"id": f"SUB-HPF-{n}01", "consumer": "hpf", "mode": "append",
         "fields": ["id_no", "phone"], "masking": {"phone": "mask_phone"},
         "target": {"connection": "hpf_maria", "table": f"hpf_residents_{n}"}},
        {"id": f"SUB-GSC-{n}02", "consumer": "gsc", "mode": "snapshot",
         "fields": ["name", "score"], "masking": {"name": "hash"},
         "target": {"connection": "gsc_pg", "table": f"gsc_snapshot_{n}"}},
    ]


def _write_workspace(root: Path, source: str, targets: dict[str, str]) -> None:
    def dump(path: Path, body: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")

    dump(root / "departments.yaml", {"departments": [
        {"code": "psb", "name": "市公安局"}, {"code": "gsc", "name": "政务服务中心"},
        {"code": "hpf", "name": "公积金中心"},
    ]})
    dump(root / "connections.yaml", {"connections": {
        "psb_db": {"url": source}, **{name: {"url": url} for name, url in targets.items()},
    }})
    (root / "contracts" / "resident").mkdir(parents=True)
    (root / "contracts" / "resident" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    for code in RESOURCES:
        dump(root / "resources" / f"{code}.yaml", {
            "code": code, "name": f"居民身份基础信息 {code[-1]}", "provider": "psb",
            "contract": "resident@1.0.0", "key": ["id_no"],
            "source": {"connection": "psb_db", "table": _table(code), "watermark": "updated_at"},
            "sharing": "unconditional", "classification": "L3", "update_frequency": "P1D",
        })
        for sub in _subscriptions(code):
            dump(root / "subscriptions" / f"{sub['id']}.yaml", {
                "resource": code, "purpose": "测试", "valid_from": "2026-01-01",
                "valid_until": "2030-12-31", **sub,
            })


def _add_rows(url: str, table: str, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(sa.Table(table, sa.MetaData(), autoload_with=conn)), rows)
    finally:
        engine.dispose()


def _scalar(url: str, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


@dataclass
class Exchange:
    """The deployment and the databases around it."""

    cluster: Cluster
    store: str
    source: str
    targets: dict[str, str]  # connection name -> URL

    def source_ids(self, code: str) -> set[str]:
        engine = sa.create_engine(self.source)
        try:
            with engine.connect() as conn:
                return set(conn.execute(sa.text(f"SELECT id_no FROM {_table(code)}")).scalars())
        finally:
            engine.dispose()

    def assert_every_record_once(self, codes: tuple[str, ...] = RESOURCES) -> None:
        """Each source record of the resources `codes` in each of their subscriptions'
        targets exactly once: as many rows as the source has records, as many distinct keys
        as rows, and (where the consumer sees the key) the very same keys."""
        for code in codes:
            ids = self.source_ids(code)
            for sub in _subscriptions(code):
                url = self.targets[sub["target"]["connection"]]
                table = sub["target"]["table"]
                key = "id_no" if "id_no" in sub["fields"] else "_govex_key"
                rows = _scalar(url, f"SELECT count(*) FROM {table}")
                distinct = _scalar(url, f"SELECT count(DISTINCT {key}) FROM {table}")
                assert (rows, distinct) == (len(ids), len(ids)), (sub["id"], rows, distinct)
                if key == "id_no":
                    engine = sa.create_engine(url)
                    with engine.connect() as conn:
                        got = set(conn.execute(sa.text(f"SELECT id_no FROM {table}")).scalars())
                    engine.dispose()
                    assert got == ids, sub["id"]

    def run_all(self) -> dict[str, str]:
        """Trigger every resource's DAG; {dag id: run id}."""
        return {f"govex__{code}": self.cluster.trigger(f"govex__{code}") for code in RESOURCES}


@pytest.fixture(scope="module")
def exchange(
    tmp_path_factory: pytest.TempPathFactory,
    redis_broker: str,
    module_pg: Callable[[], str],
    module_mariadb: str,
    s3_staging: tuple[str, dict[str, str]],
) -> Iterator[Exchange]:
    root = tmp_path_factory.mktemp("celery")
    airflow_db, store, source, gsc = module_pg(), module_pg(), module_pg(), module_pg()
    for code in RESOURCES:
        create_source(source, make_rows(FIRST_ROWS))
        _rename(source, "residents", _table(code))
    targets = {"gsc_pg": gsc, "hpf_maria": module_mariadb}
    _write_workspace(root / "workspace", source, targets)
    engine = create_store_engine(store)
    try:
        upgrade(engine)
        catalog.apply_workspace(engine, root / "workspace")
    finally:
        engine.dispose()
    staging_url, aws = s3_staging
    govex_env = {
        **aws,
        "GOVEX_DB_URL": store,
        "GOVEX_STAGING_URL": staging_url,  # no GOVEX_STAGING_DIR: nothing staged on a disk
        "GOVEX_BATCH_ROWS": str(BATCH_ROWS),
        "GOVEX_SECRET_KEY": "celery-test-master-secret",  # the same in every worker
    }
    with running_cluster(root / "airflow", airflow_db, govex_env, WORKERS) as cluster:
        dags = {f"govex__{code}" for code in RESOURCES}
        wait_for("the DAG processor to parse the govex DAGs",
                 lambda: dags <= cluster.dag_ids(), 120, every=1, diagnose=cluster.diagnose)
        yield Exchange(cluster, store, source, targets)


def _rename(url: str, old: str, new: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        engine.dispose()


def test_two_workers_deliver_every_record_of_several_dags_once(exchange: Exchange) -> None:
    cluster = exchange.cluster
    runs = exchange.run_all()
    assert cluster.wait_finished(runs, timeout=150) == dict.fromkeys(runs, "success"), (
        cluster.diagnose())
    exchange.assert_every_record_once()
    # Both workers ran tasks, and each try ran on exactly one of them: its log is only there.
    ran = {name: {(dag, *t) for dag, run in runs.items()
                  for t in cluster.logged_tries(name, dag, run)} for name in WORKERS}
    assert all(ran.values()), {name: len(tries) for name, tries in ran.items()}
    assert not ran[WORKERS[0]] & ran[WORKERS[1]]
    tries = {(dag, t["task_id"], t["map_index"], t["try_number"])
             for dag, run in runs.items() for t in cluster.tries(dag, run)}
    assert ran[WORKERS[0]] | ran[WORKERS[1]] == tries


def _mid_delivery(exchange: Exchange, subscription: str) -> tuple[str, int] | None:
    """(govex run id, rows committed) while the victim's delivery to `subscription` has
    committed some batches of the running run and not yet finished; else None."""
    run_id = _scalar(exchange.store, "SELECT run_id FROM exchange_runs "
                     "WHERE resource = :r AND status = 'running'", r=VICTIM)
    if run_id is None:
        return None
    status = _scalar(exchange.store, "SELECT status FROM exchange_deliveries "
                     "WHERE run_id = :r AND subscription = :s", r=run_id, s=subscription)
    if status != "running":
        return None
    try:
        rows = _scalar(exchange.targets["hpf_maria"],
                       "SELECT count(*) FROM hpf_residents_1 WHERE _govex_run_id = :r", r=run_id)
    except sa.exc.ProgrammingError:
        return None  # the table is not there yet
    return (run_id, rows) if rows else None


def test_a_worker_killed_mid_delivery_retries_on_the_other_and_delivers_once(
    exchange: Exchange,
) -> None:
    cluster = exchange.cluster
    victim_sub = "SUB-HPF-101"  # append: the mode where a repeated batch would show twice
    start = len(exchange.source_ids(VICTIM))
    _add_rows(exchange.source, _table(VICTIM), make_rows(VICTIM_ROWS, start=start))
    dag = f"govex__{VICTIM}"
    runs = {dag: cluster.trigger(dag)}

    # Catch the delivery with batches committed and more to come (polled through the store
    # and the target, not by sleeping), find its task instance through Airflow's API and the
    # worker whose process tree runs it, and kill that worker and everything it started.
    run_id, _ = wait_for(f"the delivery to {victim_sub} to be under way",
                         lambda: _mid_delivery(exchange, victim_sub), 150, every=0.1,
                         diagnose=cluster.diagnose)
    running = [ti for ti in cluster.task_instances(dag, runs[dag])
               if ti["task_id"] == "deliver" and ti["state"] == "running"
               and (ti.get("rendered_fields") or {}).get("subscription") == victim_sub]
    assert len(running) == 1, cluster.task_instances(dag, runs[dag])
    ti = running[0]
    assert ti["try_number"] == 1
    killed = next(name for name in WORKERS if cluster.components[name].runs(ti["pid"]))
    survivor = next(name for name in WORKERS if name != killed)
    cluster.components[killed].kill()
    killed_at = dt.datetime.now(dt.UTC)
    partial = _scalar(exchange.targets["hpf_maria"],
                      "SELECT count(*) FROM hpf_residents_1 WHERE _govex_run_id = :r", r=run_id)
    assert 0 < partial < VICTIM_ROWS, f"not killed mid-delivery: {partial} of {VICTIM_ROWS}"

    # The scheduler notices the silence, fails the try, and the retry runs on the survivor.
    states = cluster.wait_finished(runs, timeout=150)
    assert states == dict.fromkeys(runs, "success"), cluster.diagnose()
    retried = sorted((t for t in cluster.tries(dag, runs[dag])
                      if t["task_id"] == "deliver" and t["map_index"] == ti["map_index"]),
                     key=lambda t: t["try_number"])
    assert [(t["try_number"], t["state"]) for t in retried] == [
        (1, "failed"), (2, "success")], retried
    # Seconds, not Airflow's minutes: 15 s of silence, 2 s of retry delay, and the survivor
    # finishing the task it had (one at a time).
    recovered_in = (dt.datetime.fromisoformat(retried[1]["start_date"]) - killed_at)
    assert recovered_in < dt.timedelta(seconds=90), f"the retry started {recovered_in} later"
    where = {name: {t for t in cluster.logged_tries(name, dag, runs[dag])
                    if t[:2] == ("deliver", ti["map_index"])} for name in WORKERS}
    assert where[killed] == {("deliver", ti["map_index"], 1)}
    assert where[survivor] == {("deliver", ti["map_index"], 2)}
    exchange.assert_every_record_once((VICTIM,))
