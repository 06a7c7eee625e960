"""Partitioned ingest, `govex ingest --group NAME`: three workers, each its own process, split a
six-partition topic through Kafka's consumer-group protocol (the embedded broker is the group
coordinator); one is SIGKILLed mid-stream and started again.

Every valid message of the 30,000 lands exactly once, every invalid one is in the DLQ exactly
once, each live worker ends up holding partitions, and every partition is read to its end. The
store is PostgreSQL: three processes land into it at once.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

import catalog
from exchange.demo.broker import EmbeddedBroker
from exchange.ingest.tables import landing_table
from exchange.ingest.worker import _create_landing
from exchange.store import create_store_engine, upgrade
from tests.kafka.test_ingest import CODE, DLQ, TOPIC, encode, envelope, write_workspace
from tests.kafka.test_ingest_faults import GOVEX, landed_ids, read_topic, stored_offsets

pytestmark = [pytest.mark.integration, pytest.mark.solo]

PARTITIONS = 6
MESSAGES = 30_000
GROUP = "govex-ingest-test"
# The group's session timeout. Tansu, the embedded broker, holds each JoinGroup for half of it
# and a SyncGroup for up to 0.8 of it while it collects members, and gives a killed worker's
# partitions away only once it has been silent that long. With the default (10 s) the joins,
# the rebalances and the wait for the killed worker would take this test well past a minute;
# 6 s, the least a Kafka broker accepts by default, keeps it under one, and with a heartbeat
# every 1.2 s (sent by kafka-python's IO thread, whatever the worker is doing) a busy worker
# still has four heartbeats of slack before the group would count it dead.
SESSION_TIMEOUT = "6"
_ASSIGNED = re.compile(rf"group {GROUP} assigned this worker "
                       rf"(?:{re.escape(TOPIC)} partitions ([\d, ]+)|no partition)$")


def stream() -> tuple[list[tuple[str, bytes]], set[str], list[bytes]]:
    """MESSAGES messages: one in five invalid, in one of five ways (envelope, contract, quality
    gate, not JSON, unknown contract version), one valid message in 50 sent twice. Returns
    (messages, valid message ids, invalid message values)."""
    messages: list[tuple[str, bytes]] = []
    valid: set[str] = set()
    invalid: list[bytes] = []
    i = 0
    while len(messages) < MESSAGES:
        kind = i % 25
        if kind == 3:
            key, value = encode(envelope(i, capital=-5))
        elif kind == 7:
            key, value = encode(envelope(i, capital=5_000_000_000))
        elif kind == 11:
            key, value = encode({**envelope(i), "resource": "PSB-RES-001"})
        elif kind == 17:
            key, value = f"bad{i % 7}", f"not json {i}".encode()
        elif kind == 19:
            key, value = encode({**envelope(i), "contract_version": "9.9.9"})
        else:
            env = envelope(i)
            key, value = encode(env)
            valid.add(env["message_id"])
            messages.append((key, value))
            if i % 50 == 0 and len(messages) < MESSAGES:
                messages.append((key, value))  # the same message again: lands once
            i += 1
            continue
        invalid.append(value)
        messages.append((key, value))
        i += 1
    return messages, valid, invalid


class Worker:
    """`govex ingest --group GROUP` as its own process, its output in a file."""

    def __init__(self, name: str, db_url: str, bootstrap: str, cwd: Path) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self._log: IO[str] = self.log_path.open("w")
        env = {**os.environ, "GOVEX_DB_URL": db_url, "GOVEX_KAFKA_BOOTSTRAP": bootstrap}
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI
            [*GOVEX, "ingest", "--resource", CODE, "--group", GROUP,
             "--session-timeout", SESSION_TIMEOUT],
            env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def assignments(self) -> list[set[int]]:
        """Every assignment the group gave this worker, in order (partition numbers)."""
        found = []
        for line in self.log().splitlines():
            match = _ASSIGNED.search(line)
            if match:
                found.append({int(p) for p in (match.group(1) or "").split(",") if p.strip()})
        return found

    def holds(self) -> set[int]:
        assigned = self.assignments()
        return assigned[-1] if assigned else set()

    def stop(self, sig: int) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


def wait_for(condition: Callable[[], bool], what: str, workers: list[Worker],
             timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for w in workers:
            if w.process.poll() is not None:
                pytest.fail(f"{w.name} exited ({w.process.returncode}) before {what}:\n"
                            f"{w.log()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}\n{w.log()}" for w in workers)
            pytest.fail(f"no {what} within {timeout}s\n{logs}")
        time.sleep(0.1)


@pytest.fixture
def group_store(kafka_broker: EmbeddedBroker, pg_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """A PostgreSQL store with the workspace applied, and the six-partition topic."""
    store = create_store_engine(pg_url)
    upgrade(store)
    write_workspace(tmp_path / "ws", kafka_broker.bootstrap)
    catalog.apply_workspace(store, tmp_path / "ws")
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()
    yield store
    store.dispose()


def test_three_workers_split_the_partitions_and_survive_a_kill(
    kafka_broker: EmbeddedBroker, group_store: sa.Engine, pg_url: str, tmp_path: Path,
) -> None:
    bootstrap = kafka_broker.bootstrap
    messages, valid, invalid = stream()
    head, tail = messages[:6_000], messages[6_000:]
    chunks = [tail[i:i + 1_000] for i in range(0, len(tail), 1_000)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)

    def produce(batch: list[tuple[str, bytes]]) -> None:
        sent = [producer.send(TOPIC, key=key.encode(), value=value) for key, value in batch]
        producer.flush(timeout=30)
        for future in sent:
            future.get(timeout=30)

    produce(head)
    workers = [Worker(f"worker{n}", pg_url, bootstrap, tmp_path) for n in range(3)]
    live = list(workers)
    victim = workers[1]
    killed: dict[str, Any] = {}
    try:
        while chunks:
            if not killed and len(chunks) <= len(tail) // 2_000:
                # Half the stream is out: once the three hold partitions (starting a worker
                # takes seconds: it builds the quality gate) and have landed something, kill
                # one of them, and start it again at once.
                wait_for(lambda: all(w.holds() for w in workers), "three workers holding "
                         "partitions", workers, timeout=120)
                wait_for(lambda: len(landed_ids(group_store)) > 0, "a landed batch",
                         workers, timeout=30)
                killed["held"] = victim.holds()
                killed["landed"] = len(landed_ids(group_store))
                assert victim.stop(signal.SIGKILL) == -signal.SIGKILL
                live.remove(victim)
                live.append(Worker("worker1-again", pg_url, bootstrap, tmp_path))
            produce(chunks.pop(0))
        producer.close()

        wait_for(lambda: set(landed_ids(group_store)) == valid, "every valid message landed",
                 live, timeout=120)
        wait_for(lambda: sum(stored_offsets(group_store).values()) == MESSAGES,
                 "every partition read to its end", live, timeout=60)
        # Each live worker holds partitions, and together the three hold each partition once.
        wait_for(lambda: all(w.holds() for w in live)
                 and sorted(p for w in live for p in w.holds()) == list(range(PARTITIONS)),
                 "the three live workers holding the six partitions", live, timeout=60)
    finally:
        codes = {w.name: w.stop(signal.SIGINT) for w in live}
        if victim.process.poll() is None:
            victim.stop(signal.SIGKILL)

    # The kill came mid-stream, to a worker that held partitions.
    assert killed["held"], victim.log()
    assert 0 < killed["landed"] < len(valid)
    # Stopped by Ctrl-C as an operator would, no traceback.
    assert codes == {w.name: 130 for w in live}, codes
    for w in live:
        assert "Traceback" not in w.log(), w.log()

    landed = landed_ids(group_store)
    assert set(landed) == valid
    assert set(landed.values()) == {1}
    assert sum(stored_offsets(group_store).values()) == MESSAGES

    dead = read_topic(bootstrap, DLQ)
    counts = collections.Counter(record.value for record in dead)
    assert set(counts) == set(invalid)
    assert set(counts.values()) == {1}, [v for v, n in counts.items() if n > 1][:3]
    for record in dead:
        headers = dict(record.headers)
        assert headers["govex-error"].decode()
        assert headers["govex-source-topic"].decode() == TOPIC
        if record.value.startswith(b"{"):
            assert headers["govex-message-id"].decode() == json.loads(record.value)[
                "message_id"]


def test_workers_starting_together_all_find_the_landing_table(pg_url: str) -> None:
    """The workers of a group start at once and each makes the landing table if it is not
    there: PostgreSQL's check-then-create races between sessions (eight threads made the plain
    `create(checkfirst=True)` fail in every one of ten rounds), so the losers must find the
    winner's table and go on."""
    store = sa.create_engine(pg_url, pool_size=8)
    try:
        for round_ in range(5):
            res = SimpleNamespace(landing=landing_table(
                f"RACE-{round_}", SimpleNamespace(fields=["a", "b"])))  # type: ignore[arg-type]
            gate = threading.Barrier(8)
            errors: list[BaseException] = []

            def start(res: Any = res, gate: threading.Barrier = gate,
                      errors: list[BaseException] = errors) -> None:
                gate.wait()
                try:
                    _create_landing(store, res)
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)

            threads = [threading.Thread(target=start) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            with store.connect() as conn:
                assert sa.inspect(conn).has_table(res.landing.name)
    finally:
        store.dispose()
