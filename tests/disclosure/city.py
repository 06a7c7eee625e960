"""A small city for disclosure and leak tracing: two providers, six consumers, real `govex run`s.

- PSB-RES-001 (psb): residents keyed by ID number (`id_no`, `x-govex-pii: id_number`), from a
  SQLite source; its bulk subscribers:
  SUB-GSC-001 gsc  id_no, name (mask_name), birth_date, score, updated_at
  SUB-HPF-001 hpf  id_no, phone (mask_phone)
  SUB-CIV-001 civil, SUB-TAX-001 tax   id_no, name (hash), birth_date: the same fields with
                                       the same keyed-hash masking (keyed per subscription)
  SUB-STA-001 stats, SUB-EDU-001 edu   name, phone, unmasked: identical projections (a tie)
  and one verify subscription, SUB-GSC-VER gsc (name, birth_date);
- HRSS-RES-001 (hrss): social insurance keyed by insurance number, each record naming a
  resident's `id_no` (`x-govex-pii: id_number`, not the key), from another SQLite source;
  SUB-HPF-002 hpf receives insurance_no, id_no, monthly_base;
- CIVIL-RES-001 (civil): subsistence allowances keyed by (year, id_no): the ID number is part
  of the key; SUB-GSC-003 gsc receives all of it.

Every target is a SQLite file of its consumer's unless the caller maps a connection to another
URL (a PostgreSQL database, say). ID numbers carry valid GB 11643 check characters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

import catalog
from exchange.cli import main
from exchange.store import create_store_engine, upgrade
from quality.standards import resident_id_check_digit

BASE_TIME = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
RESIDENT: dict[str, Any] = {
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
INSURANCE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["insurance_no", "id_no"],
    "properties": {
        "insurance_no": {"type": "string"},
        "id_no": {"type": "string", "x-govex-pii": "id_number"},
        "monthly_base": {"type": "number"},
        "start_date": {"type": "string", "format": "date"},
    },
}
ALLOWANCE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["year", "id_no"],
    "properties": {
        "year": {"type": "integer"},
        "id_no": {"type": "string", "x-govex-pii": "id_number"},
        "amount": {"type": "number"},
    },
}
DEPARTMENTS = ("psb", "hrss", "gsc", "hpf", "civil", "tax", "stats", "edu")


def id_number(i: int) -> str:
    """The i-th resident's ID number, with its check character."""
    first17 = f"{11010519800101000 + i * 7:017d}"
    return first17 + resident_id_check_digit(first17)


def residents(n: int) -> list[dict[str, Any]]:
    return [{
        "id_no": id_number(i),
        "name": f"居民{i}",
        "phone": f"138{i:08d}",
        "birth_date": dt.date(1980, 1, 1) + dt.timedelta(days=i % 5000),
        "score": i % 100,
        "updated_at": BASE_TIME + dt.timedelta(minutes=i // 50, seconds=i % 7),
    } for i in range(n)]


def insurance(n: int) -> list[dict[str, Any]]:
    """Insurance records of the first `n` residents, one each, a few residents with two."""
    rows = [{
        "insurance_no": f"INS{i:06d}", "id_no": id_number(i), "monthly_base": 3000 + i * 1.5,
        "start_date": dt.date(2010, 1, 1) + dt.timedelta(days=i),
    } for i in range(n)]
    rows += [{"insurance_no": f"INS9{i:05d}", "id_no": id_number(i), "monthly_base": 5000.0,
              "start_date": dt.date(2020, 1, 1)} for i in range(0, n, 10)]
    return rows


def allowances(n: int) -> list[dict[str, Any]]:
    """Two years of allowance for every fifth of the first `n` residents."""
    return [{"year": year, "id_no": id_number(i), "amount": 800.0 + i}
            for i in range(0, n, 5) for year in (2024, 2025)]


def subscriptions() -> list[dict[str, Any]]:
    def bulk(sub_id: str, consumer: str, fields: list[str], masking: dict[str, str],
             table: str, resource: str = "PSB-RES-001") -> dict[str, Any]:
        return {"id": sub_id, "resource": resource, "consumer": consumer,
                "purpose": f"{consumer} 办事核对", "fields": fields, "masking": masking,
                "mode": "upsert", "target": {"connection": f"{consumer}_db", "table": table}}

    return [
        bulk("SUB-GSC-001", "gsc", ["id_no", "name", "birth_date", "score", "updated_at"],
             {"name": "mask_name"}, "gsc_residents"),
        bulk("SUB-HPF-001", "hpf", ["id_no", "phone"], {"phone": "mask_phone"},
             "hpf_residents"),
        bulk("SUB-CIV-001", "civil", ["id_no", "name", "birth_date"], {"name": "hash"},
             "civil_residents"),
        bulk("SUB-TAX-001", "tax", ["id_no", "name", "birth_date"], {"name": "hash"},
             "tax_residents"),
        bulk("SUB-STA-001", "stats", ["name", "phone"], {}, "stats_residents"),
        bulk("SUB-EDU-001", "edu", ["phone", "name"], {}, "edu_residents"),
        {"id": "SUB-GSC-VER", "resource": "PSB-RES-001", "consumer": "gsc",
         "purpose": "gsc 身份核验", "fields": ["name", "birth_date"], "delivery": "verify"},
        bulk("SUB-HPF-002", "hpf", ["insurance_no", "id_no", "monthly_base"], {},
             "hpf_insurance", resource="HRSS-RES-001"),
        bulk("SUB-GSC-003", "gsc", ["year", "id_no", "amount"], {}, "gsc_allowance",
             resource="CIVIL-RES-001"),
    ]


def _source(url: str, table: str, columns: list[sa.Column[Any]],
            rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    created = sa.Table(table, meta, *columns)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(created), rows)
    engine.dispose()


@dataclass
class City:
    root: Path  # the workspace
    store_url: str
    urls: dict[str, str]  # connection -> URL

    def store(self) -> sa.Engine:
        return create_store_engine(self.store_url)

    def target_rows(self, connection: str, table: str) -> list[dict[str, Any]]:
        """The rows of a consumer's target table, read from its database."""
        engine = sa.create_engine(self.urls[connection])
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
        finally:
            engine.dispose()

    def execute(self, connection: str, sql: str, **params: Any) -> None:
        engine = sa.create_engine(self.urls[connection])
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
        engine.dispose()

    def run(self, code: str) -> dict[str, Any]:
        """`govex run CODE --json`, in this process; the run must succeed."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exit_code = main(["run", code, "--json"])
        summary: dict[str, Any] = json.loads(out.getvalue())
        assert (exit_code, summary["status"]) == (0, "success"), summary["message"]
        return summary

    def write(self, subs: list[dict[str, Any]]) -> None:
        """Rewrite the subscription files (then apply)."""
        folder = self.root / "subscriptions"
        for old in folder.glob("*.yaml"):
            old.unlink()
        for sub in subs:
            body = {"valid_from": "2026-01-01", "valid_until": "2030-12-31", **sub}
            (folder / f"{sub['id']}.yaml").write_text(yaml.safe_dump(body, allow_unicode=True))

    def apply(self) -> catalog.ApplyResult:
        engine = self.store()
        try:
            return catalog.apply_workspace(engine, self.root)
        finally:
            engine.dispose()


def build_city(tmp: Path, *, targets: dict[str, str] | None = None, people: int = 1000,
               subs: list[dict[str, Any]] | None = None) -> City:
    """Sources filled, the workspace written and applied on a fresh SQLite store; nothing run.
    The caller points GOVEX_DB_URL at `city.store_url` (and GOVEX_STAGING_DIR somewhere)."""
    urls = {"psb_db": f"sqlite:///{tmp / 'psb.db'}", "hrss_db": f"sqlite:///{tmp / 'hrss.db'}",
            "civil_src": f"sqlite:///{tmp / 'civil_src.db'}"}
    urls.update({f"{d}_db": f"sqlite:///{tmp / f'{d}.db'}" for d in DEPARTMENTS[2:]})
    urls.update(targets or {})
    _source(urls["psb_db"], "residents", [
        sa.Column("id_no", sa.String(40), primary_key=True), sa.Column("name", sa.String(100)),
        sa.Column("phone", sa.String(40)), sa.Column("birth_date", sa.Date),
        sa.Column("score", sa.Integer),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ], residents(people))
    _source(urls["hrss_db"], "insurance", [
        sa.Column("insurance_no", sa.String(20), primary_key=True),
        sa.Column("id_no", sa.String(18), nullable=False),
        sa.Column("monthly_base", sa.Float), sa.Column("start_date", sa.Date),
    ], insurance(max(people // 10, 1)))
    _source(urls["civil_src"], "allowance", [
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("id_no", sa.String(18), primary_key=True), sa.Column("amount", sa.Float),
    ], allowances(max(people // 10, 1)))
    root = tmp / "ws"
    (root / "contracts" / "resident").mkdir(parents=True)
    (root / "contracts" / "insurance").mkdir(parents=True)
    (root / "contracts" / "allowance").mkdir(parents=True)
    (root / "resources").mkdir()
    (root / "subscriptions").mkdir()
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": d, "name": f"{d} 部门"} for d in DEPARTMENTS]}, allow_unicode=True))
    (root / "connections.yaml").write_text(yaml.safe_dump(
        {"connections": {name: {"url": url} for name, url in urls.items()}}))
    (root / "contracts" / "resident" / "1.0.0.json").write_text(json.dumps(RESIDENT))
    (root / "contracts" / "insurance" / "1.0.0.json").write_text(json.dumps(INSURANCE))
    (root / "contracts" / "allowance" / "1.0.0.json").write_text(json.dumps(ALLOWANCE))
    common = {"sharing": "unconditional", "classification": "L3", "update_frequency": "P1D"}
    (root / "resources" / "psb.yaml").write_text(yaml.safe_dump({
        "code": "PSB-RES-001", "name": "居民身份基础信息", "provider": "psb",
        "contract": "resident@1.0.0", "key": ["id_no"],
        "source": {"connection": "psb_db", "table": "residents", "watermark": "updated_at"},
        **common,
    }, allow_unicode=True))
    (root / "resources" / "hrss.yaml").write_text(yaml.safe_dump({
        "code": "HRSS-RES-001", "name": "社会保险参保信息", "provider": "hrss",
        "contract": "insurance@1.0.0", "key": ["insurance_no"],
        "source": {"connection": "hrss_db", "table": "insurance"}, **common,
    }, allow_unicode=True))
    (root / "resources" / "civil.yaml").write_text(yaml.safe_dump({
        "code": "CIVIL-RES-001", "name": "最低生活保障", "provider": "civil",
        "contract": "allowance@1.0.0", "key": ["year", "id_no"],
        "source": {"connection": "civil_src", "table": "allowance"}, **common,
    }, allow_unicode=True))
    city = City(root, f"sqlite:///{tmp / 'store.db'}", urls)
    city.write(subscriptions() if subs is None else subs)
    engine = city.store()
    upgrade(engine)
    engine.dispose()
    city.apply()
    return city
