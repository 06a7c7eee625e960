"""Fifty resources run at once by eight processes on one PostgreSQL store: every run succeeds,
nobody deadlocks, every watermark is stored and every record is delivered once. Leases are one
row per resource, so runs of different resources never wait for each other."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import catalog
from exchange.run import bookkeeping
from exchange.run.leases import leases
from exchange.store import create_store_engine, upgrade

pytestmark = [pytest.mark.integration, pytest.mark.solo]

RESOURCES = 50
PROCESSES = 8
ROWS = 40
BASE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

CONTRACT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "value", "updated_at"],
    "properties": {
        "id": {"type": "string", "maxLength": 20},
        "value": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

# One worker: runs its share of the resources one after the other, printing each summary.
WORKER = textwrap.dedent("""
    import json, sys
    from exchange.run import run_resource
    from exchange.store import open_store
    from govex.settings import load_settings

    store = open_store(load_settings())
    for code in sys.argv[1:]:
        print(json.dumps(run_resource(store, code).to_json()), flush=True)
""")


def _code(i: int) -> str:
    return f"PAR-RES-{i:03d}"


def _workspace(root: Path, url: str) -> None:
    root.mkdir()
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "psb", "name": "市公安局"}, {"code": "gsc", "name": "政务服务中心"},
    ]}, allow_unicode=True))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {"pg": {"url": url}}}))
    (root / "contracts" / "item").mkdir(parents=True)
    (root / "contracts" / "item" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    (root / "resources").mkdir()
    (root / "subscriptions").mkdir()
    for i in range(RESOURCES):
        (root / "resources" / f"r{i}.yaml").write_text(yaml.safe_dump({
            "code": _code(i), "name": f"资源{i}", "provider": "psb",
            "contract": "item@1.0.0", "key": ["id"], "elements": {},
            "source": {"connection": "pg", "table": f"src_{i}", "watermark": "updated_at"},
            "sharing": "unconditional", "classification": "L2", "update_frequency": "P1D",
            "quality": {"max_error_rate": 0.0},
        }, allow_unicode=True))
        (root / "subscriptions" / f"s{i}.yaml").write_text(yaml.safe_dump({
            "id": f"SUB-PAR-{i:03d}", "resource": _code(i), "consumer": "gsc",
            "purpose": "测试", "fields": ["id", "value"], "masking": {}, "mode": "append",
            "target": {"connection": "pg", "table": f"tgt_{i}"},
            "valid_from": "2026-01-01", "valid_until": "2030-12-31",
        }, allow_unicode=True))


def _sources(engine: sa.Engine) -> None:
    meta = sa.MetaData()
    tables = [
        sa.Table(f"src_{i}", meta, sa.Column("id", sa.String(20), primary_key=True),
                 sa.Column("value", sa.Integer, nullable=False),
                 sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False))
        for i in range(RESOURCES)
    ]
    meta.create_all(engine)
    with engine.begin() as conn:
        for i, table in enumerate(tables):
            conn.execute(sa.insert(table), [
                {"id": f"{i}-{n}", "value": n, "updated_at": BASE + dt.timedelta(minutes=n)}
                for n in range(ROWS)
            ])


def test_fifty_resources_in_eight_processes_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_DB_URL", pg_url)
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("GOVEX_DATA_DOCS_DIR", str(tmp_path / "data_docs"))
    monkeypatch.setenv("GOVEX_LINEAGE_DISABLED", "true")
    engine = create_store_engine(pg_url)
    upgrade(engine)
    _sources(engine)
    _workspace(tmp_path / "ws", pg_url)
    catalog.apply_workspace(engine, tmp_path / "ws")

    workers = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", WORKER, *(_code(i) for i in range(p, RESOURCES, PROCESSES))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        )
        for p in range(PROCESSES)
    ]
    summaries: list[dict[str, Any]] = []
    warnings = ""  # what a failed step logged (its error), shown if a run did not succeed
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
        summaries += [json.loads(line) for line in out.splitlines()]
        warnings += "".join(line + "\n" for line in err.splitlines() if "failed" in line)

    assert sorted(s["resource"] for s in summaries) == [_code(i) for i in range(RESOURCES)]
    assert {s["status"] for s in summaries} == {"success"}, ([
        (s["resource"], s["message"]) for s in summaries if s["status"] != "success"
    ], warnings[-3000:])
    with engine.connect() as conn:
        for i in range(RESOURCES):
            cursor = bookkeeping.read_watermark(conn, _code(i))
            assert cursor is not None, _code(i)
            assert cursor["values"][-1] == f"{i}-{ROWS - 1}", cursor  # the last row read
            ids = [r for (r,) in conn.execute(sa.text(f"SELECT id FROM tgt_{i}"))]
            assert sorted(ids) == sorted(f"{i}-{n}" for n in range(ROWS))  # each once
        assert conn.execute(sa.select(sa.func.count()).select_from(leases)).scalar_one() == 0
    engine.dispose()
