"""`govex ingest` against what a hostile or broken producer sends: text the store cannot hold,
values its JSON cannot spell, messages too big to copy into the DLQ, reasons that quote a
megabyte, a pattern built to backtrack. Each such message goes to the DLQ with one clear reason
and to quarantine; the good messages of its batch land; the worker carries on.

Stores: SQLite and PostgreSQL alike (PostgreSQL refuses NUL in text, which SQLite takes, so a
NUL must be refused before either sees it, for the two to behave the same).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Producer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import tests.kafka.test_ingest as ingest_tests
from exchange.demo.broker import EmbeddedBroker
from exchange.ingest import run_ingest
from exchange.ingest.envelope import MAX_MESSAGE_BYTES
from quality.tables import quarantine_table
from tests.kafka.test_ingest import (
    CODE,
    CONTRACT,
    LIMIT,
    TOPIC,
    Setup,
    envelope,
    ingest,
    landing,
    make_setup,
    produce,
    read_dlq,
    setup,  # noqa: F401 - the fixture, shared with the other ingest tests
    stored_offsets,
    uscc,
)
from tests.kafka.test_ingest_faults import finish, worker

pytestmark = pytest.mark.integration

NUL = "a NUL character (U+0000), which the store cannot hold"


def ascii_json(env: dict[str, Any]) -> tuple[str, bytes]:
    """(Kafka key, value) with every non-ASCII character escaped, as ASCII-only producers send
    JSON: the only way to put a lone surrogate into UTF-8 JSON text."""
    key = env["key"]["uscc"] if isinstance(env["key"].get("uscc"), str) else "x"
    return key.replace("\x00", ""), json.dumps(env).encode()


def dead_letters(bootstrap: str, count: int) -> dict[str, Any]:
    """The DLQ's records by their govex-message-id header (exactly `count` of them)."""
    dead = read_dlq(bootstrap, count)
    assert len(dead) == count, [dict(r.headers) for r in dead]
    by_id = {dict(r.headers)["govex-message-id"].decode(): r for r in dead}
    assert len(by_id) == count
    return by_id


def error(record: Any) -> str:
    return str(dict(record.headers)["govex-error"].decode())


def quarantine(store: sa.Engine) -> dict[str, dict[str, Any]]:
    """The resource's quarantine rows by record key (JSON columns decoded)."""
    q = quarantine_table
    with store.connect() as conn:
        rows = conn.execute(sa.select(q.c.record_key, q.c.failed_checks, q.c.record).where(
            q.c.resource == CODE)).all()
    return {key: {"failed_checks": checks, "record": record} for key, checks, record in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, kafka_broker: EmbeddedBroker, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Any:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    made = make_setup(kafka_broker, tmp_path, monkeypatch, url=url)
    yield made
    made.store.dispose()


# -- item 7: NUL and lone surrogates ---------------------------------------------------------


def test_text_the_store_cannot_hold_is_dead_lettered_and_the_batch_lands(
    any_store: Setup,
) -> None:
    """One batch, good messages among messages with a NUL or a lone surrogate somewhere: the
    good ones land, each bad one is in the DLQ and quarantine naming where, and the worker
    ends normally, on SQLite and PostgreSQL alike."""
    made = any_store
    good = [envelope(1), envelope(2), envelope(3)]
    # Holdable look-alikes: a backslash followed by "u0000" is text; an escaped surrogate
    # pair is one character (an emoji).
    backslash = envelope(4, name="C:\\u0000")
    emoji = envelope(5, name="企业\U0001f600")
    bad_key = envelope(13)
    bad_key["key"]["uscc"] = bad_key["data"]["uscc"] = "91110000\x000000013"
    bad_name = envelope(14)
    bad_name["data"]["na\x00me"] = "x"
    bad = {
        "data": envelope(10, name="企业\x00"),
        "message_id": {**envelope(11), "message_id": "id\x00"},
        "source_system": {**envelope(12), "source_system": "tax\x00"},
        "key": bad_key,
        "field name": bad_name,
        "surrogate": envelope(15, name="企业\ud800"),
        "low surrogate": {**envelope(16), "event_time": "2026-11-27T08:00:00Z\udc00"},
        "nested": envelope(17, name=["ok", "x\x00"]),
    }
    ordered = [good[0], bad["data"], backslash, bad["message_id"], good[1], bad["key"],
               bad["source_system"], bad["field name"], emoji, bad["surrogate"],
               bad["low surrogate"], bad["nested"], good[2]]
    produce(made.bootstrap, [ascii_json(e) for e in ordered])

    stats = ingest(made, max_messages=len(ordered))
    assert stats == {"resource": CODE, "consumed": len(ordered), "landed": 5,
                     "rejected": len(bad), "duplicates": 0}

    rows = {r["_govex_message_id"]: r for r in landing(made.store)}
    assert set(rows) == {e["message_id"] for e in [*good, backslash, emoji]}
    assert rows[backslash["message_id"]]["name"] == "C:\\u0000"
    assert rows[emoji["message_id"]]["name"] == "企业\U0001f600"
    assert sum(stored_offsets(made.store).values()) == len(ordered)

    dead = dead_letters(made.bootstrap, len(bad))
    # A message id that is itself bad is not repeated: the message is named by its position.
    (positional,) = [m for m in dead if m.startswith(f"{TOPIC}/")]
    assert error(dead[positional]) == f"a text value in message_id contains {NUL}"
    assert error(dead[bad["data"]["message_id"]]) == f"a text value in data.name contains {NUL}"
    assert error(dead[bad["source_system"]["message_id"]]) == (
        f"a text value in source_system contains {NUL}")
    assert error(dead[bad["key"]["message_id"]]) == f"a text value in key.uscc contains {NUL}"
    assert error(dead[bad["field name"]["message_id"]]) == f"a field name in data contains {NUL}"
    assert error(dead[bad["nested"]["message_id"]]) == (
        f"a text value in data.name[1] contains {NUL}")
    assert error(dead[bad["surrogate"]["message_id"]]) == (
        "a text value in data.name contains a lone surrogate (U+D800, not a Unicode "
        "character), which the store cannot hold")
    assert error(dead[bad["low surrogate"]["message_id"]]).startswith(
        "a text value in event_time contains a lone surrogate (U+DC00")
    # Each dead letter is the message as it came, to be fixed and replayed.
    sent = {e["message_id"]: ascii_json(e)[1] for e in bad.values()}
    for message_id, record in dead.items():
        if message_id != positional:
            assert record.value == sent[message_id]

    held = quarantine(made.store)
    assert len(held) == len(bad)
    # Data holding a NUL is not copied into quarantine (the DLQ has it); clean data is.
    assert held[uscc(10)]["record"] == {}
    assert held[uscc(10)]["failed_checks"][0] == {"check": "encoding", "column": "name"}
    assert held[uscc(12)]["record"]["name"] == "企业12"
    assert held[f"message:{bad['key']['message_id']}"]["failed_checks"][-1]["message"] == (
        f"a text value in key.uscc contains {NUL}")


# -- siblings: what a reject quotes must fit the store's JSON and the DLQ ----------------------


def test_rejects_quoting_values_json_cannot_spell_do_not_fail_the_batch(
    any_store: Setup,
) -> None:
    """1e999 is valid JSON text that parses to a float infinity, which PostgreSQL's json
    refuses. A value nested some 950 levels deep parses, but cannot be serialised again deeper
    in the stack (the quarantine's JSON). Both are rejected with their reasons, and the good
    messages land."""
    made = any_store
    good = [envelope(1), envelope(2)]
    huge = envelope(3)
    huge_value = json.dumps(huge).replace('"capital": 3000', '"capital": 1e999').encode()
    assert b"1e999" in huge_value
    depths = [65, 900, 930, 940, 950, 960, 970, 990]
    deep = []
    for depth in depths:
        nested = json.dumps(envelope(4)).replace('"name": "\\u4f01\\u4e1a4"',
                                                 '"name": ' + "[" * depth + "]" * depth)
        assert "[[[" in nested
        deep.append((uscc(4), nested.encode()))
    produce(made.bootstrap, [ascii_json(good[0]), (uscc(3), huge_value), *deep,
                             ascii_json(good[1])])

    stats = ingest(made, max_messages=len(deep) + 3)
    assert stats == {"resource": CODE, "consumed": len(deep) + 3, "landed": 2,
                     "rejected": len(deep) + 1, "duplicates": 0}
    assert {r["_govex_message_id"] for r in landing(made.store)} == {
        e["message_id"] for e in good}
    dead = dead_letters(made.bootstrap, len(deep) + 1)
    assert "capital" in error(dead[huge["message_id"]])
    # Too deep to look into: named by its position, like any message that is not usable JSON.
    positional = [m for m in dead if m.startswith(f"{TOPIC}/")]
    assert len(positional) == len(deep)
    assert {error(dead[m]) for m in positional} == {
        "message is not usable JSON (nested too deeply: more than 64 levels)"}
    held = quarantine(made.store)
    assert held[uscc(3)]["record"]["capital"] == "Infinity"
    assert held[uscc(3)]["record"]["name"] == "企业3"


def test_a_reason_quoting_a_megabyte_still_fits_the_dlq(
    setup: Setup,  # noqa: F811
) -> None:
    """A message just under the 1 MiB limit whose reason quotes most of it (its `resource`):
    the dead letter's headers stay small, so the DLQ takes its copy and the worker goes on."""
    wrong = {**envelope(1), "resource": "R" * 1_000_000}
    value = json.dumps(wrong).encode()
    assert len(value) < MAX_MESSAGE_BYTES
    producer = KafkaProducer(bootstrap_servers=setup.bootstrap,
                             max_request_size=2 * MAX_MESSAGE_BYTES)
    try:
        producer.send(TOPIC, key=uscc(1).encode(), value=value)
        producer.send(TOPIC, key=uscc(2).encode(), value=json.dumps(envelope(2)).encode())
        producer.flush(timeout=10)
    finally:
        producer.close()

    (stats,) = run_ingest(setup.store, max_messages=2, idle_timeout=10.0, batch_wait=0.2)
    assert stats.to_json() == {"resource": CODE, "consumed": 2, "landed": 1, "rejected": 1,
                               "duplicates": 0}
    (record,) = read_dlq(setup.bootstrap, 1)
    reason = error(record)
    assert reason.startswith("message is for resource RRRR")
    assert len(reason) == 500
    assert dict(record.headers)["govex-message-id"].decode() == wrong["message_id"]


# -- item 15: oversized messages, deletes ------------------------------------------------------


def original_of(bootstrap: str, topic: str, partition: int, offset: int) -> Any:
    """The message at `topic`/`partition`/`offset`, as an operator would fetch it."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                return records[0]
        pytest.fail(f"nothing at {topic}/{partition}/{offset}")
    finally:
        consumer.close()


def test_an_oversized_message_is_dead_lettered_as_a_reference_to_the_original(
    setup: Setup,  # noqa: F811
) -> None:
    """The DLQ cannot hold a copy of an oversized message (nor of one with neither key nor
    value, which Kafka clients cannot send): its dead letter references the original by topic,
    partition and offset instead, and every dead letter names those in its headers."""
    oversized = envelope(1, name="x" * LIMIT)
    bad_contract = envelope(2, capital=-5)
    produce(setup.bootstrap, [ascii_json(oversized), ascii_json(bad_contract),
                              ascii_json(envelope(3))])
    # Neither key nor value: kafka-python refuses to send that (and used to refuse its dead
    # letter, ending the worker); librdkafka sends it.
    empty = Producer({"bootstrap.servers": setup.bootstrap})
    empty.produce(TOPIC, value=None, key=None)
    assert empty.flush(10) == 0

    assert ingest(setup, max_messages=4) == {"resource": CODE, "consumed": 4, "landed": 1,
                                             "rejected": 3, "duplicates": 0}
    dead = read_dlq(setup.bootstrap, 3)
    assert len(dead) == 3
    by_error = {error(r): r for r in dead}
    for record in dead:
        headers = dict(record.headers)
        assert headers["govex-source-topic"] == TOPIC.encode()
        partition = int(headers["govex-source-partition"])
        offset = int(headers["govex-source-offset"])
        assert headers["govex-source"] == f"{partition}/{offset}".encode()
        original = original_of(setup.bootstrap, TOPIC, partition, offset)
        if headers["govex-value"] == b"original":
            assert record.value == original.value
            continue
        assert headers["govex-value"] == b"reference"
        assert json.loads(record.value) == {"original": {
            "topic": TOPIC, "partition": partition, "offset": offset,
            "value_bytes": None if original.value is None else len(original.value)}}
    (too_big,) = [r for e, r in by_error.items() if e.startswith("message of ")]
    assert dict(too_big.headers)["govex-value"] == b"reference"
    assert too_big.key == uscc(1).encode()
    headers = dict(too_big.headers)
    # The operator's way back to the original: it is the oversized message, byte for byte.
    original = original_of(setup.bootstrap, headers["govex-source-topic"].decode(),
                           int(headers["govex-source-partition"]),
                           int(headers["govex-source-offset"]))
    assert original.value == ascii_json(oversized)[1]
    (no_value,) = [r for e, r in by_error.items() if e == "empty message (no value)"]
    assert dict(no_value.headers)["govex-value"] == b"reference"
    assert json.loads(no_value.value)["original"]["value_bytes"] is None
    (contract,) = [r for e, r in by_error.items() if "minimum" in e]
    assert dict(contract.headers)["govex-value"] == b"original"
    assert contract.value == ascii_json(bad_contract)[1]


def test_a_delete_needs_only_its_key(setup: Setup) -> None:  # noqa: F811
    """`data` carries no meaning for a delete: null, absent or an object, the delete lands as
    a delete of its key. An upsert still needs its data, and a delete's data, when present,
    must be an object or null."""
    a, b, c = envelope(1), envelope(2), envelope(3)
    null_data = {**envelope(1, op="delete"), "data": None}
    no_data = {k: v for k, v in envelope(2, op="delete").items() if k != "data"}
    empty_data = envelope(3, op="delete")
    upsert_null = {**envelope(4), "data": None}
    upsert_absent = {k: v for k, v in envelope(5).items() if k != "data"}
    delete_text = {**envelope(6, op="delete"), "data": "gone"}
    messages = [a, b, c, null_data, no_data, empty_data, upsert_null, upsert_absent,
                delete_text]
    produce(setup.bootstrap, [ascii_json(e) for e in messages])

    assert ingest(setup, max_messages=len(messages)) == {
        "resource": CODE, "consumed": len(messages), "landed": 6, "rejected": 3,
        "duplicates": 0}
    rows = landing(setup.store)
    deletes = {r["_govex_message_id"]: r for r in rows if r["_govex_op"] == "delete"}
    assert set(deletes) == {e["message_id"] for e in (null_data, no_data, empty_data)}
    for env in (null_data, no_data, empty_data):
        row = deletes[env["message_id"]]
        assert row["uscc"] == row["_govex_key"] == env["key"]["uscc"]
        assert row["name"] is None
    # Per key, the delete lands after the upsert it removes.
    for i in (1, 2, 3):
        assert [r["_govex_op"] for r in rows if r["_govex_key"] == uscc(i)] == [
            "upsert", "delete"]
    dead = dead_letters(setup.bootstrap, 3)
    assert error(dead[upsert_null["message_id"]]) == "envelope key and data must be JSON objects"
    assert error(dead[upsert_absent["message_id"]]) == "not the govex envelope (missing data)"
    assert error(dead[delete_text["message_id"]]) == "envelope key and data must be JSON objects"


# -- item 8: a pattern built to backtrack --------------------------------------------------------


def test_a_catastrophic_pattern_is_checked_in_linear_time(
    kafka_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`^(a+)+$` against 35 `a`s and a `!` takes Python's `re` hours; the worker (its own
    process, so a hang cannot hang the tests) must judge it at once and dead-letter it for
    its pattern, landing the good message beside it."""
    contract = json.loads(json.dumps(CONTRACT))
    contract["properties"]["name"] = {"type": "string", "pattern": "^(a+)+$"}
    monkeypatch.setattr(ingest_tests, "CONTRACT", contract)
    made = make_setup(kafka_broker, tmp_path, monkeypatch)
    try:
        good, evil = envelope(1, name="a" * 35), envelope(2, name="a" * 35 + "!")
        produce(made.bootstrap, [ascii_json(good), ascii_json(evil)])

        started = time.monotonic()
        code, out, err = finish(worker(str(made.store.url), made.bootstrap, tmp_path,
                                       "--max-messages", "2", "--idle-timeout", "10"),
                                timeout=60)
        assert code == 0, err
        # Start-up (the quality gate loads Great Expectations) included.
        assert time.monotonic() - started < 30
        assert json.loads(out)[0] == {"resource": CODE, "consumed": 2, "landed": 1,
                                      "rejected": 1, "duplicates": 0}
        assert [r["_govex_message_id"] for r in landing(made.store)] == [good["message_id"]]
        dead = dead_letters(made.bootstrap, 1)
        reason = error(dead[evil["message_id"]])
        assert reason.startswith("contract taxpayer@1.0.0: pattern on name: "), reason
        assert quarantine(made.store)[uscc(2)]["failed_checks"][0] == {
            "check": "pattern", "column": "name"}
    finally:
        made.store.dispose()
