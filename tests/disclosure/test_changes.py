"""Disclosure after the checklist changed: a delete that reached the consumers, a revoked
subscription, and subscriptions removed from the workspace (shown from their last delivery's
lineage event, else from their metering rows)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import records
from exchange.cli import main
from exchange.run import ending
from exchange.store import Principal
from records.provenance_tables import latest
from tests.disclosure.city import City, build_city, id_number, subscriptions
from tests.disclosure.conftest import record_verification

PERSON = id_number(3)


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> City:
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    built = build_city(tmp_path, people=20)
    monkeypatch.setenv("GOVEX_DB_URL", built.store_url)
    return built


def _by_sub(city: City, key: str = PERSON) -> dict[str, list[dict[str, Any]]]:
    engine = city.store()
    try:
        found = records.disclosure(engine, "PSB-RES-001", key)
    finally:
        engine.dispose()
    items: dict[str, list[dict[str, Any]]] = {}
    for item in found["disclosures"]:
        items.setdefault(item["subscription"], []).append(item)
    return items


def test_a_delete_that_reached_the_consumers(city: City) -> None:
    city.run("PSB-RES-001")
    city.execute("psb_db", "DELETE FROM residents WHERE id_no = :k", k=PERSON)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "PSB-RES-001", "--reconcile", "--json"]) == 0
    assert json.loads(out.getvalue())["status"] == "success"
    gsc = _by_sub(city)["SUB-GSC-001"]
    assert [i["action"] for i in gsc] == ["deleted", "delivered"]  # newest first
    assert gsc[0]["fields"] == []  # a delete carries the key alone
    assert gsc[1]["fields"] == ["id_no", "name", "birth_date", "score", "updated_at"]
    assert gsc[0]["run_id"] != gsc[1]["run_id"]


def test_a_revoked_subscription(city: City) -> None:
    city.run("PSB-RES-001")
    engine = city.store()
    try:
        with engine.begin() as conn:
            ending.revoke(conn, "SUB-HPF-001", Principal("psb", "provider"), "不再需要")
    finally:
        engine.dispose()
    hpf = _by_sub(city)["SUB-HPF-001"]
    assert [(i["subscription_state"], i["declared_in"], i["consumer"]) for i in hpf] == [
        ("revoked", "catalog", "hpf")]


def test_removed_subscriptions_are_shown_from_what_is_left(city: City) -> None:
    city.run("PSB-RES-001")
    record_verification(city.store(), PERSON)
    kept = [s for s in subscriptions() if s["id"] not in ("SUB-STA-001", "SUB-GSC-VER")]
    city.write(kept)
    assert city.apply().applied
    items = _by_sub(city)
    stats = items["SUB-STA-001"][0]
    assert {k: stats[k] for k in ("consumer", "fields", "masking", "purpose",
                                  "subscription_state", "declared_in", "delivery")} == {
        "consumer": "stats", "fields": ["name", "phone"], "masking": {},
        "purpose": "stats 办事核对", "subscription_state": "removed", "declared_in": "lineage",
        "delivery": "bulk"}
    verified = items["SUB-GSC-VER"][0]
    # A verify subscription leaves no lineage: its consumer from its metering, the fields
    # asked from the verification itself, nothing else.
    assert {k: verified[k] for k in ("action", "consumer", "fields", "purpose",
                                     "subscription_state", "declared_in", "delivery")} == {
        "action": "verified", "consumer": "gsc", "fields": ["name", "birth_date"],
        "purpose": None, "subscription_state": "removed", "declared_in": None,
        "delivery": "verify"}
    # The others are as declared.
    assert items["SUB-GSC-001"][0]["declared_in"] == "catalog"


def test_removed_without_lineage(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lineage switched off during the delivery: only the metering rows name the consumer."""
    monkeypatch.setenv("GOVEX_LINEAGE_DISABLED", "true")
    city.run("PSB-RES-001")
    city.write([s for s in subscriptions() if s["id"] != "SUB-EDU-001"])
    city.apply()
    edu = _by_sub(city)["SUB-EDU-001"][0]
    assert {k: edu[k] for k in ("action", "consumer", "fields", "masking", "purpose",
                                "subscription_state", "declared_in")} == {
        "action": "delivered", "consumer": "edu", "fields": None, "masking": None,
        "purpose": None, "subscription_state": "removed", "declared_in": None}


def test_the_job_name_is_lineages() -> None:
    """records names a delivery's OpenLineage job without importing lineage: the same name."""
    import importlib

    import lineage

    disclosure = importlib.import_module("records.disclosure")
    assert disclosure._delivery_job("PSB-RES-001", "SUB-A") == lineage.delivery_job_name(  # noqa: SLF001
        "PSB-RES-001", "SUB-A")
    assert disclosure._GOVEX_NAMESPACE == lineage.JOB_NAMESPACE  # noqa: SLF001


def test_a_delivery_kept_beyond_retention(city: City) -> None:
    """Retention dropped an old month: the subscription's last delivery of the record then is
    kept (`lineage_provenance_latest`) and disclosed, marked as such."""
    city.run("PSB-RES-001")
    engine = city.store()
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(latest).values(
                resource="PSB-RES-001", record_key=PERSON, subscription="SUB-HPF-001", id=0,
                run_id="00000000-0000-7000-8000-000000000000", value_hash="0123456789abcdef",
                delivered_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    finally:
        engine.dispose()
    hpf = _by_sub(city)["SUB-HPF-001"]
    assert [(i["action"], i["beyond_retention"]) for i in hpf] == [
        ("delivered", False), ("delivered", True)]  # newest first
    assert hpf[1]["at"] == "2020-01-01T00:00:00+00:00"
    assert hpf[1]["fields"] == ["id_no", "phone"]
