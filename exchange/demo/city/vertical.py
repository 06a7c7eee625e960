"""The demo city's vertical system: the tax ministry's system pushes credit ratings over Kafka.

It produces the envelopes of `tax_credit_messages` to `govex.ingest.TAX-RES-001` (message key =
the record key), in small bursts, the way a real upstream system trickles changes in. Like a
real one it is not perfect: besides the records with planted defects (the quality gate rejects
them), it sends a few messages that are not govex envelopes at all and one message twice, so the
demo shows the dead-letter queue and exactly-once landing at work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TOPIC = "govex.ingest.TAX-RES-001"
SOURCE_SYSTEM = "tax-vertical"


@dataclass(frozen=True)
class Pushed:
    """What the vertical system sent: every message counts, the broken ones included."""

    messages: int
    broken: int
    duplicates: int


def broken_messages() -> list[tuple[bytes | None, bytes]]:
    """Messages no govex envelope parser accepts, each for a different reason."""
    return [
        (b"broken-1", b'{"message_id": "tax-broken-1", "resource": '),  # cut off: not JSON
        (b"broken-2", json.dumps({"message_id": "tax-broken-2", "hello": "world"}).encode()),
        (b"broken-3", "纳税信用等级".encode("gb18030")),  # not UTF-8
    ]


def push(
    bootstrap: str, envelopes: Sequence[dict[str, Any]], *, burst: int = 100,
    pause: float = 0.05,
) -> Pushed:
    """Produce `envelopes` (one repeated, then the broken ones) and wait until the broker has
    them all; returns what was sent."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=SOURCE_SYSTEM)
    try:  # two partitions: records of one key stay in order on one of them
        admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                             client_id=SOURCE_SYSTEM, linger_ms=5)
    try:
        sent = 0
        items: list[tuple[bytes | None, bytes]] = [
            (",".join(str(v) for v in e["key"].values()).encode(),
             json.dumps(e, ensure_ascii=False).encode())
            for e in envelopes
        ]
        duplicates = 1 if items else 0
        items += items[:duplicates]  # a retry after a lost acknowledgement
        broken = broken_messages()
        items += broken
        for start in range(0, len(items), burst):
            for key, value in items[start:start + burst]:
                producer.send(TOPIC, key=key, value=value)
                sent += 1
            producer.flush(timeout=30)
            time.sleep(pause)
        return Pushed(messages=sent, broken=len(broken), duplicates=duplicates)
    finally:
        producer.close(timeout=5)
