"""The embedded broker end to end: kafka-python (and kcat when present) against real Tansu."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from exchange.demo.broker import EmbeddedBroker
from govex.errors import FatalError

pytestmark = pytest.mark.integration

TOPIC = "govex.ingest.TEST-RES-001"
ROOT = Path(__file__).resolve().parents[2]


def _create_topic(bootstrap: str, topic: str = TOPIC) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="govex-test")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert topic in admin.list_topics()
    finally:
        admin.close()


def _consume(bootstrap: str, count: int, topic: str = TOPIC, timeout: float = 10.0) -> list[Any]:
    """Read `count` records from partition 0 from the start: manual assignment, no group."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    tp = TopicPartition(topic, 0)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_produce_and_consume_json_envelopes(kafka_broker: EmbeddedBroker) -> None:
    assert kafka_broker.bootstrap == f"127.0.0.1:{kafka_broker.port}"
    _create_topic(kafka_broker.bootstrap)
    envelopes: list[dict[str, Any]] = [
        {"resource": "TEST-RES-001", "record": {"id_no": f"11010119900101{i:04d}", "name": "张三"}}
        for i in range(5)
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    try:
        for i, envelope in enumerate(envelopes):
            producer.send(
                TOPIC,
                key=envelope["record"]["id_no"].encode(),
                value=json.dumps(envelope, ensure_ascii=False).encode(),
                headers=[("govex-source", b"psb"), ("seq", str(i).encode())],
            )
        producer.flush(timeout=10)
    finally:
        producer.close()

    records = _consume(kafka_broker.bootstrap, len(envelopes))
    assert [r.offset for r in records] == list(range(len(envelopes)))
    assert [r.key.decode() for r in records] == [e["record"]["id_no"] for e in envelopes]
    assert [json.loads(r.value) for r in records] == envelopes
    assert [r.headers for r in records] == [
        [("govex-source", b"psb"), ("seq", str(i).encode())] for i in range(len(envelopes))
    ]


def test_stop_leaves_no_process_and_no_log(tansu_binary: str) -> None:
    broker = EmbeddedBroker(binary=tansu_binary)
    with broker:
        pid, log = broker.pid, broker.log_path
        assert pid is not None
        assert log is not None
        assert broker.running()
        assert log.exists()
    assert _gone(pid)
    assert not log.exists()
    broker.stop()  # idempotent


def test_fixed_port_already_in_use_is_a_clear_error(kafka_broker: EmbeddedBroker) -> None:
    with pytest.raises(FatalError, match=rf"{kafka_broker.bootstrap} is already in use"):
        EmbeddedBroker(port=kafka_broker.port).start()
    assert kafka_broker.running()


@contextmanager
def _broker_command(tansu_binary: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`govex broker --port 0` as its own process, once its banner is out: (the process, the
    Tansu pid from the banner). Killed if it still runs when the block ends."""
    govex = Path(sys.executable).with_name("govex")
    command = [str(govex)] if govex.exists() else [sys.executable, "-m", "exchange.cli"]
    env = {**os.environ, "CALF_TANSU_BIN": tansu_binary, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [*command, "broker", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "Kafka bootstrap 127.0.0.1:" in banner, (banner, proc.stderr and proc.stderr.read())
        yield proc, int(banner.split("pid ", 1)[1].split(";", 1)[0])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_broker_command_runs_until_ctrl_c(tansu_binary: str) -> None:
    with _broker_command(tansu_binary) as (proc, pid):
        assert proc.stdout is not None
        export = proc.stdout.readline()
        assert export.startswith("export GOVEX_KAFKA_BOOTSTRAP=127.0.0.1:")
        bootstrap = export.strip().split("=", 1)[1]
        _create_topic(bootstrap)  # the advertised broker really serves Kafka
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0  # seconds normally; a loaded CI machine took 15+
    assert _gone(pid)


def test_sigterm_stops_the_broker_command_and_its_broker(tansu_binary: str) -> None:
    """`kill` (SIGTERM) is how operators and `docker stop` end a process: the Tansu child
    must not outlive `govex broker` and keep the port."""
    with _broker_command(tansu_binary) as (proc, pid):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert _gone(pid)


def test_broker_command_help() -> None:
    import argparse

    from exchange.cli import broker

    parser = argparse.ArgumentParser(prog="govex")
    broker.register(parser.add_subparsers())
    result = subprocess.run(
        [sys.executable, "-c",
         "import argparse, sys; from exchange.cli import broker\n"
         "p = argparse.ArgumentParser(prog='govex'); broker.register(p.add_subparsers())\n"
         "p.parse_args(['broker', '--help'])"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout
    assert "--host" in result.stdout
    assert "GOVEX_KAFKA_BOOTSTRAP" in result.stdout
    args = parser.parse_args(["broker"])
    assert (args.port, args.host) == (9092, "127.0.0.1")


@pytest.mark.xfail(
    raises=subprocess.CalledProcessError,
    strict=True,
    reason="Debian's kcat (librdkafka 2.0.2) cannot parse Tansu 0.6.0's ApiVersions v3 response "
    "('Protocol read buffer underflow for ApiVersion v3 at 274/279'); kafka-python works. "
    "Strict: remove this marker once kcat can talk to the embedded broker.",
)
def test_kcat_produces_kafka_python_consumes(kafka_broker: EmbeddedBroker) -> None:
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        reason = "kcat is not installed (Debian: apt-get install kcat)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true a missing tool is a failure, not a skip")
        pytest.skip(reason)
    _create_topic(kafka_broker.bootstrap)
    lines = [json.dumps({"resource": "TEST-RES-001", "record": {"n": i}}) for i in range(3)]
    subprocess.run(
        [kcat, "-b", kafka_broker.bootstrap, "-t", TOPIC, "-P", "-K", "|", "-p", "0",
         "-H", "govex-source=kcat"],
        input="".join(f"k{i}|{line}\n" for i, line in enumerate(lines)),
        text=True, check=True, timeout=30, capture_output=True,
    )
    records = _consume(kafka_broker.bootstrap, len(lines))
    assert [r.key for r in records] == [b"k0", b"k1", b"k2"]
    assert [json.loads(r.value) for r in records] == [json.loads(x) for x in lines]
    assert all(("govex-source", b"kcat") in r.headers for r in records)
