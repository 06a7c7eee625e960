"""Dead letters already in the DLQ for messages past the stored offsets (`sent_past`).

A batch's dead letters are sent inside its landing transaction, before the commit (`landing`).
A worker that dies between the two (SIGKILL, a store that stays away) leaves letters in the
DLQ for messages whose offsets were never stored, and whoever reads those messages again would
send them a second time. So before a worker reads a partition from its stored offset, it looks
in the DLQ for letters naming that partition at or past that offset (headers
`govex-source-topic`, `-partition`, `-offset`) and does not send those again: each rejected
message is dead-lettered once.

Such letters were sent after the partition's offset was last stored, so the DLQ is read from
that time (less `_CLOCK_SKEW`, for workers on other hosts) when the broker can say where that
is; from its beginning otherwise, and for a partition never landed. It is read up to the high
watermark its first fetch reports, which the letters left by a worker that died are below:
not up to `end_offsets`, which Tansu, the embedded broker, answers with the base offset of the
last record batch plus one, short of that batch's other records (the newest letters).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from govex.errors import TransientError
from govex.moments import aware

# How far apart (seconds) the clocks of two workers (which stored the offset, which sent the
# letter) may be.
_CLOCK_SKEW = 300.0
# How long reading the DLQ may take before the worker gives up (seconds).
_READ_LIMIT = 60.0


@dataclass(frozen=True)
class Since:
    """Where a partition is read from: its stored next offset (None: never landed, read from
    its beginning) and when that offset was stored."""

    next_offset: int | None
    stored_at: dt.datetime | None


def sent_past(bootstrap: str, topic: str, dlq: str,
              partitions: Mapping[int, Since]) -> set[tuple[int, int]]:
    """(partition, offset) of each message of `topic` at or past `partitions[partition]` that
    `dlq` already holds a dead letter for."""
    from kafka import KafkaConsumer, TopicPartition  # loaded only when the worker runs

    if not partitions:
        return set()
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                           enable_auto_commit=False, client_id="govex-ingest-dlq-check",
                           request_timeout_ms=10_000)
    try:
        found = reader.partitions_for_topic(dlq) or set()
        letters = [TopicPartition(dlq, p) for p in sorted(found)]
        if not letters:
            return set()
        return _read(reader, _firsts(reader, letters, partitions), topic, partitions)
    finally:
        reader.close()


def _firsts(reader: Any, letters: list[Any], partitions: Mapping[int, Since]) -> dict[Any, int]:
    """Where to start reading each DLQ partition (a partition with no letter recent enough
    is left out)."""
    firsts: dict[Any, int] = reader.beginning_offsets(letters)
    stamps = [s.stored_at for s in partitions.values()]
    if any(stamp is None for stamp in stamps):
        return firsts  # a partition never landed: its letters can be anywhere
    oldest = min(aware(stamp) for stamp in stamps if stamp is not None)
    since_ms = int((oldest.timestamp() - _CLOCK_SKEW) * 1000)
    for tp, hit in reader.offsets_for_times({tp: since_ms for tp in letters}).items():
        if hit is None:  # no letter that recent
            del firsts[tp]
        elif hit.timestamp >= 0:
            firsts[tp] = max(firsts[tp], hit.offset)
        # else the broker could not say (Tansu answers timestamp -1): read it all
    return firsts


def _read(reader: Any, firsts: dict[Any, int], topic: str,
          partitions: Mapping[int, Since]) -> set[tuple[int, int]]:
    """Read each DLQ partition from `firsts` to its high watermark at its first fetch; keep
    the letters of `topic`'s messages past their partition's stored offset."""
    if not firsts:
        return set()
    reader.assign(list(firsts))
    for tp, first in firsts.items():
        reader.seek(tp, first)
    ends: dict[Any, int] = {}
    sent: set[tuple[int, int]] = set()
    deadline = time.monotonic() + _READ_LIMIT
    while len(ends) < len(firsts) or any(reader.position(tp) < end for tp, end in ends.items()):
        if time.monotonic() > deadline:
            msg = (f"cannot read the dead-letter topic {next(iter(firsts)).topic} within "
                   f"{_READ_LIMIT:.0f}s to see which rejected messages it holds already; "
                   "start `govex ingest` again")
            raise TransientError(msg)
        for records in reader.poll(timeout_ms=500).values():
            for record in records:
                source = _source(record.headers, topic)
                if source is not None and _past(source, partitions):
                    sent.add(source)
        for tp in firsts:
            if tp not in ends and (watermark := reader.highwater(tp)) is not None:
                ends[tp] = watermark
    return sent


def _source(headers: Any, topic: str) -> tuple[int, int] | None:
    """The (partition, offset) a dead letter names, when it is of a message of `topic`."""
    named = {key: value for key, value in headers or []}
    try:
        if named["govex-source-topic"].decode("utf-8") != topic:
            return None
        return int(named["govex-source-partition"]), int(named["govex-source-offset"])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None  # not a letter of ours


def _past(source: tuple[int, int], partitions: Mapping[int, Since]) -> bool:
    since = partitions.get(source[0])
    return since is not None and (since.next_offset is None or source[1] >= since.next_offset)


