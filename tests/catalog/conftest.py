"""A small, valid workspace that each test bends into the shape it needs, and a store per test.

The store fixture is parametrised over SQLite and PostgreSQL: every store test runs on both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from exchange.cli import main

CONTRACT_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "resident identity",
    "type": "object",
    "required": ["id_no", "name"],
    "properties": {
        "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$", "x-govex-pii": "id_number",
                  "x-govex-checks": ["cn_resident_id"]},
        "name": {"type": "string", "maxLength": 50, "x-govex-pii": "name"},
        "birth_date": {"type": "string", "format": "date"},
        "phone": {"type": "string", "x-govex-pii": "phone"},
        "address": {"type": "string", "x-govex-pii": "address"},
    },
}

ENTERPRISE_V1: dict[str, Any] = {
    "type": "object",
    "required": ["uscc"],
    "properties": {
        "uscc": {"type": "string", "minLength": 18, "maxLength": 18},
        "name": {"type": "string"},
        "legal_person": {"type": "string"},
    },
}


class WorkspaceBuilder:
    """Writes workspace files; `base()` lays down the valid starting point."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write_yaml(self, rel: str, data: Any) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
        return path

    def write_text(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        return path

    def contract(self, name: str, version: str, schema: dict[str, Any]) -> Path:
        path = self.root / "contracts" / name / f"{version}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2), "utf-8")
        return path

    def contract_v1(self) -> dict[str, Any]:
        """A fresh copy of the base resident_identity@1.0.0 schema, to derive versions from."""
        copied: dict[str, Any] = json.loads(json.dumps(CONTRACT_V1))
        return copied

    def read_yaml(self, rel: str) -> Any:
        return yaml.safe_load((self.root / rel).read_text("utf-8"))

    def edit(self, rel: str, change: Callable[[Any], None]) -> None:
        data = self.read_yaml(rel)
        change(data)
        self.write_yaml(rel, data)

    def resource(self, **overrides: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": "PSB-RES-001",
            "name": "居民身份基础信息",
            "description": "常住人口身份信息",
            "provider": "psb",
            "contract": "resident_identity@1.0.0",
            "key": ["id_no"],
            "elements": {"id_no": "person.id_no", "name": "person.name"},
            "source": {"connection": "psb_db", "table": "residents", "watermark": "updated_at"},
            # Unconditional, so that the base workspace applies alone; conditional sharing
            # needs an approved request in the store (tests/catalog/test_request_rule.py).
            "sharing": "unconditional",
            "classification": "L3",
            "update_frequency": "P1D",
            "quality": {"max_error_rate": 0.02, "expectations": []},
        }
        data.update(overrides)
        return data

    def subscription(self, **overrides: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": "SUB-GSC-001",
            "resource": "PSB-RES-001",
            "consumer": "gsc",
            "purpose": "一网通办身份核验",
            "fields": ["id_no", "name", "birth_date"],
            "masking": {"name": "mask_name"},
            "target": {"connection": "gsc_db", "table": "psb_residents"},
            "mode": "upsert",
            "schedule": "@daily",
            "valid_from": "2026-01-01",
            "valid_until": "2027-12-31",
        }
        data.update(overrides)
        return data

    def base(self) -> WorkspaceBuilder:
        self.write_yaml("departments.yaml", {"departments": [
            {"code": "psb", "name": "市公安局", "contact": "data@psb.example.gov.cn"},
            {"code": "amr", "name": "市场监管局"},
            {"code": "gsc", "name": "政务服务中心"},
        ]})
        self.write_yaml("connections.yaml", {"connections": {
            "psb_db": {"url": "${GOVEX_TEST_PSB_URL:-sqlite:///data/psb.db}"},
            "amr_db": {"url": "sqlite:///data/amr.db"},
            "gsc_db": {"url": "sqlite:///data/gsc.db"},
            "files": {"path": "data/files", "format": "csv"},
            "bus": {"kafka": "${GOVEX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"},
        }})
        self.contract("resident_identity", "1.0.0", CONTRACT_V1)
        self.contract("enterprise", "1.0.0", ENTERPRISE_V1)
        self.write_yaml("resources/psb-residents.yaml", self.resource())
        self.write_yaml("resources/amr-enterprises.yaml", {
            "code": "AMR-RES-001", "name": "市场主体登记信息", "provider": "amr",
            "contract": "enterprise@1.0.0", "key": ["uscc"],
            "elements": {"uscc": "enterprise.uscc", "name": "enterprise.name"},
            "source": {"connection": "amr_db", "table": "enterprises"},
            "sharing": "unconditional", "classification": "L1", "update_frequency": "PT6H",
        })
        self.write_yaml("subscriptions/gsc-residents.yaml", self.subscription())
        return self


@pytest.fixture
def workspace(tmp_path: Path) -> WorkspaceBuilder:
    return WorkspaceBuilder(tmp_path / "ws").base()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata store: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'govex.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def govex(
    store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """Run the CLI in-process against the test store: returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("GOVEX_DB_URL", store_url)
    monkeypatch.delenv("GOVEX_WORKSPACE", raising=False)
    for name in list(os.environ):
        if name.startswith("GOVEX_TEST_PSB"):
            monkeypatch.delenv(name)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    sa.create_engine(store_url).dispose()


@pytest.fixture
def store_snapshot(store_url: str) -> Callable[[], dict[str, list[Any]]]:
    """Every catalog row, for checking that a refused apply changed nothing."""
    return lambda: _snapshot(store_url)


def _snapshot(store_url: str) -> dict[str, list[Any]]:
    engine = sa.create_engine(store_url)
    tables = [
        "catalog_departments", "catalog_connections", "catalog_contract_versions",
        "catalog_resources", "catalog_data_elements", "catalog_subscriptions", "catalog_applies",
    ]
    try:
        with engine.connect() as conn:
            return {
                t: sorted(
                    (json.dumps(dict(r), sort_keys=True, default=str)
                     for r in conn.execute(sa.text(f"SELECT * FROM {t}")).mappings()),
                )
                for t in tables
            }
    finally:
        engine.dispose()
