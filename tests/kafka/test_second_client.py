"""A second, independent Kafka client produces to `govex ingest`: confluent-kafka (librdkafka).

kafka-python is what govex itself uses, so the main ingest tests could hide a quirk the two
share. Here every kind of message a vertical system may send — valid upserts, a delete, a
duplicate, malformed JSON, a wrong envelope, a contract violation, a gate failure — is produced
by librdkafka (its own partitioner, batching and header encoding), and the worker must land and
dead-letter exactly as it does for kafka-python.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.kafka.test_ingest import (
    CODE,
    DLQ,
    TOPIC,
    Setup,
    envelope,
    ingest,
    landing,
    read_dlq,
    setup,  # noqa: F401 - the fixture, shared with the kafka-python tests
    uscc,
)

pytestmark = pytest.mark.integration


def produce_with_librdkafka(bootstrap: str, messages: list[tuple[str, bytes]]) -> None:
    """Send (key, value) pairs with librdkafka's default (murmur2-compatible) partitioning
    and wait until the broker acknowledged every one."""
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "partitioner": "murmur2_random", "linger.ms": 5})
    for key, value in messages:
        producer.produce(TOPIC, key=key.encode(), value=value, on_delivery=delivered,
                         headers=[("producer", b"librdkafka")])
    assert producer.flush(15) == 0, "librdkafka could not deliver everything"
    assert failures == []


def encoded(env: dict[str, Any]) -> tuple[str, bytes]:
    return env["key"]["uscc"], json.dumps(env, ensure_ascii=False).encode()


def test_librdkafka_producer_lands_and_dead_letters_like_kafka_python(setup: Setup) -> None:  # noqa: F811
    a, b, c = envelope(1), envelope(2), envelope(3)
    update_a = envelope(1, capital=9999)
    delete_b = envelope(2, op="delete")
    bad_contract = envelope(4, name="x" * 80)  # maxLength 50
    too_rich = envelope(5, capital=5_000_000_000)  # the declared GE expectation
    wrong_envelope = {k: v for k, v in envelope(6).items() if k != "event_time"}
    messages = [
        encoded(a), encoded(b), encoded(c),
        (uscc(9), b'{"message_id": "m-9", "resource": '),  # cut off
        encoded(wrong_envelope), encoded(bad_contract), encoded(too_rich),
        encoded(c),  # the same message again
        encoded(update_a), encoded(delete_b),
    ]
    produce_with_librdkafka(setup.bootstrap, messages)

    stats = ingest(setup, max_messages=len(messages))
    assert stats == {"resource": CODE, "consumed": 10, "landed": 5, "rejected": 4,
                     "duplicates": 1}

    rows = landing(setup.store)
    by_key: dict[str, list[tuple[str, str | None]]] = {}
    for row in rows:
        by_key.setdefault(row["_govex_key"], []).append((row["_govex_op"], row["capital"]))
    # Per-key order survives librdkafka's partitioning: one key, one partition, in order.
    assert by_key == {
        uscc(1): [("upsert", "1000"), ("upsert", "9999")],
        uscc(2): [("upsert", "2000"), ("delete", None)],
        uscc(3): [("upsert", "3000")],
    }

    dead = read_dlq(setup.bootstrap, 4)
    assert len(dead) == 4
    reasons = {
        dict(r.headers)["govex-message-id"].decode(): dict(r.headers)["govex-error"].decode()
        for r in dead
    }
    assert "not valid JSON" in next(v for k, v in reasons.items() if k.startswith(TOPIC))
    assert "missing event_time" in reasons[wrong_envelope["message_id"]]
    assert "maxLength" in reasons[bad_contract["message_id"]]
    assert "capital" in reasons[too_rich["message_id"]]
    assert all(r.topic == DLQ for r in dead)
