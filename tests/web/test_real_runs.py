"""Real exchange runs on the generated demo city show up in the API and on the dashboard exactly
as `govex run --json` reports them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import catalog
from exchange.demo.files import copy_workspace
from exchange.demo.grants import grant_requests
from exchange.run import load_summary
from exchange.store import create_store_engine, tokens, upgrade
from exchange.web import create_app


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str],
                                                                     list[str]]]:
    from exchange.demo import city as democity
    from exchange.run import run_resource

    root = tmp_path_factory.mktemp("web-real")
    ws = catalog.load_workspace(copy_workspace(root / "city"))
    targets = {
        name: catalog.resolve_connection(name, d.item, ws.root, file=d.file).target
        for name, d in ws.connections.items()
        if d.item.kind != "kafka"
    }
    democity.generate_city(ws.root, targets, scale=0.05)
    engine = create_store_engine(f"sqlite:///{root / 'govex.db'}")
    upgrade(engine)
    catalog.apply_workspace(engine, ws.root)
    grant_requests(engine, ws.root)
    mp = pytest.MonkeyPatch()
    mp.setenv("GOVEX_STAGING_DIR", str(root / "staging"))
    mp.setenv("GOVEX_DATA_DOCS_DIR", str(root / "data_docs"))
    try:
        run_ids = [run_resource(engine, code).run_id for code in ("PSB-RES-001", "AMR-RES-001")]
        with engine.begin() as conn:
            secrets = {
                "owner": tokens.create_token(conn, "gsc", "checklist_owner"),
                "psb": tokens.create_token(conn, "psb", "provider"),
            }
        with TestClient(create_app(engine, docs_dir=root / "data_docs")) as client:
            yield client, secrets, run_ids
    finally:
        mp.undo()
        engine.dispose()


def test_real_runs_match_govex_run_json(real: Any) -> None:
    client, secrets, run_ids = real
    headers = {"Authorization": f"Bearer {secrets['owner']}"}
    engine: sa.Engine = client.app.state.store
    for run_id in run_ids:
        body = client.get(f"/api/v1/runs/{run_id}", headers=headers).json()
        with engine.connect() as conn:
            assert body == load_summary(conn, run_id).to_json()
    listed = client.get("/api/v1/runs", headers=headers).json()
    assert {r["run_id"] for r in listed} == set(run_ids)


def test_real_runs_feed_the_quality_report_and_dashboard(real: Any) -> None:
    client, secrets, run_ids = real
    headers = {"Authorization": f"Bearer {secrets['owner']}"}
    report = client.get("/api/v1/quality/PSB-RES-001", headers=headers).json()
    assert [p["run_id"] for p in report["runs"]] == [run_ids[0]]
    point = report["runs"][0]
    assert point["read"] > 0
    assert point["pass_rate"] == pytest.approx(point["passed"] / point["read"])
    # The demo city plants defects: whatever checks the engine recorded as failing are named.
    failing = {c["check"] for c in point["checks"] if c["failed"]}
    assert failing  # the planted defects are found
    top = [c["check"] for c in report["top_failing_checks"]]
    assert set(top) <= failing
    dashboard = client.get("/quality", headers=headers).text
    for check in top[:3]:  # the dashboard names each resource's top three
        assert f"<code>{check}</code>" in dashboard
    page = client.get("/quality/PSB-RES-001", headers=headers).text
    for check in top:
        assert f"<code>{check}</code>" in page
    if point["status"] == "success":
        assert report["timeliness"]["state"] == "on_time"
    own = client.get("/api/v1/runs", headers={"Authorization": f"Bearer {secrets['psb']}"})
    assert [r["run_id"] for r in own.json()] == [run_ids[0]]



def test_run_page_draws_the_lineage_and_offers_trace(real: Any) -> None:
    client, secrets, run_ids = real
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {secrets['owner']}"}
    page = client.get(f"/runs/{run_ids[0]}", headers=headers)
    assert page.status_code == 200
    html = page.text
    assert '<svg class="lineage"' in html
    for sub in ("SUB-GSC-001", "SUB-HPF-001"):  # the PSB-RES-001 deliveries
        assert sub in html.split('<svg class="lineage"', 1)[1].split("</svg>", 1)[0]
    assert 'action="/trace"' in html
    jump = client.get("/trace", params={"resource": "PSB-RES-001", "key": "1,2"},
                      headers=headers, follow_redirects=False)
    assert jump.status_code == 303
    assert jump.headers["location"] == "/trace/PSB-RES-001/1%2C2"


def test_dashboard_flags_overdue_disputes(real: Any) -> None:
    import datetime as dt

    from records.disputes import disputes as dispute_rows

    client, secrets, _ = real
    client.cookies.clear()
    engine = client.app.state.context.store
    opened = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(dispute_rows.insert().values(
            id="D-OVERDUE-1", resource="PSB-RES-001", record_key="110105199001010001",
            field="name", claim="姓名有误", opened_by="gsc", provider="psb", state="open",
            due=opened + dt.timedelta(days=7), opened_at=opened, updated_at=opened,
        ))
    html = client.get("/quality", headers={"Authorization": f"Bearer {secrets['owner']}"}).text
    assert "Overdue disputes" in html
    assert "D-OVERDUE-1" in html
