"""A resource of people behind verify subscriptions: a source (SQLite file, or PostgreSQL),
a store, a workspace, real `govex run`s and the web app."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

import catalog
from exchange.run import RunSummary, run_resource
from exchange.store import create_store_engine, tokens, upgrade
from exchange.verify import service
from exchange.web import create_app

CODE = "PSB-PPL-001"
BASE_TIME = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)

CONTRACT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id_no", "name", "updated_at"],
    "properties": {
        "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$",
                  "x-govex-pii": "id_number"},
        "name": {"type": "string", "maxLength": 50, "x-govex-pii": "name",
                 "x-govex-normalize": ["trim", "nfc", "fullwidth"]},
        "address": {"type": ["string", "null"]},
        "birth_date": {"type": ["string", "null"], "format": "date"},
        "score": {"type": ["number", "null"]},
        "children": {"type": ["integer", "null"]},
        "married": {"type": ["boolean", "null"]},
        "phone": {"type": ["string", "null"], "x-govex-pii": "phone"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

#: The verify subscription most tests ask under, and what it may ask about.
GSC_FIELDS = ["name", "address", "birth_date", "score", "children", "married"]


def person(i: int) -> dict[str, Any]:
    """Deterministic people; every tenth ID number ends in the check digit X."""
    id_no = f"{110105199001010000 + i:018d}"
    if i % 10 == 3:
        id_no = id_no[:-1] + "X"
    return {
        "id_no": id_no,
        "name": f"居民{i}",
        "address": None if i % 7 == 0 else f"北京市朝阳区建国路{i}号",
        "birth_date": dt.date(1960, 1, 1) + dt.timedelta(days=i * 3),
        "score": i / 2,
        "children": i % 4,
        "married": i % 2 == 0,
        "phone": f"138{i:08d}",
        "updated_at": BASE_TIME + dt.timedelta(minutes=i // 50),
    }


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [person(i) for i in range(start, start + n)]


_source_meta = sa.MetaData()
PEOPLE = sa.Table(
    "people", _source_meta,
    sa.Column("id_no", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(100)),
    sa.Column("address", sa.String(200)),
    sa.Column("birth_date", sa.Date),
    sa.Column("score", sa.Float),
    sa.Column("children", sa.Integer),
    sa.Column("married", sa.Boolean),
    sa.Column("phone", sa.String(40)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("removed", sa.Boolean, nullable=True),  # the source's soft delete
)


def subscriptions() -> list[dict[str, Any]]:
    """Two verify subscriptions of two departments and one bulk one."""
    return [
        {"id": "SUB-GSC-V01", "consumer": "gsc", "delivery": "verify", "fields": GSC_FIELDS},
        {"id": "SUB-TAX-V01", "consumer": "tax", "delivery": "verify", "fields": ["name"]},
        {"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "name", "phone"],
         "target": {"connection": "hpf_db", "table": "hpf_people"}},
    ]


@dataclass
class World:
    """The store, the source and the workspace, and what a test does with them."""

    root: Path
    store: sa.Engine
    source_url: str
    consumer_urls: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)

    def run(self, *, full: bool = False, subscription: str | None = None) -> RunSummary:
        summary = run_resource(self.store, CODE, full=full, subscription=subscription)
        assert summary.status == "success", summary.to_json()
        return summary

    def source(self, sql: str, **params: Any) -> None:
        engine = sa.create_engine(self.source_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(sql), params)
        finally:
            engine.dispose()

    def insert(self, rows: list[dict[str, Any]]) -> None:
        engine = sa.create_engine(self.source_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(PEOPLE), rows)
        finally:
            engine.dispose()

    def write_subscriptions(self, subs: list[dict[str, Any]]) -> None:
        folder = self.root / "subscriptions"
        for old in folder.glob("*.yaml"):
            old.unlink()
        for sub in subs:
            body = {"resource": CODE, "purpose": "核验办事人身份", "valid_from": "2026-01-01",
                    "valid_until": "2030-12-31", **sub}
            (folder / f"{sub['id']}.yaml").write_text(yaml.safe_dump(body, allow_unicode=True))

    def apply(self) -> None:
        catalog.apply_workspace(self.store, self.root)

    def token(self, department: str, role: str = "consumer") -> str:
        name = f"{role}:{department}"
        if name not in self.secrets:
            with self.store.begin() as conn:
                self.secrets[name] = tokens.create_token(conn, department, role)
        return self.secrets[name]

    def headers(self, department: str, role: str = "consumer") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(department, role)}"}

    @contextmanager
    def client(self) -> Iterator[TestClient]:
        with TestClient(create_app(self.store, docs_dir=self.root / "docs")) as client:
            yield client

    def count(self, table: str, **where: Any) -> int:
        clause = " AND ".join(f"{k} = :{k}" for k in where) or "1 = 1"
        with self.store.connect() as conn:
            return int(conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {clause}"), where).scalar_one())


def write_workspace(root: Path, source_url: str, consumer_urls: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "psb", "name": "市公安局"}, {"code": "gsc", "name": "政务服务中心"},
        {"code": "hpf", "name": "公积金中心"}, {"code": "tax", "name": "税务局"},
    ]}, allow_unicode=True))
    connections: dict[str, Any] = {"psb_db": {"url": source_url}}
    connections.update({f"{dept}_db": {"url": url, "owner": dept}
                        for dept, url in consumer_urls.items()})
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": connections}))
    (root / "contracts" / "people").mkdir(parents=True, exist_ok=True)
    (root / "contracts" / "people" / "1.0.0.json").write_text(
        json.dumps(CONTRACT, ensure_ascii=False))
    (root / "resources").mkdir(exist_ok=True)
    (root / "resources" / "people.yaml").write_text(yaml.safe_dump({
        "code": CODE, "name": "人口基础信息", "provider": "psb", "contract": "people@1.0.0",
        "key": ["id_no"],
        "source": {"connection": "psb_db", "table": "people", "watermark": "updated_at",
                   "deleted": "removed"},
        "sharing": "unconditional", "classification": "L3", "update_frequency": "P1D",
    }, allow_unicode=True))
    (root / "subscriptions").mkdir(exist_ok=True)


@pytest.fixture(autouse=True)
def _fresh_call_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with full call buckets (they live in the process)."""
    monkeypatch.setattr(service, "CALL_RATE", service.CallRate())


@pytest.fixture
def world_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., World]]:
    """`make(rows, subs=None, source_url=None, store_url=None)`: a workspace applied to a
    fresh store, its source filled with `rows` (a SQLite file unless `source_url`)."""
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    made: list[World] = []

    def make(rows: list[dict[str, Any]], subs: list[dict[str, Any]] | None = None,
             source_url: str | None = None, store_url: str | None = None) -> World:
        source_url = source_url or f"sqlite:///{tmp_path / 'psb.db'}"
        engine = sa.create_engine(source_url)
        _source_meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(PEOPLE), rows)
        engine.dispose()
        consumers = {d: f"sqlite:///{tmp_path / (d + '.db')}" for d in ("gsc", "hpf", "tax")}
        root = tmp_path / "ws"
        write_workspace(root, source_url, consumers)
        store_url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
        monkeypatch.setenv("GOVEX_DB_URL", store_url)  # for `govex` commands
        store = create_store_engine(store_url)
        upgrade(store)
        world = World(root, store, source_url, consumers)
        world.write_subscriptions(subscriptions() if subs is None else subs)
        world.apply()
        made.append(world)
        return world

    yield make
    for world in made:
        world.store.dispose()


def ask(key: str, **fields: Any) -> dict[str, Any]:
    """One record of a verify body."""
    return {"key": {"id_no": key}, "fields": fields}


def source_view(p: dict[str, Any]) -> dict[str, Any]:
    """A person's fields as a consumer would send them (JSON)."""
    return {"name": p["name"], "address": p["address"],
            "birth_date": p["birth_date"].isoformat(), "score": p["score"],
            "children": p["children"], "married": p["married"]}
