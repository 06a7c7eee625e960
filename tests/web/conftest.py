"""A store with the demo city's catalog, a history of runs with quality results and quarantined
records, Data Docs for one run, and one token per role; and a TestClient on the web app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
from exchange.demo.files import copy_workspace
from exchange.demo.grants import grant_requests
from exchange.run.bookkeeping import deliveries, runs
from exchange.store import create_store_engine, tokens, upgrade

NOW = dt.datetime.now(dt.UTC)

# The failing checks the dashboard must show (names as the quality package records them).
PSB_CHECKS = [("cn_resident_id", "id_no"), ("required", "name"),
              ("id_birth_date_consistency", "birth_date")]
AMR_CHECKS = [("cn_uscc", "uscc")]

# Only the columns the web app reads (the brief's schema); used when the quality package's
# migration is not in this store yet, otherwise the real tables are reflected.
_quality_meta = sa.MetaData()
sa.Table(
    "quality_check_results", _quality_meta,
    sa.Column("run_id", sa.String(36)), sa.Column("resource", sa.String(64)),
    sa.Column("check", sa.String(100)), sa.Column("column", sa.String(100)),
    sa.Column("evaluated", sa.Integer), sa.Column("failed", sa.Integer),
    sa.Column("failure_rate", sa.Float), sa.Column("recorded_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "quality_quarantine", _quality_meta,
    sa.Column("resource", sa.String(64)), sa.Column("record_key", sa.String(200)),
    sa.Column("run_id", sa.String(36)), sa.Column("failed_checks", sa.JSON),
    sa.Column("record", sa.JSON), sa.Column("first_seen", sa.DateTime(timezone=True)),
    sa.Column("last_seen", sa.DateTime(timezone=True)),
)


@dataclass
class City:
    engine: sa.Engine
    docs_dir: Path
    tokens: dict[str, str]  # "<role>:<department>" -> secret
    runs: dict[str, list[str]] = field(default_factory=dict)  # resource -> run ids, oldest first

    def token(self, role: str, department: str) -> str:
        return self.tokens[f"{role}:{department}"]

    def headers(self, role: str, department: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, department)}"}


def quality_tables(engine: sa.Engine) -> tuple[sa.Table, sa.Table]:
    inspector = sa.inspect(engine)
    if not inspector.has_table("quality_check_results"):
        _quality_meta.create_all(engine)
    meta = sa.MetaData()
    return (sa.Table("quality_check_results", meta, autoload_with=engine),
            sa.Table("quality_quarantine", meta, autoload_with=engine))


def _insert_run(conn: sa.Connection, run_id: str, resource: str, status: str, read: int,
                passed: int, started: dt.datetime, subs: list[str]) -> None:
    conn.execute(sa.insert(runs).values(
        run_id=run_id, resource=resource, status=status, subscription=None, subscriptions=subs,
        full=False, parent=None, cursor_start=None, cursor_end=None, read=read, passed=passed,
        quarantined=read - passed, started_at=started,
        ended_at=started + dt.timedelta(minutes=2),
        message="" if status == "success" else "blocked by the quality gate",
    ))
    if status == "success":
        for sub in subs:
            conn.execute(sa.insert(deliveries).values(
                run_id=run_id, subscription=sub, status="success", delivered=passed,
                started_at=started, ended_at=started + dt.timedelta(minutes=1), message=None,
            ))


def build_city(
    root: Path, store_url: str | None = None, edit: Callable[[Path], None] | None = None
) -> City:
    """The city on a fresh store (`store_url`, default a SQLite file under `root`); `edit`
    changes the workspace copy before it is applied and its requests granted."""
    workspace = copy_workspace(root / "city")
    if edit is not None:
        edit(workspace)
    engine = create_store_engine(store_url or f"sqlite:///{root / 'govex.db'}")
    upgrade(engine)
    catalog.apply_workspace(engine, workspace)
    grant_requests(engine, workspace)  # the conditional subscriptions, asked and approved
    results, quarantine = quality_tables(engine)
    city = City(engine=engine, docs_dir=root / "data_docs", tokens={})
    with engine.begin() as conn:
        # PSB: six daily runs, the fifth blocked by the gate; last success an hour ago (P1D:
        # on time).
        psb = []
        for i, (read, passed, status) in enumerate([
            (1000, 990, "success"), (1000, 985, "success"), (1000, 992, "success"),
            (1000, 970, "success"), (1000, 850, "blocked"), (1000, 996, "success"),
        ]):
            run_id = f"00000000-0000-4000-8000-{i:012d}"
            started = NOW - dt.timedelta(days=5 - i, hours=1)
            _insert_run(conn, run_id, "PSB-RES-001", status, read, passed, started,
                        ["SUB-GSC-001", "SUB-HPF-001"])
            for j, (check, column) in enumerate(PSB_CHECKS):
                failed = (read - passed) // (j + 2)
                conn.execute(sa.insert(results).values(
                    run_id=run_id, resource="PSB-RES-001", check=check, column=column,
                    evaluated=read, failed=failed, failure_rate=failed / read,
                    recorded_at=started))
            psb.append(run_id)
        city.runs["PSB-RES-001"] = psb
        # AMR: promised hourly, last success two days ago: late.
        amr = []
        for i in range(2):
            run_id = f"00000000-0000-4000-8001-{i:012d}"
            started = NOW - dt.timedelta(days=3 - i)
            _insert_run(conn, run_id, "AMR-RES-001", "success", 200, 195, started,
                        ["SUB-GSC-002", "SUB-TAX-001"])
            for check, column in AMR_CHECKS:
                conn.execute(sa.insert(results).values(
                    run_id=run_id, resource="AMR-RES-001", check=check, column=column,
                    evaluated=200, failed=5, failure_rate=0.025, recorded_at=started))
            amr.append(run_id)
        city.runs["AMR-RES-001"] = amr
        conn.execute(sa.insert(quarantine), [
            {"resource": "PSB-RES-001", "record_key": "11010519900101123X", "run_id": psb[0],
             "failed_checks": [{"check": "cn_resident_id", "column": "id_no"}],
             "record": {"id_no": "11010519900101123X", "name": "张三"},
             "first_seen": NOW - dt.timedelta(days=5), "last_seen": NOW - dt.timedelta(hours=1)},
            {"resource": "PSB-RES-001", "record_key": "110105199001011111", "run_id": psb[-1],
             "failed_checks": [{"check": "required", "column": "name"},
                               {"check": "id_birth_date_consistency", "column": "birth_date"}],
             "record": {"id_no": "110105199001011111", "name": None},
             "first_seen": NOW - dt.timedelta(hours=1), "last_seen": NOW - dt.timedelta(hours=1)},
            {"resource": "AMR-RES-001", "record_key": "91110000BADUSCC0001", "run_id": amr[-1],
             "failed_checks": [{"check": "cn_uscc", "column": "uscc"}],
             "record": {"uscc": "91110000BADUSCC0001", "name": "某某公司"},
             "first_seen": NOW - dt.timedelta(days=2), "last_seen": NOW - dt.timedelta(days=2)},
        ])
        for role, department in [
            ("admin", "gsc"), ("checklist_owner", "gsc"), ("auditor", "gsc"),
            ("provider", "psb"), ("provider", "amr"), ("consumer", "gsc"),
            ("consumer", "hpf"), ("lineage_producer", "psb"),
        ]:
            city.tokens[f"{role}:{department}"] = tokens.create_token(conn, department, role)
    docs = city.docs_dir / psb[-1]
    (docs / "static").mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>Data Docs for PSB-RES-001</body></html>",
                                     encoding="utf-8")
    (docs / "static" / "style.css").write_text("body{}", encoding="utf-8")
    (city.docs_dir / "secret.txt").write_text("outside any run", encoding="utf-8")
    return city


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    built = build_city(tmp_path_factory.mktemp("web-city"))
    yield built
    built.engine.dispose()


@pytest.fixture(scope="session")
def client(city: City) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from exchange.web import create_app

    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as test_client:
        yield test_client
