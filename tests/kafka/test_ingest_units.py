"""Small decisions of the ingest worker, without a broker."""

from __future__ import annotations

import json
import sqlite3
import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from kafka.errors import MessageSizeTooLargeError

from exchange.ingest.envelope import Message, Reject
from exchange.ingest.landing import _dead_letter, store_retries
from govex.errors import FatalError, TransientError


def _failing(orig: Exception) -> None:
    raise sa.exc.OperationalError("INSERT …", {}, orig)


def test_a_missing_table_is_not_retried_as_an_outage() -> None:
    store = sa.create_engine("sqlite://")
    started = time.monotonic()
    with pytest.raises(FatalError, match="no such table: landing_x.*govex db upgrade"):
        store_retries(store, lambda: _failing(sqlite3.OperationalError("no such table: "
                                                                       "landing_x")),
                      limit=30, progress=None, failed="x")
    assert time.monotonic() - started < 1


def test_a_locked_store_is_retried_then_named() -> None:
    store = sa.create_engine("sqlite://")
    waits: list[str] = []
    with pytest.raises(TransientError, match="sqlite://"):
        store_retries(store, lambda: _failing(sqlite3.OperationalError("database is locked")),
                      limit=0.6, progress=waits.append, failed="x")
    assert waits
    assert all("retrying" in w for w in waits)


class _Sent:
    """A send's future: done, or failed with `error`."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float) -> None:
        if self.error is not None:
            raise self.error


class _SizeLimitedProducer:
    """A DLQ producer in front of a broker whose message limit is `broker_limit` bytes, with
    a client limit of `client_limit` (kafka-python raises that one from `send` itself)."""

    def __init__(self, broker_limit: int, client_limit: int) -> None:
        self.broker_limit, self.client_limit = broker_limit, client_limit
        self.delivered: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []

    def send(self, topic: str, *, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]]) -> _Sent:
        assert topic == "govex.dlq.TAX-RES-001"
        size = len(key or b"") + len(value)
        if size > self.client_limit:
            raise MessageSizeTooLargeError(f"{size} bytes")
        if size > self.broker_limit:
            return _Sent(MessageSizeTooLargeError("MESSAGE_TOO_LARGE"))
        self.delivered.append((key, value, dict(headers)))
        return _Sent(None)

    def flush(self, timeout: float) -> None:
        pass


@pytest.mark.parametrize(("broker_limit", "client_limit"), [(300, 10_000), (10_000, 300)])
def test_a_copy_the_broker_or_client_refuses_is_dead_lettered_as_a_reference(
    broker_limit: int, client_limit: int,
) -> None:
    """The worker's limit (here 1,000 bytes) may be above what the DLQ takes: the broker's
    message.max.bytes or the client's own. A copy refused for its size goes as a reference, and
    the other dead letters of the batch are unaffected."""
    res = SimpleNamespace(code="TAX-RES-001", topic="govex.ingest.TAX-RES-001")
    big = Reject(Message(1, 7, b"k1", b"x" * 500), "contract: too long", "m-big", "k1", [])
    small = Reject(Message(0, 3, b"k0", b"{}"), "not the govex envelope", "m-small", "k0", [])
    producer = _SizeLimitedProducer(broker_limit, client_limit)
    _dead_letter(producer, res, [big, small], 1000)  # type: ignore[arg-type]
    by_id = {headers["govex-message-id"]: (key, value, headers)
             for key, value, headers in producer.delivered}
    assert set(by_id) == {b"m-big", b"m-small"}
    key, value, headers = by_id[b"m-big"]
    assert headers["govex-value"] == b"reference"
    assert json.loads(value) == {"original": {"topic": "govex.ingest.TAX-RES-001",
                                              "partition": 1, "offset": 7, "value_bytes": 500}}
    assert key == b"k1"
    assert (headers["govex-source-topic"], headers["govex-source-partition"],
            headers["govex-source-offset"]) == (b"govex.ingest.TAX-RES-001", b"1", b"7")
    assert headers["govex-error"] == b"contract: too long"
    key, value, headers = by_id[b"m-small"]
    assert (key, value, headers["govex-value"]) == (b"k0", b"{}", b"original")


def test_a_reject_is_short_and_holdable_whatever_its_reason_quotes() -> None:
    """Reasons, message ids and record keys go to DLQ headers and the store as they are."""
    reject = Reject(Message(0, 0, None, None), "bad \x00 \ud800 " + "x" * 1000, "id\x00",
                    "key\udfff", [])
    assert len(reject.reason) == 500
    assert reject.reason.startswith("bad \\u0000 \\ud800 xxx")
    assert reject.message_id == "id\\u0000"
    assert reject.record_key == "key\\udfff"
    reject.reason.encode("utf-8")  # no surrogate left
