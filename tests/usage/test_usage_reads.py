"""Reading usage: `GET /api/v1/usage` and `/api/v1/usage.csv` per role (who sees what, 403s),
filters and bad dates (422 naming the parameter), the usage page, and `govex usage` — all on
the demo city's catalog with usage counted through `records.count_usage`."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import records
from exchange.cli import main
from exchange.store import tokens
from exchange.web import create_app
from govex.workdays import SHANGHAI
from tests.web.conftest import City, build_city

TODAY = dt.datetime.now(SHANGHAI).date()
D1, D2, D3 = (TODAY - dt.timedelta(days=n) for n in (3, 2, 1))
OLD = TODAY - dt.timedelta(days=60)  # outside the page's default 30 days

# (subscription, resource, consumer, day, counts)
USE: list[tuple[str, str, str, dt.date, dict[str, int]]] = [
    ("SUB-GSC-001", "PSB-RES-001", "gsc", D1, {"records": 100, "bytes": 5000}),
    ("SUB-GSC-001", "PSB-RES-001", "gsc", D2, {"records": 50, "bytes": 2500}),
    ("SUB-HPF-001", "PSB-RES-001", "hpf", D1, {"records": 70, "bytes": 3000}),
    ("SUB-GSC-002", "AMR-RES-001", "gsc", D2,
     {"records": 30, "calls": 2, "matches": 20, "not_found": 3}),
    ("SUB-TAX-001", "AMR-RES-001", "tax", D3, {"records": 10, "bytes": 400}),
    ("SUB-TAX-001", "AMR-RES-001", "tax", OLD, {"records": 7, "bytes": 99}),
]
EVERY = {(s, d) for s, _, _, d, _ in USE}


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    built = build_city(tmp_path_factory.mktemp("usage-city"))
    with built.engine.begin() as conn:
        for sub, resource, consumer, day, counts in USE:
            records.count_usage(conn, subscription=sub, resource=resource, consumer=consumer,
                                at=_noon(day), **counts)
        built.tokens["authority:data"] = tokens.create_token(conn, "data", "authority")
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(city: City) -> Iterator[TestClient]:
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as test_client:
        yield test_client


def get(client: TestClient, city: City, path: str, role: str, department: str,
        **params: str) -> Any:
    return client.get(path, params=params, headers=city.headers(role, department))


def keys(body: dict[str, Any]) -> set[tuple[str, dt.date]]:
    return {(r["subscription"], dt.date.fromisoformat(r["day"])) for r in body["rows"]}


def expected_totals(rows: set[tuple[str, dt.date]]) -> dict[str, int]:
    totals = dict.fromkeys(records.USAGE_COUNTS, 0)
    for sub, _, _, day, counts in USE:
        if (sub, day) in rows:
            for name, n in counts.items():
                totals[name] += n
    return totals


@pytest.mark.parametrize(("role", "department"), [
    ("admin", "gsc"), ("authority", "data"), ("auditor", "gsc"), ("checklist_owner", "gsc")])
def test_admin_authority_and_auditor_read_everything(
    client: TestClient, city: City, role: str, department: str
) -> None:
    response = get(client, city, "/api/v1/usage", role, department)
    assert response.status_code == 200, response.text
    body = response.json()
    assert keys(body) == EVERY
    assert body["totals"] == expected_totals(EVERY)
    row = next(r for r in body["rows"] if r["subscription"] == "SUB-GSC-002")
    assert row == {"day": D2.isoformat(), "resource": "AMR-RES-001", "consumer": "gsc",
                   "subscription": "SUB-GSC-002", "records": 30, "bytes": 0, "calls": 2,
                   "matches": 20, "not_found": 3}
    days = [r["day"] for r in body["rows"]]
    assert days == sorted(days)  # oldest day first


def test_a_provider_reads_the_use_of_its_own_resources_only(
    client: TestClient, city: City
) -> None:
    psb = get(client, city, "/api/v1/usage", "provider", "psb").json()
    assert keys(psb) == {("SUB-GSC-001", D1), ("SUB-GSC-001", D2), ("SUB-HPF-001", D1)}
    amr = get(client, city, "/api/v1/usage", "provider", "amr", consumer="gsc").json()
    assert keys(amr) == {("SUB-GSC-002", D2)}
    refused = get(client, city, "/api/v1/usage", "provider", "psb", resource="AMR-RES-001")
    assert refused.status_code == 403
    assert "AMR-RES-001 is not provided by 'psb'" in refused.json()["detail"]


def test_a_consumer_reads_its_own_subscriptions_only(client: TestClient, city: City) -> None:
    gsc = get(client, city, "/api/v1/usage", "consumer", "gsc").json()
    assert keys(gsc) == {("SUB-GSC-001", D1), ("SUB-GSC-001", D2), ("SUB-GSC-002", D2)}
    assert gsc["totals"] == expected_totals(keys(gsc))
    assert keys(get(client, city, "/api/v1/usage", "consumer", "gsc", consumer="gsc").json()) \
        == keys(gsc)
    refused = get(client, city, "/api/v1/usage", "consumer", "gsc", consumer="hpf")
    assert refused.status_code == 403
    assert "own department's usage only" in refused.json()["detail"]


@pytest.mark.parametrize(("role", "department"), [("lineage_producer", "psb")])
def test_other_roles_are_refused(
    client: TestClient, city: City, role: str, department: str
) -> None:
    for path in ("/api/v1/usage", "/api/v1/usage.csv", "/usage"):
        response = get(client, city, path, role, department)
        assert response.status_code == 403, path
        assert f"role '{role}' may not read usage" in html.unescape(response.text)


def test_without_a_token_it_is_401(client: TestClient) -> None:
    assert client.get("/api/v1/usage").status_code == 401
    assert client.get("/api/v1/usage.csv").status_code == 401


def test_filters_combine_and_dates_are_inclusive(client: TestClient, city: City) -> None:
    def shown(**params: str) -> set[tuple[str, dt.date]]:
        response = get(client, city, "/api/v1/usage", "admin", "gsc", **params)
        assert response.status_code == 200, response.text
        return keys(response.json())

    assert shown(resource="AMR-RES-001") == {
        ("SUB-GSC-002", D2), ("SUB-TAX-001", D3), ("SUB-TAX-001", OLD)}
    assert shown(consumer="gsc", resource="PSB-RES-001") == {
        ("SUB-GSC-001", D1), ("SUB-GSC-001", D2)}
    assert shown(**{"from": D2.isoformat(), "to": D2.isoformat()}) == {
        ("SUB-GSC-001", D2), ("SUB-GSC-002", D2)}
    assert shown(**{"from": D3.isoformat()}) == {("SUB-TAX-001", D3)}
    assert shown(to=OLD.isoformat()) == {("SUB-TAX-001", OLD)}
    assert shown(consumer="nobody") == set()


@pytest.mark.parametrize(("params", "named"), [
    ({"from": "2026-13-01"}, "'from'"),
    ({"from": "2026-02-30"}, "'from'"),
    ({"to": "20261101"}, "'to'"),
    ({"to": "yesterday"}, "'to'"),
    ({"from": "2026-11-05", "to": "2026-11-01"}, "'from' (2026-11-05) is after 'to'"),
])
def test_bad_dates_are_422_naming_the_parameter(
    client: TestClient, city: City, params: dict[str, str], named: str
) -> None:
    for path in ("/api/v1/usage", "/api/v1/usage.csv"):
        response = get(client, city, path, "admin", "gsc", **params)
        assert response.status_code == 422, path
        assert named in response.json()["detail"]
    page = get(client, city, "/usage", "admin", "gsc", **params)
    assert page.status_code == 422
    assert named in html.unescape(page.text)


def test_the_csv_export_has_the_same_rows_and_visibility(
    client: TestClient, city: City
) -> None:
    for role, department in (("admin", "gsc"), ("consumer", "gsc"), ("provider", "amr")):
        response = get(client, city, "/api/v1/usage.csv", role, department)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == \
            'attachment; filename="govex-usage.csv"'
        lines = list(csv.DictReader(io.StringIO(response.text)))
        as_json = get(client, city, "/api/v1/usage", role, department).json()["rows"]
        assert [{k: str(v) for k, v in r.items()} for r in as_json] == lines
        assert list(lines[0]) == ["day", "resource", "consumer", "subscription",
                                  *records.USAGE_COUNTS]
    filtered = get(client, city, "/api/v1/usage.csv", "admin", "gsc", consumer="tax",
                   **{"from": D1.isoformat()})
    assert [r["day"] for r in csv.DictReader(io.StringIO(filtered.text))] == [D3.isoformat()]


def test_the_usage_page_charts_per_consumer_and_keeps_the_api_rules(
    client: TestClient, city: City
) -> None:
    page = get(client, city, "/usage", "admin", "gsc")
    assert page.status_code == 200
    text = page.text
    assert "Content-Security-Policy" in page.headers
    assert "<svg" in text
    assert "<script" not in text
    # One line per consumer in the default 30 days (tax's old row is outside them).
    assert len(re.findall(r'<path d="M[^"]*" fill="none" stroke="#', text)) == 3
    for consumer, records_total in (("gsc", "180"), ("hpf", "70"), ("tax", "10")):
        assert f"{consumer}: {records_total} records" in text
    assert f"{D1.isoformat()} gsc: 100 records" in text  # a day's dot and its figure
    assert "SUB-HPF-001" in text
    assert OLD.isoformat() not in text
    assert '/api/v1/usage.csv?from=' in text  # the export of what is shown
    assert 'href="/usage"' in text  # the navigation links the page

    mine = get(client, city, "/usage", "consumer", "gsc").text
    assert "SUB-GSC-001" in mine
    assert "SUB-GSC-002" in mine
    assert "SUB-HPF-001" not in mine
    assert "hpf" not in mine.split("<main>")[1]

    old = get(client, city, "/usage", "admin", "gsc", **{"from": OLD.isoformat(),
                                                           "to": OLD.isoformat()}).text
    assert "tax: 7 records" in old
    assert "SUB-GSC-001" not in old
    assert get(client, city, "/usage", "consumer", "gsc", consumer="hpf").status_code == 403

    catalog = get(client, city, "/catalog", "lineage_producer", "psb").text
    assert 'href="/usage"' not in catalog  # no link for a role that may not read it


def test_govex_usage_prints_the_same_rows(
    client: TestClient, city: City, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GOVEX_DB_URL", city.engine.url.render_as_string(hide_password=False))

    def govex(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["usage", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = govex("--json")
    assert code == 0
    assert json.loads(out) == get(client, city, "/api/v1/usage", "admin", "gsc").json()
    code, out, _ = govex("--csv", "--resource", "AMR-RES-001", "--from", D2.isoformat())
    assert code == 0
    assert out == get(client, city, "/api/v1/usage.csv", "admin", "gsc",
                      resource="AMR-RES-001", **{"from": D2.isoformat()}).text
    code, out, _ = govex("--consumer", "hpf")
    assert code == 0
    assert "SUB-HPF-001" in out
    assert "3,000" in out
    assert out.splitlines()[-1].startswith("total")
    code, out, _ = govex("--consumer", "nobody")
    assert (code, out.strip()) == (0, "No usage recorded for these filters.")
    with pytest.raises(SystemExit) as bad:
        govex("--from", "2026-02-30")
    assert bad.value.code == 2
    assert "argument --from: must be a date YYYY-MM-DD, got '2026-02-30'" in \
        capsys.readouterr().err
    code, _, err = govex("--from", "2026-11-05", "--to", "2026-11-01")
    assert code == 2
    assert "--from 2026-11-05 is after --to 2026-11-01" in err
