"""The dashboard and the API say what failed: two columns with the same check are told apart
(on the resource's quality page and in the quarantine), each with its detail and masked value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.web.conftest import City, build_city, quality_tables

RUN = "00000000-0000-4000-8000-000000000005"  # the newest PSB run of the city
CHECKS = [
    {"check": "cn_resident_id", "column": "id_no", "detail": "check digit",
     "value": "110105********0021"},
    {"check": "cn_resident_id", "column": "guardian_id", "detail": "area code 990101 unknown",
     "value": "990101********1234"},
]


@pytest.fixture(scope="module")
def details(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, City]]:
    from fastapi.testclient import TestClient

    from exchange.web import create_app

    city = build_city(Path(tmp_path_factory.mktemp("web-details")))
    results, quarantine = quality_tables(city.engine)
    now = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        conn.execute(sa.insert(results), [
            {"run_id": RUN, "resource": "PSB-RES-001", "check": "cn_resident_id", "column": column,
             "evaluated": 1000, "failed": failed, "failure_rate": failed / 1000,
             "recorded_at": now}
            for column, failed in (("guardian_id", 7),)
        ])
        conn.execute(sa.insert(quarantine), {
            "resource": "PSB-RES-001", "record_key": "110105194912310021", "run_id": RUN,
            "failed_checks": CHECKS, "record": {"id_no": "110105194912310021"},
            "first_seen": now, "last_seen": now,
        })
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as client:
        yield client, city
    city.engine.dispose()


def test_quality_page_names_the_column_of_each_failed_check(details: Any) -> None:
    client, city = details
    html = client.get("/quality/PSB-RES-001", headers=city.headers("auditor", "gsc")).text
    assert "<code>cn_resident_id</code> on id_no:" in html
    assert "<code>cn_resident_id</code> on guardian_id: 7" in html


def test_quarantine_page_and_api_show_detail_and_masked_value(details: Any) -> None:
    client, city = details
    headers = city.headers("provider", "psb")
    html = client.get("/quarantine", headers=headers).text
    assert ("<code>cn_resident_id</code> on id_no: check digit <code>110105********0021</code>"
            in html)
    assert ("<code>cn_resident_id</code> on guardian_id: area code 990101 unknown "
            "<code>990101********1234</code>" in html)
    body = client.get("/api/v1/quality/PSB-RES-001/quarantine", headers=headers).json()
    held = next(r for r in body if r["key"] == "110105194912310021")
    assert held["failed_checks"] == CHECKS
