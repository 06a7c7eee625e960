"""A broker that lost its log: `govex ingest --from-beginning` reads it again, landing nothing
twice.

The embedded broker keeps everything in memory, so a restart gives empty topics while the
store still holds the offsets of the old log; a topic deleted and created again does the same
on Apache Kafka. The stored offsets then point past the end and the broker need not say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from exchange.cli import main
from exchange.demo.broker import EmbeddedBroker
from tests.kafka.test_ingest import (
    TOPIC,
    Setup,
    encode,
    envelope,
    ingest,
    landing,
    produce,
    setup,  # noqa: F401 - the fixture, shared with the kafka-python tests
)

pytestmark = [pytest.mark.integration, pytest.mark.solo]


def test_from_beginning_rereads_a_new_log_and_lands_only_what_is_new(
    setup: Setup,  # noqa: F811
    tansu_binary: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    first = [envelope(i) for i in range(1, 6)]
    produce(setup.bootstrap, [encode(e) for e in first])
    assert ingest(setup, max_messages=5)["landed"] == 5

    with EmbeddedBroker(binary=tansu_binary) as fresh:
        admin = KafkaAdminClient(bootstrap_servers=fresh.bootstrap)
        try:
            admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
        finally:
            admin.close()
        # The vertical system sends everything again, plus two new records.
        again = [*first, envelope(6), envelope(7)]
        produce(fresh.bootstrap, [encode(e) for e in again])
        monkeypatch.setenv("GOVEX_KAFKA_BOOTSTRAP", fresh.bootstrap)

        def run(*flags: str) -> dict[str, int]:
            capsys.readouterr()
            assert main(["ingest", "--idle-timeout", "2", "--json", *flags]) == 0
            [stats] = json.loads(capsys.readouterr().out)
            return {k: v for k, v in stats.items() if k != "resource"}

        assert run("--from-beginning") == {
            "consumed": 7, "landed": 2, "rejected": 0, "duplicates": 5}
        assert run()["consumed"] == 0  # and from there on it continues as usual
    ids = [row["_govex_message_id"] for row in landing(setup.store)]
    assert sorted(ids) == sorted(e["message_id"] for e in again)
