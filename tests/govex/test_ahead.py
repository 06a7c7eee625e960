"""`govex.ahead`: items produced in a thread one step ahead, in order, errors where they
would have come, and nothing left running when the consumer stops early."""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from govex.ahead import ahead


def test_items_arrive_in_order_from_another_thread() -> None:
    producers: set[str] = set()

    def items() -> Iterator[int]:
        for i in range(100):
            producers.add(threading.current_thread().name)
            yield i

    with ahead(items(), name="test-ahead") as got:
        assert list(got) == list(range(100))
    assert producers == {"test-ahead"}


def test_the_producer_runs_at_most_depth_items_ahead() -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10):
            pulled.append(i)
            yield i

    with ahead(items(), name="test-ahead", depth=1) as got:
        assert next(got) == 0
        time.sleep(0.2)  # ample time to run further ahead, were it allowed to
        assert pulled == [0, 1]  # item 1 waits in the hand-off; nothing more is made
        assert next(got) == 1
        time.sleep(0.2)
        assert pulled == [0, 1, 2]


def test_the_producer_sees_the_context_of_the_caller() -> None:
    asked: contextvars.ContextVar[str] = contextvars.ContextVar("asked", default="nobody")
    asked.set("the delivery")

    def items() -> Iterator[str]:
        yield asked.get()

    with ahead(items(), name="test-ahead") as got:
        assert list(got) == ["the delivery"]


def test_a_generator_left_early_is_closed_by_its_thread() -> None:
    closed: list[str] = []

    def endless() -> Iterator[int]:
        try:
            yield from itertools.count()
        finally:
            closed.append(threading.current_thread().name)

    with ahead(endless(), name="test-ahead") as got:
        next(got)
    assert closed == ["test-ahead"]


def test_an_error_of_the_producer_reaches_the_consumer_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        msg = "the source went away"
        raise ConnectionError(msg)

    seen: list[int] = []
    with pytest.raises(ConnectionError, match="the source went away"), \
            ahead(items(), name="test-ahead") as got:
        seen.extend(got)
    assert seen == [1, 2]


def test_leaving_early_stops_the_producer_and_waits_for_it() -> None:
    produced = itertools.count()

    def endless() -> Iterator[int]:
        while True:
            yield next(produced)

    def consume_one_then_fail() -> None:
        with ahead(endless(), name="test-ahead") as got:
            next(got)
            msg = "the target refused"
            raise RuntimeError(msg)

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="the target refused"):
        consume_one_then_fail()
    assert threading.active_count() == before
    stopped_at = next(produced)
    time.sleep(0.1)
    assert next(produced) == stopped_at + 1  # nothing pulled the endless source since


def test_an_interrupt_does_not_wait_for_the_item_being_made() -> None:
    """Ctrl-C (or SIGTERM, which govex raises as KeyboardInterrupt) while the producer is in a
    long read: the consumer leaves at once; the producer stops by itself when the read ends,
    closing its source in its own thread."""
    reading, released = threading.Event(), threading.Event()
    closed_by: list[str] = []

    def slow_source() -> Iterator[int]:
        try:
            yield 0
            reading.set()
            released.wait(10)  # a read the interrupt cannot cut short
            yield 1
            yield 2
        finally:
            closed_by.append(threading.current_thread().name)

    def interrupted_while_reading() -> None:
        with ahead(slow_source(), name="test-ahead") as got:
            next(got)
            assert reading.wait(5)
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupted_while_reading()
    assert time.monotonic() - started < 2
    assert closed_by == []  # still reading
    released.set()
    deadline = time.monotonic() + 5
    while not closed_by and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed_by == ["test-ahead"]


def test_a_failing_clean_up_after_the_consumer_left_is_logged_not_raised_in_the_thread(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer failed; the producer's clean-up (closing a source) then fails too: the
    consumer's error is the one raised, and the clean-up's is logged, not left to escape the
    thread as a bare traceback."""
    escaped: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))

    def source() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            msg = "the source would not close"
            raise OSError(msg)

    def consume_then_fail() -> None:
        with ahead(source(), name="test-ahead") as got:
            next(got)
            msg = "the gate broke"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="the gate broke"):
        consume_then_fail()
    assert escaped == []
    assert "test-ahead: cleaning up after the consumer left failed" in caplog.text
    assert "the source would not close" in caplog.text
