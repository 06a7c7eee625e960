"""One Kafka message as the worker reads it: UTF-8 JSON of at most `max_message_bytes`, exactly
the INTERFACES.md envelope (message_id, resource == the resource's code, contract_version ==
the pinned version, op upsert|delete, key = the resource's key fields, data, source_system,
event_time), or the reason it is rejected. Nothing a producer sends raises out of `parse`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from exchange.ingest.resource import IngestResource

MAX_MESSAGE_BYTES = 1024 * 1024
ENVELOPE_FIELDS = frozenset(
    {"message_id", "resource", "contract_version", "op", "key", "data", "source_system",
     "event_time"}
)
# Integers a float64 holds exactly: an integer in a `number` column within this range compares
# and divides the same as its float.
EXACT_INT = 2**53


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Accepted:
    message: Message
    envelope: dict[str, Any]
    record_key: str


@dataclass
class Reject:
    message: Message
    reason: str
    message_id: str
    record_key: str
    checks: list[dict[str, str]]
    record: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_accepted(cls, item: Accepted, reason: str, checks: list[dict[str, str]]) -> Reject:
        """An envelope that passed, rejected later for `reason` (cut to 500 characters)."""
        return cls(item.message, reason[:500], item.envelope["message_id"], item.record_key,
                   checks, item.envelope["data"])


class _Bad(Exception):  # noqa: N818 - a verdict on one message, never shown as an error
    def __init__(self, reason: str, check: str, column: str = "") -> None:
        super().__init__(reason)
        self.reason, self.check, self.column = reason, check, column


def field_text(value: Any) -> str | None:
    """A contract field as typed text: strings unchanged, other scalars in JSON spelling."""
    kind = type(value)  # exact types first: this runs for every field of every landed record
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)  # what json.dumps writes for an int
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if kind is float and value.is_integer() and abs(value) <= EXACT_INT:
        # 1.0 is the integer 1 to JSON Schema: one spelling per value, so a key sent as 1
        # and as 1.0 is one record, and an integer column reads back exactly.
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def _key_text(values: Sequence[Any]) -> str:
    if len(values) == 1 and type(values[0]) is str:
        return values[0]  # type: ignore[no-any-return]
    return ",".join("None" if v is None else str(field_text(v)) for v in values)


def parse(res: IngestResource, message: Message, limit: int) -> Accepted | Reject:
    """The envelope of one message, or the reason it is rejected (never raises)."""
    envelope: Any = None
    try:
        envelope = _decode(message.value, limit)
        _check_shape(envelope)
        _check_header(res, envelope)
        _check_key(res, envelope)
    except _Bad as bad:
        return _reject(res, message, envelope, bad)
    return Accepted(message, envelope, _key_text([envelope["key"][k] for k in res.key]))


def _reject(res: IngestResource, message: Message, envelope: Any, bad: _Bad) -> Reject:
    """The reject of a bad envelope, naming its message id, key and data where it has them."""
    fallback_id = f"{res.topic}/{message.partition}/{message.offset}"
    message_id = fallback_id
    key = f"message:{fallback_id}"
    record: dict[str, Any] = {}
    if isinstance(envelope, dict):
        if isinstance(envelope.get("message_id"), str) and envelope["message_id"]:
            message_id = envelope["message_id"]
            key = f"message:{message_id}"
        if isinstance(envelope.get("key"), dict):
            key = _key_text([envelope["key"].get(k) for k in res.key])
        if isinstance(envelope.get("data"), dict):
            record = envelope["data"]
    return Reject(message, bad.reason, message_id, key,
                  [{"check": bad.check, "column": bad.column}], record)


def _decode(value: bytes | None, limit: int) -> Any:
    """The JSON in a message's value; _Bad when it is empty, too big, not UTF-8 or not JSON."""
    if value is None:
        msg = "empty message (no value)"
        raise _Bad(msg, "envelope")
    if len(value) > limit:
        msg = f"message of {len(value)} bytes exceeds the {limit}-byte limit"
        raise _Bad(msg, "size")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"message is not UTF-8 ({error.reason} at byte {error.start})"
        raise _Bad(msg, "encoding") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as error:
        msg = f"message is not valid JSON ({error})"
        raise _Bad(msg, "json") from None
    except RecursionError:
        msg = "message is not usable JSON (nested too deeply)"
        raise _Bad(msg, "json") from None


def _no_constant(name: str) -> Any:
    """Python's json accepts NaN, Infinity and -Infinity; JSON (RFC 8259) does not."""
    msg = f"{name} is not a JSON value"
    raise ValueError(msg)


def _check_shape(envelope: Any) -> None:
    """A JSON object with exactly the envelope's fields."""
    if not isinstance(envelope, dict):
        msg = "message is not a JSON object (the govex envelope)"
        raise _Bad(msg, "envelope")
    missing = sorted(ENVELOPE_FIELDS - envelope.keys())
    extra = sorted(envelope.keys() - ENVELOPE_FIELDS)
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(extra)}"] if extra else [])
        msg = f"not the govex envelope ({'; '.join(parts)})"
        raise _Bad(msg, "envelope")


def _check_header(res: IngestResource, envelope: dict[str, Any]) -> None:
    """The fields around key and data: for this resource, at its pinned contract version."""
    for name in ("message_id", "resource", "contract_version", "source_system", "event_time"):
        if not isinstance(envelope[name], str) or not envelope[name]:
            msg = f"envelope field {name} must be a non-empty string"
            raise _Bad(msg, "envelope", name)
    if len(envelope["message_id"]) > 200:  # noqa: PLR2004 - the landing column's width
        msg = "envelope message_id is longer than 200 characters"
        raise _Bad(msg, "envelope", "message_id")
    if envelope["resource"] != res.code:
        msg = f"message is for resource {envelope['resource']}, not {res.code}"
        raise _Bad(msg, "resource", "resource")
    if envelope["contract_version"] != res.contract.version:
        msg = (f"contract_version {envelope['contract_version']} is not the version "
               f"{res.contract.ref} that {res.code} pins")
        raise _Bad(msg, "contract_version", "contract_version")
    if envelope["op"] not in ("upsert", "delete"):
        msg = f"op {envelope['op']!r} is not upsert or delete"
        raise _Bad(msg, "envelope", "op")
    try:
        dt.datetime.fromisoformat(envelope["event_time"])
    except ValueError:
        msg = f"event_time {envelope['event_time']!r} is not an ISO 8601 date-time"
        raise _Bad(msg, "envelope", "event_time") from None


def _check_key(res: IngestResource, envelope: dict[str, Any]) -> None:
    """Exactly the resource's key fields, non-null scalars that an upsert's data repeats."""
    key, data = envelope["key"], envelope["data"]
    if not isinstance(key, dict) or not isinstance(data, dict):
        msg = "envelope key and data must be JSON objects"
        raise _Bad(msg, "envelope", "key")
    if set(key) != set(res.key):
        msg = f"key must hold exactly the key fields {', '.join(res.key)} (got {sorted(key)})"
        raise _Bad(msg, "key", ",".join(res.key))
    for name in res.key:
        value = key[name]
        if value is None or isinstance(value, dict | list):
            msg = f"key field {name} must be a non-null scalar"
            raise _Bad(msg, "key", name)
    if envelope["op"] == "upsert":
        for name in res.key:
            if data.get(name) != key[name]:
                msg = f"data.{name} does not match key.{name}"
                raise _Bad(msg, "key", name)
