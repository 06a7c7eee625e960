"""An exchange scenario on real databases: a PostgreSQL source of residents, and subscribers
with upsert, append and snapshot targets in PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import catalog
from exchange.store import create_store_engine, upgrade

CONTRACT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id_no", "name", "updated_at"],
    "properties": {
        "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$", "x-govex-pii": "id_number"},
        "name": {"type": "string", "maxLength": 50, "x-govex-pii": "name"},
        "phone": {"type": "string", "x-govex-pii": "phone"},
        "birth_date": {"type": "string", "format": "date"},
        "score": {"type": "integer", "minimum": 0},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

BASE_TIME = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def make_rows(n: int, *, start: int = 0, bad_every: int = 0) -> list[dict[str, Any]]:
    """Deterministic residents; every `bad_every`-th row has a malformed id_no (gate fodder).
    Many rows share one updated_at value so batch boundaries fall inside equal watermarks."""
    rows = []
    for i in range(start, start + n):
        id_no = f"{110105199001010000 + i:018d}"
        if bad_every and i % bad_every == 0:
            id_no = f"BAD{i:015d}"
        rows.append({
            "id_no": id_no,
            "name": f"居民{i}",
            "phone": f"138{i:08d}",
            "birth_date": dt.date(1990, 1, 1) + dt.timedelta(days=i % 3000),
            "score": i % 100,
            "updated_at": BASE_TIME + dt.timedelta(minutes=i // 50),
        })
    return rows


def create_source(url: str, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "residents", meta,
        sa.Column("id_no", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("phone", sa.String(40)),
        sa.Column("birth_date", sa.Date),
        sa.Column("score", sa.Integer),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
    engine.dispose()


@dataclass
class Scenario:
    root: Path
    store_url: str
    source_url: str
    targets: dict[str, str]

    def store(self) -> sa.Engine:
        return create_store_engine(self.store_url)

    def target_rows(self, connection: str, table: str) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.targets[connection])
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
        finally:
            engine.dispose()

    def source_execute(self, sql: str, **params: Any) -> None:
        engine = sa.create_engine(self.source_url)
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
        engine.dispose()


def write_workspace(root: Path, source_url: str, targets: dict[str, str],
                    subscriptions: list[dict[str, Any]], max_error_rate: float = 0.05) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "psb", "name": "市公安局"}, {"code": "gsc", "name": "政务服务中心"},
        {"code": "hpf", "name": "公积金中心"},
    ]}, allow_unicode=True))
    connections = {"psb_db": {"url": source_url}}
    connections.update({name: {"url": url} for name, url in targets.items()})
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": connections}))
    (root / "contracts" / "resident").mkdir(parents=True, exist_ok=True)
    (root / "contracts" / "resident" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    (root / "resources").mkdir(exist_ok=True)
    (root / "resources" / "psb.yaml").write_text(yaml.safe_dump({
        "code": "PSB-RES-001", "name": "居民身份基础信息", "provider": "psb",
        "contract": "resident@1.0.0", "key": ["id_no"],
        "elements": {"id_no": "person.id_no", "name": "person.name"},
        "source": {"connection": "psb_db", "table": "residents", "watermark": "updated_at"},
        "sharing": "unconditional", "classification": "L3", "update_frequency": "P1D",
        "quality": {"max_error_rate": max_error_rate},
    }, allow_unicode=True))
    (root / "subscriptions").mkdir(exist_ok=True)
    for sub in subscriptions:
        body = {"resource": "PSB-RES-001", "purpose": "测试", "valid_from": "2026-01-01",
                "valid_until": "2030-12-31", **sub}
        (root / "subscriptions" / f"{sub['id']}.yaml").write_text(
            yaml.safe_dump(body, allow_unicode=True))


@pytest.fixture
def scenario_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Scenario]:
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    def make(source_url: str, targets: dict[str, str], subscriptions: list[dict[str, Any]],
             rows: list[dict[str, Any]], max_error_rate: float = 0.05,
             store_url: str | None = None) -> Scenario:
        create_source(source_url, rows)
        root = tmp_path / "ws"
        write_workspace(root, source_url, targets, subscriptions, max_error_rate)
        store_url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
        engine = create_store_engine(store_url)
        upgrade(engine)
        catalog.apply_workspace(engine, root)
        engine.dispose()
        monkeypatch.setenv("GOVEX_DB_URL", store_url)
        return Scenario(root, store_url, source_url, targets)

    return make


@pytest.fixture(name="make_rows")
def make_rows_fixture() -> Callable[..., list[dict[str, Any]]]:
    return make_rows


SCENARIO_ROWS = 1000
SCENARIO_BAD_EVERY = 50


def three_subscriptions() -> list[dict[str, Any]]:
    """The subscribers of the shared scenario, one per mode and target database."""
    return [
        {"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name", "birth_date", "score"],
         "masking": {"name": "mask_name"}, "mode": "upsert",
         "target": {"connection": "gsc_pg", "table": "gsc_residents"}},
        {"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "phone"],
         "masking": {"phone": "mask_phone"}, "mode": "append",
         "target": {"connection": "hpf_maria", "table": "hpf_residents"}},
        {"id": "SUB-GSC-002", "consumer": "gsc", "fields": ["name", "score"],
         "masking": {"name": "hash"}, "mode": "snapshot",
         "target": {"connection": "gsc_lite", "table": "gsc_snapshot"}},
    ]


@pytest.fixture
def scenario(
    scenario_factory: Any, pg_url: str, mariadb_url: str, tmp_path: Path, make_rows: Any
) -> Scenario:
    """A PostgreSQL source of SCENARIO_ROWS rows and the three subscribers of
    `three_subscriptions` (upsert on PostgreSQL, append on MariaDB, snapshot on SQLite)."""
    targets = {"gsc_pg": pg_url, "hpf_maria": mariadb_url,
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    return scenario_factory(pg_url, targets, three_subscriptions(),
                            make_rows(SCENARIO_ROWS, bad_every=SCENARIO_BAD_EVERY))
