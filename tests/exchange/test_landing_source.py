"""A Kafka-fed resource's landing table is the source of its exchange run.

Rows are landed the way `govex ingest` lands them (contract fields as JSON-spelled text, one row
per message, increasing `_govex_seq`), then `govex run` delivers the latest state per key to
PostgreSQL subscribers: upserts and deletes to upsert and snapshot targets, history to append
targets, and on the next run exactly what landed since.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml

import catalog
import records
from exchange.ingest import landing_table
from exchange.run import steps
from exchange.store import create_store_engine, upgrade
from tests.exchange.test_leases import expire
from tests.kafka.test_ingest import CODE, CONTRACT, uscc  # the pushed resource of the ingest tests

pytestmark = pytest.mark.integration

SUBSCRIPTIONS = [
    {"id": "SUB-UPSERT", "consumer": "gsc", "mode": "upsert",
     "fields": ["uscc", "name", "capital", "registered_on", "active"],
     "masking": {"name": "mask_name"}, "target": {"connection": "gsc_db", "table": "t_upsert"}},
    {"id": "SUB-SNAPSHOT", "consumer": "gsc", "mode": "snapshot", "fields": ["uscc", "capital"],
     "target": {"connection": "gsc_db", "table": "t_snapshot"}},
    {"id": "SUB-APPEND", "consumer": "gsc", "mode": "append", "fields": ["uscc", "capital"],
     "target": {"connection": "gsc_db", "table": "t_append"}},
    {"id": "SUB-HIDDEN-KEY", "consumer": "gsc", "mode": "upsert", "fields": ["capital"],
     "target": {"connection": "gsc_db", "table": "t_hidden"}},
]


def write_workspace(root: Path, target_url: str) -> None:
    root.mkdir(parents=True)
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "tax", "name": "市税务局"}, {"code": "gsc", "name": "政务服务中心"},
    ]}, allow_unicode=True))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "tax_kafka": {"kafka": "127.0.0.1:9"}, "gsc_db": {"url": target_url},
    }}))
    (root / "contracts" / "taxpayer").mkdir(parents=True)
    (root / "contracts" / "taxpayer" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    (root / "resources").mkdir()
    (root / "resources" / "tax.yaml").write_text(yaml.safe_dump({
        "code": CODE, "name": "纳税人登记信息", "provider": "tax",
        "contract": "taxpayer@1.0.0", "key": ["uscc"], "elements": {"uscc": "enterprise.uscc"},
        "source": {"connection": "tax_kafka", "kafka": {}},
        "sharing": "unconditional", "classification": "L2", "update_frequency": "PT1M",
        "quality": {"max_error_rate": 0.5},
    }, allow_unicode=True))
    (root / "subscriptions").mkdir()
    for sub in SUBSCRIPTIONS:
        body = {"resource": CODE, "purpose": "测试", "valid_from": "2026-01-01",
                "valid_until": "2030-12-31", **sub}
        (root / "subscriptions" / f"{sub['id']}.yaml").write_text(
            yaml.safe_dump(body, allow_unicode=True))


class Landing:
    """Lands rows exactly as the ingest worker writes them."""

    def __init__(self, store: sa.Engine) -> None:
        with store.connect() as conn:
            contract = catalog.load_contract_version(conn, "taxpayer@1.0.0")
        self.store = store
        self.table = landing_table(CODE, contract)
        with store.begin() as conn:
            self.table.create(conn, checkfirst=True)
        self.offset = 0

    def land(self, *items: tuple[str, int, dict[str, Any] | None]) -> None:
        rows = []
        for op, i, data in items:
            values = data or {}
            row: dict[str, Any] = {name: None for name in CONTRACT["properties"]}
            row["uscc"] = uscc(i)
            for name, value in values.items():
                row[name] = value if isinstance(value, str) else json.dumps(value)
            row |= {"_govex_key": uscc(i), "_govex_op": op,
                    "_govex_message_id": str(uuid.uuid4()), "_govex_source_system": "tax-vertical",
                    "_govex_event_time": "2026-11-27T08:00:00Z", "_govex_partition": 0,
                    "_govex_offset": self.offset, "_govex_landed_at": dt.datetime.now(dt.UTC)}
            self.offset += 1
            rows.append(row)
        with self.store.begin() as conn:
            conn.execute(sa.insert(self.table), rows)


def upsert(i: int, capital: int, **extra: Any) -> tuple[str, int, dict[str, Any]]:
    return ("upsert", i, {"name": f"企业{i}", "capital": capital, "registered_on": "2020-01-02",
                          "active": True, **extra})


def delete(i: int) -> tuple[str, int, None]:
    return ("delete", i, None)


@pytest.fixture
def setup(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> tuple[sa.Engine, Landing]:
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    write_workspace(tmp_path / "ws", pg_url)
    store = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(store)
    catalog.apply_workspace(store, tmp_path / "ws")
    return store, Landing(store)


def rows(pg_url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
    finally:
        engine.dispose()


def capitals(pg_url: str, table: str) -> dict[str, int]:
    return {r["uscc"]: r["capital"] for r in rows(pg_url, table)}


def test_nothing_landed_yet_is_an_empty_successful_run(
    setup: tuple[sa.Engine, Landing],
) -> None:
    store, _ = setup
    summary = steps.run_resource(store, CODE)
    assert (summary.status, summary.read, summary.passed) == ("success", 0, 0)


def test_landed_records_reach_every_subscriber_then_only_the_changes(
    setup: tuple[sa.Engine, Landing], pg_url: str,
) -> None:
    store, landing = setup
    # Two versions of record 1 in one run: only the latest counts.
    landing.land(upsert(1, 100), upsert(2, 200), upsert(3, 300), upsert(1, 150))
    first = steps.run_resource(store, CODE)
    assert (first.status, first.read, first.passed, first.quarantined) == ("success", 3, 3, 0)
    assert {d.subscription: d.delivered for d in first.deliveries} == {
        "SUB-UPSERT": 3, "SUB-SNAPSHOT": 3, "SUB-APPEND": 3, "SUB-HIDDEN-KEY": 3}
    expected = {uscc(1): 150, uscc(2): 200, uscc(3): 300}
    assert capitals(pg_url, "t_upsert") == expected
    assert capitals(pg_url, "t_snapshot") == expected
    upserted = {r["uscc"]: r for r in rows(pg_url, "t_upsert")}
    assert upserted[uscc(1)]["name"] != "企业1"  # masked for this subscriber
    assert upserted[uscc(1)]["registered_on"] == dt.date(2020, 1, 2)
    assert upserted[uscc(1)]["active"] is True
    assert len(rows(pg_url, "t_hidden")) == 3

    # Nothing new: nothing read, nothing delivered.
    idle = steps.run_resource(store, CODE)
    assert (idle.status, idle.read) == ("success", 0)

    # An update, a delete, a new record, and a record deleted then re-created.
    landing.land(upsert(2, 250), delete(3), upsert(4, 400), delete(1), upsert(1, 175))
    second = steps.run_resource(store, CODE)
    assert (second.status, second.read, second.passed) == ("success", 4, 4)
    expected = {uscc(1): 175, uscc(2): 250, uscc(4): 400}
    assert capitals(pg_url, "t_upsert") == expected
    assert capitals(pg_url, "t_snapshot") == expected
    assert len(rows(pg_url, "t_hidden")) == 3  # the hashed stand-in key finds record 3 too
    appended = sorted((r["uscc"], r["capital"]) for r in rows(pg_url, "t_append"))
    assert appended == sorted([(uscc(1), 150), (uscc(2), 200), (uscc(3), 300),
                               (uscc(2), 250), (uscc(4), 400), (uscc(1), 175)])


def test_a_full_run_rebuilds_snapshots_from_the_latest_state(
    setup: tuple[sa.Engine, Landing], pg_url: str,
) -> None:
    store, landing = setup
    landing.land(upsert(1, 100), upsert(2, 200))
    steps.run_resource(store, CODE)
    landing.land(delete(2), upsert(5, 500))
    steps.run_resource(store, CODE)
    full = steps.run_resource(store, CODE, full=True)
    assert (full.status, full.read) == ("success", 3)  # 1 and 5 upserted, 2 deleted
    assert capitals(pg_url, "t_snapshot") == {uscc(1): 100, uscc(5): 500}
    assert capitals(pg_url, "t_upsert") == {uscc(1): 100, uscc(5): 500}


def test_a_subscriber_added_later_gets_the_latest_state_of_every_key(
    setup: tuple[sa.Engine, Landing], pg_url: str, tmp_path: Path,
) -> None:
    """A backfill of a Kafka-fed resource: the latest landed row per key, deletes applied,
    to the new subscribers alone; the others get only what landed since the last run."""
    store, landing = setup
    landing.land(upsert(1, 100), upsert(2, 200), upsert(3, 300), upsert(1, 150))
    steps.run_resource(store, CODE)
    landing.land(upsert(2, 250), delete(3), upsert(4, 400), delete(1), upsert(1, 175), delete(4))
    steps.run_resource(store, CODE)
    appended = len(rows(pg_url, "t_append"))

    for sub in ({"id": "SUB-LATE", "mode": "upsert", "fields": ["uscc", "name", "capital"],
                 "target": {"connection": "gsc_db", "table": "t_late"}},
                {"id": "SUB-LATE-SNAP", "mode": "snapshot", "fields": ["uscc", "capital"],
                 "target": {"connection": "gsc_db", "table": "t_late_snapshot"}}):
        body = {"resource": CODE, "consumer": "gsc", "purpose": "测试",
                "valid_from": "2026-01-01", **sub}
        (tmp_path / "ws" / "subscriptions" / f"{sub['id']}.yaml").write_text(
            yaml.safe_dump(body, allow_unicode=True))
    catalog.apply_workspace(store, tmp_path / "ws")
    landing.land(upsert(5, 500))  # and something new for everyone
    summary = steps.run_resource(store, CODE)

    assert summary.status == "success"
    delivered = {d.subscription: (d.delivered, d.backfill) for d in summary.deliveries}
    assert delivered == {
        "SUB-UPSERT": (1, False), "SUB-SNAPSHOT": (1, False), "SUB-APPEND": (1, False),
        "SUB-HIDDEN-KEY": (1, False), "SUB-LATE": (3, True), "SUB-LATE-SNAP": (3, True),
    }
    current = {uscc(1): 175, uscc(2): 250, uscc(5): 500}  # 3 and 4 deleted, 1 re-created
    assert capitals(pg_url, "t_late") == current
    assert capitals(pg_url, "t_late_snapshot") == current
    assert capitals(pg_url, "t_upsert") == current
    assert {r["name"] for r in rows(pg_url, "t_late")} == {"企业1", "企业2", "企业5"}
    assert len(rows(pg_url, "t_append")) == appended + 1  # only record 5 appended again

    landing.land(delete(2))
    after = steps.run_resource(store, CODE)
    assert {d.subscription: (d.delivered, d.backfill) for d in after.deliveries
            if d.subscription.startswith("SUB-LATE")} == {
        "SUB-LATE": (1, False), "SUB-LATE-SNAP": (1, False)}
    assert capitals(pg_url, "t_late") == {uscc(1): 175, uscc(5): 500}


def test_a_landed_record_failing_the_gate_is_quarantined_not_delivered(
    setup: tuple[sa.Engine, Landing], pg_url: str,
) -> None:
    store, landing = setup
    landing.land(upsert(1, 100), upsert(2, -5))  # minimum 0: landed before a stricter gate
    summary = steps.run_resource(store, CODE)
    assert (summary.read, summary.passed, summary.quarantined) == (2, 1, 1)
    assert capitals(pg_url, "t_upsert") == {uscc(1): 100}


def test_the_landing_watcher_fires_when_records_land_beyond_what_was_delivered(
    setup: tuple[sa.Engine, Landing],
) -> None:
    from exchange.airflow.landing_trigger import LandingTrigger

    store, landing = setup
    url = store.url.render_as_string(hide_password=False)

    async def scenario() -> None:
        events: list[dict[str, Any]] = []

        async def collect(trigger: LandingTrigger) -> None:
            async for event in trigger.run():
                events.append(event.payload)

        async def settle(count: int) -> None:
            for _ in range(100):
                if len(events) >= count:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # and nothing more comes
            assert len(events) == count, events

        watching = asyncio.create_task(collect(LandingTrigger(CODE, 0.02, url)))
        await settle(0)  # nothing landed: silence
        landing.land(upsert(1, 100), upsert(2, 200))
        await settle(1)
        assert events[0] == {"resource": CODE, "landed_through": 2, "delivered_through": 0}
        steps.run_resource(store, CODE)  # the run the event started delivers through 2
        await settle(1)
        landing.land(upsert(3, 300))
        await settle(2)
        assert events[1]["landed_through"] == 3
        watching.cancel()

        # A restarted watcher fires at once for what still waits, and only then.
        events.clear()
        restarted = asyncio.create_task(collect(LandingTrigger(CODE, 0.02, url)))
        await settle(1)
        assert events[0] == {"resource": CODE, "landed_through": 3, "delivered_through": 2}
        restarted.cancel()

    asyncio.run(scenario())


def test_the_landing_watcher_serializes_without_credentials() -> None:
    from exchange.airflow.landing_trigger import LandingTrigger

    path, kwargs = LandingTrigger(CODE).serialize()
    assert path == "exchange.airflow.landing_trigger.LandingTrigger"
    assert kwargs == {"resource": CODE, "poke_interval": 5.0}
    assert LandingTrigger(**kwargs).serialize() == (path, kwargs)


def test_trace_reads_a_pushed_record_from_the_landing_table(
    setup: tuple[sa.Engine, Landing],
) -> None:

    store, landing = setup
    landing.land(upsert(1, 100), upsert(2, 200))
    steps.run_resource(store, CODE)
    first = records.trace(store, CODE, uscc(1))
    assert first["source"]["topic"] == f"govex.ingest.{CODE}"
    assert first["source"]["current_hash"] is not None
    assert {d["subscription"] for d in first["deliveries"]} == {
        "SUB-UPSERT", "SUB-SNAPSHOT", "SUB-APPEND", "SUB-HIDDEN-KEY"}
    assert records.trace(store, CODE, uscc(2))["source"]["current_hash"] not in (
        None, first["source"]["current_hash"])

    landing.land(upsert(1, 111))  # a newer version landed, not yet delivered
    assert records.trace(store, CODE, uscc(1))["source"]["current_hash"] not in (
        None, first["source"]["current_hash"])
    landing.land(delete(1))
    gone = records.trace(store, CODE, uscc(1))["source"]
    assert gone["current_hash"] is None
    assert "error" not in gone


def test_a_dispute_on_a_pushed_record_is_resolved_by_the_corrected_message(
    setup: tuple[sa.Engine, Landing], pg_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from exchange.cli import main

    store, landing = setup
    monkeypatch.setenv("GOVEX_DB_URL", store.url.render_as_string(hide_password=False))
    landing.land(upsert(1, 100), upsert(2, 200))
    steps.run_resource(store, CODE)
    capsys.readouterr()
    from exchange.store import tokens

    with store.begin() as conn:  # the CLI acts with tokens: the consumer's, the provider's
        consumer = tokens.create_token(conn, "gsc", "consumer")
        monkeypatch.setenv("GOVEX_TOKEN", tokens.create_token(conn, "tax", "provider"))
    assert main(["dispute", "open", CODE, uscc(1), "--field", "capital",
                 "--claim", "注册资本应为 120", "--token", consumer]) == 0
    dispute_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["dispute", "ack", dispute_id]) == 0

    landing.land(upsert(1, 120))  # the vertical system pushes the correction
    assert main(["dispute", "resolve", dispute_id]) == 0
    assert capitals(pg_url, "t_upsert")[uscc(1)] == 120
    assert capitals(pg_url, "t_snapshot")[uscc(1)] == 120
    capsys.readouterr()
    assert main(["dispute", "show", dispute_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "resolved"
    assert {e["subscription"] for e in shown["evidence"]["redelivered"]} >= {
        "SUB-UPSERT", "SUB-SNAPSHOT"}


def test_messages_refused_at_ingest_count_as_the_next_runs_quarantine(
    setup: tuple[sa.Engine, Landing], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`govex run`'s quarantined count equals what `govex quality quarantine` lists for the
    run; a refused record fixed by a later message leaves quarantine when its fix passes."""
    from exchange.cli import main
    from quality.tables import quarantine_table as q

    store, landing = setup
    monkeypatch.setenv("GOVEX_DB_URL", store.url.render_as_string(hide_password=False))
    now = dt.datetime.now(dt.UTC)
    with store.begin() as conn:  # as `govex ingest` quarantines refused messages
        for key in (uscc(1), "message:govex.ingest.TAX-RES-001/0/7"):
            conn.execute(sa.insert(q), {
                "resource": CODE, "record_key": key, "run_id": str(uuid.uuid4()),
                "failed_checks": [{"check": "minimum", "column": "capital"}],
                "record": {}, "first_seen": now, "last_seen": now,
            })
    landing.land(upsert(1, 100), upsert(2, 200))  # record 1's fix arrived later
    capsys.readouterr()
    assert main(["run", CODE, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["read"], summary["passed"], summary["quarantined"]) == (3, 2, 1)
    assert main(["quality", "quarantine", CODE, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(i["key"], i["run_id"]) for i in listed] == [
        ("message:govex.ingest.TAX-RES-001/0/7", summary["run_id"])]

    assert main(["run", CODE, "--json"]) == 0  # nothing new refused or landed
    again = json.loads(capsys.readouterr().out)
    assert (again["read"], again["quarantined"]) == (0, 0)


def test_landed_integers_read_back_exactly_whatever_their_json_spelling() -> None:
    from exchange.ingest.envelope import field_text
    from exchange.run.landing_source import _typed

    assert field_text(1.0) == "1"
    assert field_text(2.5) == "2.5"
    typed = _typed(["9007199254740993", "1.0", "1e3", None], pa.int64(), "n")
    assert typed.to_pylist() == [9007199254740993, 1, 1000, None]
    assert _typed(["true", None], pa.bool_(), "b").to_pylist() == [True, None]


def test_records_are_told_apart_by_their_key_columns_not_the_joined_key_text(
    setup: tuple[sa.Engine, Landing],
) -> None:
    from exchange.run.landing_source import read_landing

    store, landing = setup
    with store.connect() as conn:
        contract = catalog.load_contract_version(conn, "taxpayer@1.0.0")
    base = {"_govex_op": "upsert", "_govex_source_system": "s", "_govex_event_time": "t",
            "_govex_partition": 0, "_govex_landed_at": dt.datetime.now(dt.UTC),
            "capital": "1", "registered_on": None, "active": None}
    with store.begin() as conn:  # ("a,b", "c") and ("a", "b,c") both join to "a,b,c"
        conn.execute(sa.insert(landing.table), [
            base | {"uscc": "a,b", "name": "c", "_govex_key": "a,b,c",
                    "_govex_message_id": "m1", "_govex_offset": 1},
            base | {"uscc": "a", "name": "b,c", "_govex_key": "a,b,c",
                    "_govex_message_id": "m2", "_govex_offset": 2},
        ])
    [batch] = read_landing(store, CODE, contract, ("uscc", "name"), after=0, batch_rows=10)
    assert sorted(batch.upserts.column("name").to_pylist()) == ["b,c", "c"]


def test_a_superseded_run_delivers_nothing_more(setup: tuple[sa.Engine, Landing]) -> None:
    from govex.errors import FatalError

    store, landing = setup
    landing.land(upsert(1, 100))
    old = steps.start_run(store, CODE)
    steps.extract(store, old)
    steps.gate(store, old)
    expire(store, CODE)  # the old run's process died: its lease expired
    newer = steps.start_run(store, CODE)  # marks the old one failed: it never finished
    with pytest.raises(FatalError, match="not running"):
        steps.deliver(store, old, "SUB-UPSERT")
    assert steps.extract(store, newer) == 1


def test_an_in_memory_store_records_provenance_too(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`sqlite://` is one database per thread: provenance is written inline there."""

    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    write_workspace(tmp_path / "ws", pg_url)
    store = create_store_engine("sqlite://")
    upgrade(store)
    catalog.apply_workspace(store, tmp_path / "ws")
    Landing(store).land(upsert(1, 100))
    assert steps.run_resource(store, CODE).status == "success"
    assert len(records.trace(store, CODE, uscc(1))["deliveries"]) == 4


def test_on_postgresql_a_run_waits_for_rows_still_landing_below_the_highest_sequence(
    tmp_path: Path, pg_url: str,
) -> None:
    """Two ingest workers: seq 1 is inserted but not committed while seq 2 is. Reading up to
    seq 2 then would move the watermark past seq 1 for good; the read waits for it."""
    import threading

    from exchange.run.landing_source import read_landing

    write_workspace(tmp_path / "ws", pg_url)
    store = create_store_engine(pg_url)
    upgrade(store)
    catalog.apply_workspace(store, tmp_path / "ws")
    landing = Landing(store)
    with store.connect() as conn:
        contract = catalog.load_contract_version(conn, "taxpayer@1.0.0")
    slow = store.connect()
    slow.begin()
    slow.execute(sa.insert(landing.table), {  # worker A: seq 1, not committed yet
        "uscc": uscc(1), "name": "企业1", "capital": "1", "_govex_key": uscc(1),
        "_govex_op": "upsert", "_govex_message_id": "m-slow", "_govex_source_system": "s",
        "_govex_event_time": "t", "_govex_partition": 0, "_govex_offset": 0,
        "_govex_landed_at": dt.datetime.now(dt.UTC)})
    landing.land(upsert(2, 200))  # worker B: seq 2, committed
    read: list[Any] = []
    reader = threading.Thread(target=lambda: read.extend(
        read_landing(store, CODE, contract, ("uscc",), after=0, batch_rows=10)))
    reader.start()
    reader.join(0.5)
    assert reader.is_alive()  # waiting for worker A's transaction
    slow.commit()
    slow.close()
    reader.join(10)
    assert sorted(u for b in read for u in b.upserts.column("uscc").to_pylist()) == [
        uscc(1), uscc(2)]
    store.dispose()
