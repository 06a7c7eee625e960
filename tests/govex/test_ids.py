"""Run ids are UUIDv7 (RFC 9562): version 7, the RFC variant, later ids sort after earlier."""

from __future__ import annotations

import time
import uuid

from govex.ids import new_run_id, uuid7


def test_uuid7_layout_and_order() -> None:
    first = uuid7()
    time.sleep(0.002)
    second = uuid.UUID(new_run_id())
    for value in (first, second):
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
    assert first < second
    assert abs((first.int >> 80) - time.time_ns() // 1_000_000) < 5_000  # milliseconds now
