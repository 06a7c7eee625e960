"""Run ids: UUIDv7 (RFC 9562, section 5.7), as OpenLineage wants a run's id to be.

A 48-bit Unix timestamp in milliseconds, the version (7), 12 random bits, the RFC variant
(0b10) and 62 random bits, so ids of later runs sort after earlier ones. Made here rather
than with `openlineage.client.uuid.generate_new_uuid` (the same layout), whose import pulls
in the whole OpenLineage client.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """A new UUIDv7 for the current time."""
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 0b10 (RFC 9562)
    return uuid.UUID(int=value)


def new_run_id() -> str:
    """A new run's id: a UUIDv7 in its canonical text form."""
    return str(uuid7())
