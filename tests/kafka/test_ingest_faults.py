"""`govex ingest` under faults, as an operator meets them: a real broker, the worker as its own
process (`govex ingest ...` with GOVEX_DB_URL and GOVEX_KAFKA_BOOTSTRAP), and then

1. SIGKILL mid-stream and a restart: every valid message landed exactly once, the DLQ holds
   each invalid one exactly once (a kill between the DLQ flush and the commit leaves letters
   that the restart finds and does not send again), and the restart reads only what the last
   commit had not covered;
2. no broker at start: retries with backoff naming the address, then exit code 1, no traceback;
   a broker that hangs mid-stream (SIGSTOP) and comes back: ridden out, nothing lost or doubled;
3. the metadata store (PostgreSQL behind a TCP proxy this test cuts) going away mid-run: a short
   outage is ridden out; a long one ends the worker with one clear error naming the store, with
   neither landed rows nor offsets past the last commit, and a restart lands the rest once.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import catalog
from exchange.demo.broker import EmbeddedBroker, free_port
from exchange.ingest.checks import judge
from exchange.ingest.envelope import Message
from exchange.ingest.landing import _dead_letter, land_batch
from exchange.ingest.resource import IngestResource
from exchange.ingest.worker import kafka_resources
from exchange.store import create_store_engine, upgrade
from tests.kafka.test_ingest import (
    CODE,
    DLQ,
    LANDING,
    LIMIT,
    TOPIC,
    encode,
    envelope,
    ingest,
    make_setup,
    produce,
    read_dlq,
    stored_offsets,
    write_workspace,
)

pytestmark = [pytest.mark.integration, pytest.mark.solo]

_GOVEX = Path(sys.executable).with_name("govex")
GOVEX = [str(_GOVEX)] if _GOVEX.exists() else [sys.executable, "-m", "exchange.cli"]


def worker(db_url: str, bootstrap: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "GOVEX_DB_URL": db_url, "GOVEX_KAFKA_BOOTSTRAP": bootstrap}
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [*GOVEX, "ingest", "--resource", CODE, "--json", *args],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the worker did not stop within {timeout}s:\n{err}")
    return process.returncode, out, err


def landed_ids(store: sa.Engine) -> dict[str, int]:
    """Landed rows per message id (empty before the worker made the table)."""
    try:
        with store.connect() as conn:
            return dict(conn.execute(sa.text(  # noqa: S608 - a constant table name
                f"SELECT _govex_message_id, count(*) FROM {LANDING} "
                "GROUP BY _govex_message_id")).all())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return {}


def wait_for(condition: Any, what: str, process: subprocess.Popen[str],
             timeout: float = 60, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}) before {what}:\n"
                        f"{process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout}s")
        time.sleep(every)


def mixed_stream(count: int, start: int = 0) -> tuple[list[tuple[str, bytes]], set[str],
                                                      set[bytes]]:
    """`count` messages, about one in 25 invalid in one of five ways, one in 50 a repeat of
    an earlier valid message. Returns (messages, valid message ids, invalid message values)."""
    messages: list[tuple[str, bytes]] = []
    valid: set[str] = set()
    invalid: set[bytes] = set()
    for i in range(start, start + count):
        kind = i % 25
        if kind == 3:
            key, value = encode(envelope(i, capital=-5))  # contract
        elif kind == 7:
            key, value = encode(envelope(i, capital=5_000_000_000))  # quality gate
        elif kind == 11:
            key, value = encode({**envelope(i), "resource": "PSB-RES-001"})  # envelope
        elif kind == 17:
            key, value = "bad", f"not json {i}".encode()
        elif kind == 19:
            key, value = encode({**envelope(i), "contract_version": "9.9.9"})
        else:
            env = envelope(i)
            key, value = encode(env)
            valid.add(env["message_id"])
            messages.append((key, value))
            if i % 50 == 0:
                messages.append((key, value))  # the same message again: lands once
            continue
        invalid.add(value)
        messages.append((key, value))
    return messages, valid, invalid


def check_dead_letters(bootstrap: str, invalid: set[bytes]) -> None:
    dead = read_dlq(bootstrap, len(invalid), timeout=20)
    # Once each, even after a kill or an outage between the DLQ flush and the commit.
    assert {record.value for record in dead} == invalid
    assert len(dead) == len(invalid)
    for record in dead:
        headers = dict(record.headers)
        assert headers["govex-error"].decode()
        message_id = headers["govex-message-id"].decode()
        if record.value.startswith(b"{"):
            assert message_id == json.loads(record.value)["message_id"]
        else:
            assert message_id.startswith(f"{TOPIC}/")


# -- 1. SIGKILL mid-stream --------------------------------------------------------------------


def test_sigkill_mid_stream_then_restart_lands_each_valid_message_once(
    kafka_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = make_setup(kafka_broker, tmp_path, monkeypatch)
    url = str(setup.store.url)
    messages, valid, invalid = mixed_stream(12_000)
    produce(setup.bootstrap, messages)

    first = worker(url, setup.bootstrap, tmp_path, "--idle-timeout", "30")
    try:
        wait_for(lambda: len(landed_ids(setup.store)) > 0, "first landed batch", first,
                 every=0.005)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL
    at_kill = landed_ids(setup.store)
    offsets_at_kill = stored_offsets(setup.store)
    # The kill must land mid-stream, or this test proves nothing.
    assert 0 < len(at_kill) < len(valid), (len(at_kill), len(valid))
    assert set(at_kill.values()) == {1}
    assert 0 < sum(offsets_at_kill.values()) < len(messages)

    code, out, err = finish(worker(url, setup.bootstrap, tmp_path, "--idle-timeout", "2"))
    assert code == 0, err
    assert "Traceback" not in err
    (stats,) = json.loads(out)
    # The restart read exactly what the last commit before the kill had not covered.
    assert stats["consumed"] == len(messages) - sum(offsets_at_kill.values())

    landed = landed_ids(setup.store)
    assert set(landed) == valid
    assert set(landed.values()) == {1}
    assert sum(stored_offsets(setup.store).values()) == len(messages)
    check_dead_letters(setup.bootstrap, invalid)
    setup.store.dispose()


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, read until it has been quiet for a second (the workers are
    stopped by then). Not up to `end_offsets`: the embedded broker answers those with the base
    offset of the last record batch plus one, short of the rest of that batch."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                       or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        quiet = 0
        deadline = time.monotonic() + 60
        while quiet < 4:
            assert time.monotonic() < deadline, f"{topic} could not be read to its end"
            polled = consumer.poll(timeout_ms=250)
            quiet = 0 if polled else quiet + 1
            for batch in polled.values():
                records += batch
        return records
    finally:
        consumer.close()


@pytest.mark.parametrize("landed_before", [0, 40], ids=["never-landed", "stored-offsets"])
def test_letters_a_dead_worker_sent_before_its_commit_are_not_sent_again(
    kafka_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    landed_before: int,
) -> None:
    """A worker that died between flushing a batch's dead letters and committing the batch
    left those letters in the DLQ: the worker that reads the batch again finds them and sends
    only the others, so each rejected message is in the DLQ once. (A SIGKILL lands in that
    window only sometimes; this puts a dead worker's letters there on purpose.) Both for
    partitions with stored offsets and for partitions never landed."""
    setup = make_setup(kafka_broker, tmp_path, monkeypatch)
    messages, valid, invalid = mixed_stream(300)
    produce(setup.bootstrap, messages)
    if landed_before:
        assert ingest(setup, max_messages=landed_before)["consumed"] == landed_before
    stored = stored_offsets(setup.store)

    # The dead worker's batch: everything past the stored offsets, judged and dead-lettered,
    # never committed.
    [declared] = kafka_resources(setup.store, CODE)
    with setup.store.connect() as conn:
        res = IngestResource(declared, catalog.load_contract_version(conn, declared.contract))
    consumer = KafkaConsumer(bootstrap_servers=setup.bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(TOPIC, p) for p in (0, 1)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, stored.get(tp.partition, 0))
        batch = [Message(r.partition, r.offset, r.key, r.value)
                 for records in _drain(consumer) for r in records]
    finally:
        consumer.close()
    assert len(batch) == len(messages) - landed_before
    judged = judge(res, batch, LIMIT)
    producer = KafkaProducer(bootstrap_servers=setup.bootstrap, acks="all")
    try:
        _dead_letter(producer, res, judged.rejects, LIMIT)
    finally:
        producer.close()
    assert judged.rejects

    stats = ingest(setup, idle_timeout=2.0)
    assert stats["consumed"] == len(batch)
    assert stats["rejected"] == len(judged.rejects)
    assert set(landed_ids(setup.store)) == valid
    counts = collections.Counter(record.value for record in read_topic(setup.bootstrap, DLQ))
    assert set(counts) == invalid
    assert set(counts.values()) == {1}
    setup.store.dispose()


def test_a_slow_workers_batch_of_a_partition_that_moved_on_is_rolled_back(
    kafka_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A partition handed to another worker while this one was still landing a batch of it
    (the embedded broker does not wait for a slow member): the other worker landed past that
    batch, so the slow worker's batch rolls back and sends no dead letter; a batch covering
    exactly what was landed counts as landed already."""
    setup = make_setup(kafka_broker, tmp_path, monkeypatch)
    messages, valid, invalid = mixed_stream(200)
    produce(setup.bootstrap, messages)
    assert ingest(setup, idle_timeout=1.0)["consumed"] == len(messages)
    stored, landed = stored_offsets(setup.store), landed_ids(setup.store)
    letters = len(read_topic(setup.bootstrap, DLQ))
    assert letters == len(invalid)

    [declared] = kafka_resources(setup.store, CODE)
    with setup.store.connect() as conn:
        res = IngestResource(declared, catalog.load_contract_version(conn, declared.contract))
    consumer = KafkaConsumer(bootstrap_servers=setup.bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(TOPIC, p) for p in (0, 1)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        everything = [Message(r.partition, r.offset, r.key, r.value)
                      for records in _drain(consumer) for r in records]
    finally:
        consumer.close()
    # The slow worker read both partitions from the start (nothing was stored then).
    first_half = [m for m in everything if m.offset < stored[m.partition] // 2]
    producer = KafkaProducer(bootstrap_servers=setup.bootstrap, acks="all")
    try:
        def land(batch: list[Message]) -> tuple[int, int] | None:
            judged = judge(res, batch, LIMIT)
            assert judged.rejects
            return land_batch(setup.store, producer, res, judged,
                              read_from={0: None, 1: None}, max_message_bytes=LIMIT)

        assert land(first_half) is None
        accepted = len(judge(res, everything, LIMIT).accepted)
        assert land(everything) == (0, accepted)
    finally:
        producer.close()
    assert stored_offsets(setup.store) == stored
    assert landed_ids(setup.store) == landed
    assert len(read_topic(setup.bootstrap, DLQ)) == letters
    setup.store.dispose()


def _drain(consumer: KafkaConsumer) -> Iterator[list[Any]]:
    """The consumer's records until it has been quiet for a second."""
    quiet = 0
    while quiet < 4:
        polled = consumer.poll(timeout_ms=250)
        quiet = 0 if polled else quiet + 1
        yield from polled.values()


# -- 2. no broker at start --------------------------------------------------------------------


def test_unreachable_broker_retries_with_backoff_then_exits_1(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    url = f"sqlite:///{tmp_path / 'store.db'}"
    write_workspace(tmp_path / "ws", address)
    store = create_store_engine(url)
    try:
        upgrade(store)
        catalog.apply_workspace(store, tmp_path / "ws")
    finally:
        store.dispose()
    started = time.monotonic()
    code, out, err = finish(worker(url, address, tmp_path, "--idle-timeout", "2"), timeout=30)
    assert code == 1
    assert time.monotonic() - started < 20
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    retries = [line for line in lines if "not reachable yet" in line]
    assert retries, err
    assert all(address in line and "retrying in" in line for line in retries)
    assert lines[-1].startswith(f"error: cannot reach the Kafka broker at {address}")
    assert "GOVEX_KAFKA_BOOTSTRAP" in lines[-1]
    assert out == ""


# -- 2b. the broker hangs mid-stream ----------------------------------------------------------


def test_broker_frozen_mid_stream_then_back_lands_each_valid_message_once(
    kafka_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker stops answering (SIGSTOP: a hung or partitioned broker, log intact) while the
    worker reads, and comes back: the worker rides it out, then lands the rest exactly once,
    the messages produced after the outage included."""
    setup = make_setup(kafka_broker, tmp_path, monkeypatch)
    url = str(setup.store.url)
    before, valid, invalid = mixed_stream(6_000)
    produce(setup.bootstrap, before)
    # The idle timeout is only a safety net here (the test stops the worker with Ctrl-C): longer
    # than every wait below, so a slow machine cannot end the worker before the Ctrl-C.
    running = worker(url, setup.bootstrap, tmp_path, "--idle-timeout", "150")
    try:
        wait_for(lambda: len(landed_ids(setup.store)) > 0, "first landed batch", running,
                 every=0.005)
        assert kafka_broker.pid is not None
        os.kill(kafka_broker.pid, signal.SIGSTOP)
        try:
            time.sleep(4)
            assert running.poll() is None, "the worker gave up on a broker that hung for 4 s"
        finally:
            os.kill(kafka_broker.pid, signal.SIGCONT)
        after, valid_after, invalid_after = mixed_stream(2_000, start=6_000)
        produce(setup.bootstrap, after)
        wait_for(lambda: len(landed_ids(setup.store)) == len(valid | valid_after),
                 "every valid message landed", running, timeout=90)
    finally:
        if running.poll() is None:
            running.send_signal(signal.SIGINT)
        code, _, err = finish(running)
    assert code == 130, err  # stopped by Ctrl-C while it waited for more, as an operator would
    assert "Traceback" not in err
    landed = landed_ids(setup.store)
    assert set(landed) == valid | valid_after
    assert set(landed.values()) == {1}
    check_dead_letters(setup.bootstrap, invalid | invalid_after)
    setup.store.dispose()


# -- 3. the metadata store goes away ------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:`port` forwarded to `upstream`; `cut()` drops every connection and refuses
    new ones (the store "goes away"), `restore()` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listening = threading.Event()
        self._listener: threading.Thread | None = None

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listening.set()
        self._listener = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._listener.start()

    def cut(self) -> None:
        self._listening.clear()
        if self._listener is not None:
            self._listener.join()  # the listening socket is closed when this returns
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._listening.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client.close()
                    continue
                client.settimeout(None)
                server.settimeout(None)
                with self._lock:
                    self._sockets += [client, server]
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[str, TcpProxy]]:
    real = sa.make_url(pg_url)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
    proxy.restore()
    try:
        yield real.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False), proxy
    finally:
        proxy.cut()


def test_store_outage_commits_nothing_and_restart_lands_the_rest_once(
    kafka_broker: EmbeddedBroker, tmp_path: Path, pg_url: str,
    proxied_pg: tuple[str, TcpProxy],
) -> None:
    via_proxy, proxy = proxied_pg
    store = create_store_engine(pg_url)  # the test's own view, never through the proxy
    try:
        upgrade(store)
        write_workspace(tmp_path / "ws", kafka_broker.bootstrap)
        catalog.apply_workspace(store, tmp_path / "ws")
        bootstrap = kafka_broker.bootstrap
        a, valid_a, invalid_a = mixed_stream(400)
        b, valid_b, invalid_b = mixed_stream(300, start=1000)
        c, valid_c, invalid_c = mixed_stream(300, start=2000)

        running = worker(via_proxy, bootstrap, tmp_path, "--idle-timeout", "4")
        try:
            produce(bootstrap, a)
            wait_for(lambda: sum(stored_offsets(store).values()) == len(a), "batch A", running)
            assert set(landed_ids(store)) == valid_a

            # A short outage (about 1 s, less than the 4 s the worker retries for): ridden out.
            proxy.cut()
            produce(bootstrap, b)
            time.sleep(1.0)
            proxy.restore()
            wait_for(lambda: sum(stored_offsets(store).values()) == len(a) + len(b),
                     "batch B after the short outage", running)

            # A long outage: the worker gives up with one clear error, having committed nothing.
            good_landing, good_offsets = landed_ids(store), stored_offsets(store)
            proxy.cut()
            produce(bootstrap, c)
            code, out, err = finish(running, timeout=60)
        finally:
            if running.poll() is None:
                running.kill()
                running.wait()
        assert code == 1, err
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        store_name = sa.make_url(via_proxy).render_as_string(hide_password=True)
        assert any(f"the metadata store at {store_name} is not reachable" in line
                   and "retrying in" in line for line in lines), err
        assert lines[-1].startswith(f"error: cannot reach the metadata store at {store_name} (")
        assert f"{len(c)} message(s) of {CODE} were read but not landed" in lines[-1]
        assert "Nothing of them was committed" in lines[-1]
        assert out == ""
        assert landed_ids(store) == good_landing
        assert set(good_landing) == valid_a | valid_b
        assert stored_offsets(store) == good_offsets

        # The store is back: a restart lands C, and nothing twice.
        proxy.restore()
        code, out, err = finish(worker(via_proxy, bootstrap, tmp_path, "--idle-timeout", "2"))
        assert code == 0, err
        assert json.loads(out)[0]["consumed"] == len(c)
        landed = landed_ids(store)
        assert set(landed) == valid_a | valid_b | valid_c
        assert set(landed.values()) == {1}
        assert sum(stored_offsets(store).values()) == len(a) + len(b) + len(c)
        check_dead_letters(bootstrap, invalid_a | invalid_b | invalid_c)
    finally:
        store.dispose()
