"""`govex ingest` against the embedded broker: envelopes land once, the rest goes to the DLQ.

A small workspace has one Kafka-fed resource (TAX-RES-001, key uscc, fed over a two-partition
topic); a tmp SQLite file is the metadata store. The worker runs in-process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

import catalog
from exchange.cli import ingest as ingest_command
from exchange.demo.broker import EmbeddedBroker, free_port
from exchange.ingest import run_ingest
from exchange.store import create_store_engine, upgrade
from govex.errors import FatalError

pytestmark = pytest.mark.integration

CODE = "TAX-RES-001"
TOPIC = f"govex.ingest.{CODE}"
DLQ = f"govex.dlq.{CODE}"
LANDING = "landing_tax_res_001"
LIMIT = 4096  # bytes per message in these tests (the default is 1 MiB)

CONTRACT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["uscc", "name", "capital"],
    "properties": {
        "uscc": {"type": "string", "pattern": "^[0-9A-Z]{18}$"},
        "name": {"type": "string", "maxLength": 50},
        "capital": {"type": "integer", "minimum": 0},
        "registered_on": {"type": "string", "format": "date"},
        "active": {"type": "boolean"},
    },
}


def write_workspace(root: Path, bootstrap: str) -> None:
    root.mkdir(parents=True)
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "tax", "name": "市税务局"},
    ]}, allow_unicode=True))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "tax_kafka": {"kafka": bootstrap},
    }}))
    (root / "contracts" / "taxpayer").mkdir(parents=True)
    (root / "contracts" / "taxpayer" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    (root / "resources").mkdir()
    (root / "resources" / "tax.yaml").write_text(yaml.safe_dump({
        "code": CODE, "name": "纳税人登记信息", "provider": "tax",
        "contract": "taxpayer@1.0.0", "key": ["uscc"],
        "elements": {"uscc": "enterprise.uscc"},
        "source": {"connection": "tax_kafka", "kafka": {}},
        "sharing": "conditional", "classification": "L2", "update_frequency": "PT1M",
        "quality": {"max_error_rate": 0.5, "expectations": [
            {"type": "ExpectColumnValuesToBeBetween",
             "kwargs": {"column": "capital", "min_value": 0, "max_value": 1_000_000_000}},
        ]},
    }, allow_unicode=True))


@dataclass
class Setup:
    store: sa.Engine
    bootstrap: str


def make_setup(broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               *, create_topic: bool = True, url: str | None = None) -> Setup:
    monkeypatch.delenv("GOVEX_KAFKA_BOOTSTRAP", raising=False)
    url = url or f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("GOVEX_DB_URL", url)
    write_workspace(tmp_path / "ws", broker.bootstrap)
    engine = create_store_engine(url)
    upgrade(engine)
    catalog.apply_workspace(engine, tmp_path / "ws")
    if create_topic:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
        finally:
            admin.close()
    return Setup(engine, broker.bootstrap)


@pytest.fixture
def setup(kafka_broker: EmbeddedBroker, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    made = make_setup(kafka_broker, tmp_path, monkeypatch)
    yield made
    made.store.dispose()


def uscc(i: int) -> str:
    return f"91110000{i:010d}"


def envelope(i: int, *, op: str = "upsert", message_id: str | None = None,
             **data: Any) -> dict[str, Any]:
    record = {"uscc": uscc(i), "name": f"企业{i}", "capital": 1000 * i,
              "registered_on": "2020-01-02", "active": True, **data}
    return {
        "message_id": message_id or str(uuid.uuid4()), "resource": CODE,
        "contract_version": "1.0.0", "op": op, "key": {"uscc": uscc(i)},
        "data": record if op == "upsert" else {}, "source_system": "tax-vertical",
        "event_time": "2026-11-27T08:00:00Z",
    }


def produce(bootstrap: str, messages: list[tuple[str, bytes]]) -> None:
    """Send (key, value) pairs in order; the key picks the partition, as producers must."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for key, value in messages:
            producer.send(TOPIC, key=key.encode(), value=value)
        producer.flush(timeout=10)
    finally:
        producer.close()


def encode(env: dict[str, Any]) -> tuple[str, bytes]:
    return env["key"].get("uscc", "x"), json.dumps(env, ensure_ascii=False).encode()


def read_dlq(bootstrap: str, count: int, timeout: float = 10.0) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(DLQ) or {0}
        tps = [TopicPartition(DLQ, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
            if len(records) >= count:
                # one more short poll: nothing beyond `count` may be there
                for batch in consumer.poll(timeout_ms=300).values():
                    records.extend(batch)
                break
        return records
    finally:
        consumer.close()


def landing(store: sa.Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.text(f"SELECT * FROM {LANDING} ORDER BY _govex_seq")).mappings()]


def stored_offsets(store: sa.Engine) -> dict[int, int]:
    with store.connect() as conn:
        return {p: o for p, o in conn.execute(sa.text(
            "SELECT partition, next_offset FROM ingest_offsets WHERE resource = :r"),
            {"r": CODE})}


def ingest(setup: Setup, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("idle_timeout", 10.0)
    (stats,) = run_ingest(setup.store, batch_wait=0.2, max_message_bytes=LIMIT, **kwargs)
    return stats.to_json()


def test_ingest_lands_valid_records_once_and_dead_letters_the_rest(setup: Setup) -> None:
    a, b = envelope(1), envelope(2)
    bad_contract = envelope(3, capital=-5)
    wrong_envelope = {k: v for k, v in envelope(4).items() if k != "source_system"}
    other = {**envelope(5), "resource": "PSB-RES-001"}
    oversized = envelope(6, name="x" * LIMIT)
    delete_b = envelope(2, op="delete")
    too_rich = envelope(7, capital=5_000_000_000)  # fails the declared expectation (GE)
    too_big = envelope(8, capital=2**70)  # valid JSON Schema integer, no 64-bit column
    messages = [
        encode(a), encode(b),
        ("bad", b"{not json"),
        ("bad", b"\xff\xfe not utf-8"),
        encode(wrong_envelope), encode(other), encode(bad_contract), encode(oversized),
        encode(a),  # the same message again: lands once
        encode(delete_b), encode(too_rich), encode(too_big),
    ]
    produce(setup.bootstrap, messages)

    stats = ingest(setup, max_messages=len(messages))
    assert stats == {"resource": CODE, "consumed": 12, "landed": 3, "rejected": 8,
                     "duplicates": 1}

    rows = landing(setup.store)
    assert sorted((r["_govex_message_id"], r["_govex_op"]) for r in rows) == sorted([
        (a["message_id"], "upsert"), (b["message_id"], "upsert"),
        (delete_b["message_id"], "delete"),
    ])
    by_id = {r["_govex_message_id"]: r for r in rows}
    assert by_id[a["message_id"]]["uscc"] == uscc(1)
    assert by_id[a["message_id"]]["_govex_key"] == uscc(1)
    assert by_id[a["message_id"]]["capital"] == "1000"
    assert by_id[a["message_id"]]["active"] == "true"
    assert by_id[delete_b["message_id"]]["uscc"] == uscc(2)
    assert by_id[delete_b["message_id"]]["name"] is None
    # Per-key order: uscc(2)'s delete lands after its upsert (same partition, later offset).
    assert [r["_govex_op"] for r in rows if r["_govex_key"] == uscc(2)] == ["upsert", "delete"]

    dead = read_dlq(setup.bootstrap, 8)
    assert len(dead) == 8
    errors: dict[str, str] = {}
    for record in dead:
        headers = dict(record.headers)
        assert set(headers) >= {"govex-error", "govex-message-id"}
        errors[headers["govex-message-id"].decode()] = headers["govex-error"].decode()
    assert "not the govex envelope (missing source_system)" in errors[
        wrong_envelope["message_id"]]
    assert "for resource PSB-RES-001" in errors[other["message_id"]]
    assert "minimum" in errors[bad_contract["message_id"]]
    assert errors[too_rich["message_id"]].startswith(f"quality gate of {CODE}:")
    assert "capital" in errors[too_rich["message_id"]]
    assert "does not fit its type" in errors[too_big["message_id"]]
    # Unreadable (or too big to read) messages are named by topic/partition/offset.
    unnamed = sorted(e for m, e in errors.items() if m.startswith(f"{TOPIC}/"))
    assert len(unnamed) == 3
    assert unnamed[0].startswith("message is not UTF-8")
    assert unnamed[1].startswith("message is not valid JSON")
    assert unnamed[2].startswith("message of ")
    assert unnamed[2].endswith("bytes exceeds the 4096-byte limit")
    assert oversized["message_id"] not in errors

    offsets = stored_offsets(setup.store)
    assert sum(offsets.values()) == len(messages)
    with setup.store.connect() as conn:
        quarantined = conn.execute(sa.text(
            "SELECT count(*) FROM quality_quarantine WHERE resource = :r"), {"r": CODE}
        ).scalar_one()
    assert quarantined == 8

    # Nothing new: a second run (through the command) consumes and lands nothing.
    parser = argparse.ArgumentParser()
    ingest_command.register(parser.add_subparsers())
    args = parser.parse_args(["ingest", "--idle-timeout", "0.5", "--json"])
    assert args.handler(args) == 0
    assert len(landing(setup.store)) == 3
    assert stored_offsets(setup.store) == offsets


def test_restart_continues_from_the_stored_offsets(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    first = [envelope(i) for i in range(1, 5)]
    produce(setup.bootstrap, [encode(e) for e in first])
    assert ingest(setup, max_messages=2)["landed"] == 2  # stop half-way
    assert ingest(setup, idle_timeout=1.0)["landed"] == 2  # the rest, after a "restart"

    later = [envelope(1, name="新名称"), envelope(5), envelope(3, op="delete")]
    produce(setup.bootstrap, [encode(e) for e in later])
    parser = argparse.ArgumentParser()
    ingest_command.register(parser.add_subparsers())
    args = parser.parse_args(["ingest", "--resource", CODE, "--max-messages", "3"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert CODE in out
    assert "CONSUMED" in out

    rows = landing(setup.store)
    ids = [r["_govex_message_id"] for r in rows]
    assert sorted(ids) == sorted(e["message_id"] for e in first + later)
    assert len(set(ids)) == len(ids)
    # Per-key order: uscc(1)'s update lands after its first version.
    one = [r["name"] for r in rows if r["uscc"] == uscc(1)]
    assert one == ["企业1", "新名称"]
    assert sum(stored_offsets(setup.store).values()) == 7
    assert ingest(setup, idle_timeout=0.5)["consumed"] == 0


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_message_landed_by_an_earlier_batch_is_skipped(
    store: str, kafka_broker: EmbeddedBroker, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:
    url = request.getfixturevalue("pg_url") if store == "postgresql" else None
    made = make_setup(kafka_broker, tmp_path, monkeypatch, url=url)
    try:
        a, b, c = envelope(1), envelope(2), envelope(3)
        produce(made.bootstrap, [encode(a), encode(b)])
        assert ingest(made, max_messages=2)["landed"] == 2
        # The producer re-sends a and b (a retry after a lost acknowledgement, say).
        produce(made.bootstrap, [encode(b), encode(c), encode(a)])
        assert ingest(made, max_messages=3) == {
            "resource": CODE, "consumed": 3, "landed": 1, "rejected": 0, "duplicates": 2}
        rows = landing(made.store)
        assert sorted(r["_govex_message_id"] for r in rows) == sorted(
            e["message_id"] for e in (a, b, c))
        # Written past SQLAlchemy's insert, read back through its DateTime type.
        with made.store.connect() as conn:
            landed_at = conn.execute(sa.select(
                sa.column("_govex_landed_at", sa.DateTime(timezone=True))
            ).select_from(sa.table(LANDING)).limit(1)).scalar_one()
        assert isinstance(landed_at, dt.datetime)
        assert abs(landed_at.replace(tzinfo=landed_at.tzinfo or dt.UTC)
                   - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    finally:
        made.store.dispose()


def test_unreachable_broker_is_one_clear_error(setup: Setup) -> None:
    started = time.monotonic()
    with pytest.raises(FatalError, match="cannot reach the Kafka broker at 127.0.0.1:"):
        run_ingest(setup.store, bootstrap=f"127.0.0.1:{free_port()}", idle_timeout=1.0)
    assert time.monotonic() - started < 10


def test_missing_topic_is_waited_for_until_idle(
    kafka_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_setup(kafka_broker, tmp_path, monkeypatch, create_topic=False)
    started = time.monotonic()
    try:
        assert ingest(made, idle_timeout=1.0)["consumed"] == 0
    finally:
        made.store.dispose()
    assert time.monotonic() - started < 10


def test_migration_matches_the_offsets_table(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from exchange.ingest import tables as ingest_tables

    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), ingest_tables.metadata)
            assert sa.inspect(conn).has_table("ingest_offsets")
    finally:
        engine.dispose()
    # Other packages' tables (and their indexes) are not in this metadata: ignore them.
    assert [d for d in diff if d[0] not in ("remove_table", "remove_index")] == []
