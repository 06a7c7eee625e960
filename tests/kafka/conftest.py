"""Kafka fixtures: an embedded Tansu broker (in-memory storage) per test on a free port.

Starting one takes about 0.1 s, so every test gets a fresh, empty broker. Without the Tansu
binary the tests skip with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from exchange.demo.broker import EmbeddedBroker, broker_binary
from govex.errors import FatalError


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true a missing service is a failure, not a skip")
    pytest.skip(reason)


@pytest.fixture
def tansu_binary() -> str:
    """Path of the Tansu broker binary, or skip (fail under CI=true) when there is none."""
    try:
        return broker_binary()
    except FatalError as error:
        _unavailable(f"the embedded Kafka broker is unavailable: {error}")
        raise  # pragma: no cover - skip/fail raised already


@pytest.fixture
def kafka_broker(tansu_binary: str) -> Iterator[EmbeddedBroker]:
    """A running, empty EmbeddedBroker on a free 127.0.0.1 port, stopped after the test."""
    with EmbeddedBroker(binary=tansu_binary) as broker:
        yield broker
    assert not broker.running()
