"""The end of a subscription on real targets: revoked (REST API and `govex subscription
revoke`, acting with tokens) or expired, the next run skips it and says why, purges what it
was delivered from PostgreSQL and MariaDB targets once, audited, and keeps it with
`retain_after_end`; `govex apply` keeps a revoked subscription revoked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
import records
from catalog import tables
from exchange import cli
from exchange.store import create_store_engine, tokens, upgrade
from tests.exchange.conftest import (
    SCENARIO_BAD_EVERY,
    SCENARIO_ROWS,
    Scenario,
    create_source,
    make_rows,
    three_subscriptions,
    write_workspace,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def scenario(pg_url: str, mariadb_url: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """The shared three-subscriber scenario (PostgreSQL upsert, MariaDB append, SQLite
    snapshot), its resource shared unconditionally: how a subscription came about is not
    what these tests are about (the request workflow's tests are)."""
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    targets = {"gsc_pg": pg_url, "hpf_maria": mariadb_url,
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    create_source(pg_url, make_rows(SCENARIO_ROWS, bad_every=SCENARIO_BAD_EVERY))
    root = tmp_path / "ws"
    write_workspace(root, pg_url, targets, three_subscriptions())
    resource = root / "resources" / "psb.yaml"
    resource.write_text(
        resource.read_text().replace("sharing: conditional", "sharing: unconditional")
    )
    for sub in (root / "subscriptions").glob("*.yaml"):
        sub.write_text(sub.read_text().replace("approved_by: psb\n", ""))
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(store_url)
    upgrade(engine)
    catalog.apply_workspace(engine, root)
    engine.dispose()
    monkeypatch.setenv("GOVEX_DB_URL", store_url)
    return Scenario(root, store_url, pg_url, targets)


def _govex(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _run(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = _govex(capsys, "run", "PSB-RES-001", "--json")
    assert code == 0, err
    summary: dict[str, Any] = json.loads(out)
    return summary


def _token(engine: sa.Engine, department: str, role: str) -> str:
    with engine.begin() as conn:
        return tokens.create_token(conn, department, role)


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _audit(engine: sa.Engine, kind: str) -> list[records.AuditEntry]:
    with engine.connect() as conn:
        return [e for e in records.list_audit(conn) if e.kind == kind]


def _set(engine: sa.Engine, sub_id: str, **declared: Any) -> None:
    """Change a stored subscription as an approval would have (valid_until, retain)."""
    s = tables.subscriptions
    with engine.begin() as conn:
        decl = dict(conn.execute(sa.select(s.c.declaration).where(s.c.id == sub_id)).scalar_one())
        decl.update(declared)
        values: dict[str, Any] = {"declaration": decl}
        if "valid_until" in declared:
            values["valid_until"] = dt.date.fromisoformat(declared["valid_until"])
        conn.execute(sa.update(s).where(s.c.id == sub_id).values(**values))


def test_revoked_and_expired_are_skipped_and_purged_once(
    scenario: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = scenario.store()
    first = _run(capsys)
    assert first["status"] == "success"
    delivered = {d["subscription"]: d["delivered"] for d in first["deliveries"]}
    assert _count(scenario.targets["gsc_pg"], "gsc_residents") == delivered["SUB-GSC-001"] > 0
    assert _count(scenario.targets["hpf_maria"], "hpf_residents") == delivered["SUB-HPF-001"]

    provider, consumer = _token(engine, "psb", "provider"), _token(engine, "gsc", "consumer")
    # Without a token, with a consumer's token: refused, nothing changed.
    monkeypatch.delenv("GOVEX_TOKEN", raising=False)
    code, _, err = _govex(capsys, "subscription", "revoke", "SUB-GSC-001", "--reason", "x")
    assert code == 2
    assert "--token" in err
    code, _, err = _govex(capsys, "subscription", "revoke", "SUB-GSC-001", "--reason", "x",
                          "--token", "govex_nope")
    assert (code, "unknown token" in err) == (2, True)
    code, _, err = _govex(capsys, "subscription", "revoke", "SUB-GSC-001", "--reason", "x",
                          "--token", consumer)
    assert code == 2
    assert "only the provider 'psb'" in err
    assert _audit(engine, "revoke") == []

    monkeypatch.setenv("GOVEX_TOKEN", provider)
    code, out, err = _govex(capsys, "subscription", "revoke", "SUB-GSC-001",
                            "--reason", "目的已达成")
    assert code == 0, err
    assert "revoked by psb/provider" in out
    code, _, err = _govex(capsys, "subscription", "revoke", "SUB-GSC-001", "--reason", "again")
    assert code == 2
    assert "already revoked" in err
    [entry] = _audit(engine, "revoke")
    assert (entry.actor, entry.subject, entry.detail["reason"]) == (
        "psb/provider", "SUB-GSC-001", "目的已达成")

    # The snapshot subscriber's approval retains what it got; the MariaDB one expired.
    _set(engine, "SUB-GSC-002", retain_after_end=True)
    code, _, err = _govex(capsys, "subscription", "revoke", "SUB-GSC-002", "--reason", "到期",
                          "--token", _token(engine, "psb", "authority"))
    assert code == 0, err
    _set(engine, "SUB-HPF-001", valid_until="2026-01-31")

    second = _run(capsys)
    assert second["status"] == "success"
    skipped = {d["subscription"]: d for d in second["deliveries"]}
    assert {d["status"] for d in skipped.values()} == {"skipped"}
    assert all(d["delivered"] == 0 for d in skipped.values())
    assert "revoked" in skipped["SUB-GSC-001"]["reason"]
    assert "目的已达成" in skipped["SUB-GSC-001"]["reason"]
    assert "purged" in skipped["SUB-GSC-001"]["reason"]
    assert "valid until 2026-01-31" in skipped["SUB-HPF-001"]["reason"]
    assert "retained" in skipped["SUB-GSC-002"]["reason"]
    assert _count(scenario.targets["gsc_pg"], "gsc_residents") == 0
    assert _count(scenario.targets["hpf_maria"], "hpf_residents") == 0
    assert delivered["SUB-GSC-002"] == _count(scenario.targets["gsc_lite"], "gsc_snapshot") > 0
    purges = {e.subject: e.detail for e in _audit(engine, "purge")}
    assert set(purges) == {"SUB-GSC-001", "SUB-HPF-001"}
    assert purges["SUB-GSC-001"]["rows"] == delivered["SUB-GSC-001"]
    assert purges["SUB-HPF-001"]["rows"] == delivered["SUB-HPF-001"]
    assert purges["SUB-HPF-001"]["ended"] == "expired"

    # A purge happens once; later runs still skip, and say why.
    third = _run(capsys)
    assert {d["status"] for d in third["deliveries"]} == {"skipped"}
    assert len(_audit(engine, "purge")) == 2

    # Re-applying the workspace, which still declares it, keeps the revocation.
    catalog.apply_workspace(engine, scenario.root)
    with engine.connect() as conn:
        state = conn.execute(sa.select(tables.subscriptions.c.state).where(
            tables.subscriptions.c.id == "SUB-GSC-001")).scalar_one()
    assert state == "revoked"
    code, _, err = _govex(capsys, "audit", "verify")
    assert code == 0, err
    engine.dispose()


def test_revoke_over_the_api(scenario: Any) -> None:
    from fastapi.testclient import TestClient

    from exchange.web.app import create_app

    engine = scenario.store()
    secret = {f"{role}:{dept}": _token(engine, dept, role) for role, dept in (
        ("consumer", "gsc"), ("provider", "psb"), ("provider", "gsc"), ("admin", "psb"),
        ("authority", "gsc"), ("consumer", "hpf"))}

    def h(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret[who]}"}

    client = TestClient(create_app(engine, docs_dir=scenario.root / "docs"))
    url = "/api/v1/subscriptions/SUB-GSC-001/revoke"
    for who in ("consumer:gsc", "provider:gsc", "admin:psb"):
        assert client.post(url, json={"reason": "x"}, headers=h(who)).status_code == 403, who
    assert client.post(url, json={}, headers=h("provider:psb")).status_code == 422
    assert client.post(url, json={"reason": " "}, headers=h("provider:psb")).status_code == 422
    assert client.post("/api/v1/subscriptions/SUB-NOPE/revoke", json={"reason": "x"},
                       headers=h("provider:psb")).status_code == 404
    mine = {s["id"]: s for s in client.get("/api/v1/subscriptions",
                                           headers=h("consumer:gsc")).json()}
    assert mine["SUB-GSC-001"]["state"] == "active"
    assert mine["SUB-GSC-001"]["ended_at"] is None

    done = client.post(url, json={"reason": "不再需要"}, headers=h("provider:psb"))
    assert done.status_code == 200, done.text
    assert done.json()["ended_by"] == "psb/provider"
    assert client.post(url, json={"reason": "again"}, headers=h("provider:psb")).status_code == 409
    assert client.post("/api/v1/subscriptions/SUB-HPF-001/revoke", json={"reason": "监管要求"},
                       headers=h("authority:gsc")).status_code == 200

    mine = {s["id"]: s for s in client.get("/api/v1/subscriptions",
                                           headers=h("consumer:gsc")).json()}
    assert (mine["SUB-GSC-001"]["state"], mine["SUB-GSC-001"]["reason"]) == ("revoked", "不再需要")
    assert mine["SUB-GSC-001"]["ended_at"]
    assert mine["SUB-GSC-002"]["state"] == "active"
    hpf = client.get("/api/v1/subscriptions", headers=h("consumer:hpf")).json()
    assert [(s["id"], s["state"], s["ended_by"]) for s in hpf] == [
        ("SUB-HPF-001", "revoked", "gsc/authority")]
    engine.dispose()
