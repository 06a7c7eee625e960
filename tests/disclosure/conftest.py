"""The city of `city.py` delivered once per module (all three resources run), two verification
calls recorded as the verification service records them (its rows and its metering, in one
transaction), one token per role that matters, and a TestClient on the web app."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

import records
from exchange.store import tokens
from tests.disclosure.city import City, build_city, id_number

VERIFIED_AT = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
ROLES = [("admin", "stats"), ("authority", "stats"), ("auditor", "edu"), ("provider", "psb"),
         ("provider", "hrss"), ("consumer", "gsc"), ("checklist_owner", "tax")]


@dataclass
class Delivered:
    city: City
    engine: sa.Engine
    tokens: dict[str, str] = field(default_factory=dict)  # "<role>:<department>" -> token

    def headers(self, role: str, department: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[f'{role}:{department}']}"}


def record_verification(engine: sa.Engine, key: str, *, fields: str = "name,birth_date",
                        found: bool = True, matched: bool = True,
                        subscription: str = "SUB-GSC-VER", consumer: str = "gsc",
                        at: dt.datetime = VERIFIED_AT) -> None:
    """One asked record as the verification service leaves it: a `verify_records` row and
    the call's usage, in one transaction."""
    with engine.begin() as conn:
        conn.execute(sa.insert(records.verify_records).values(
            call_id=str(uuid.uuid4()), resource="PSB-RES-001", record_key=key,
            subscription=subscription, fields=fields, found=found, matched=matched,
            verified_at=at))
        records.count_usage(conn, subscription=subscription, resource="PSB-RES-001",
                            consumer=consumer, at=at, records=1, calls=1,
                            matches=int(matched), not_found=int(not found))


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivered]:
    tmp = tmp_path_factory.mktemp("disclosure_city")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVEX_STAGING_DIR", str(tmp / "staging"))
        city = build_city(tmp, people=200)
        patch.setenv("GOVEX_DB_URL", city.store_url)
        for code in ("PSB-RES-001", "HRSS-RES-001", "CIVIL-RES-001"):
            city.run(code)
        engine = city.store()
        record_verification(engine, id_number(10))
        record_verification(engine, id_number(10), fields="name", matched=False,
                            at=VERIFIED_AT + dt.timedelta(hours=1))
        built = Delivered(city, engine)
        with engine.begin() as conn:
            for role, department in ROLES:
                built.tokens[f"{role}:{department}"] = tokens.create_token(
                    conn, department, role)
        yield built
        engine.dispose()


@pytest.fixture(scope="module")
def client(delivered: Delivered) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from exchange.web import create_app

    with TestClient(create_app(delivered.engine)) as test_client:
        yield test_client
