"""One Kafka message as the worker reads it: UTF-8 JSON of at most `max_message_bytes`, exactly
the INTERFACES.md envelope (message_id, resource == the resource's code, contract_version ==
the pinned version, op upsert|delete, key = the resource's key fields, data, source_system,
event_time), or the reason it is rejected. Nothing a producer sends raises out of `parse`.

Every text in it, names included, must be one the store can hold: no NUL (U+0000, which
PostgreSQL text refuses) and no lone surrogate (U+D800-U+DFFF, which JSON's `\\ud800` escape
spells and `json.loads` accepts, but which is not Unicode text: no UTF-8 encoder, so no store
driver, takes it). Such a message is refused here, on every store alike, rather than failing
its whole batch in the landing transaction. So is JSON nested more than 64 levels deep, which
Python parses but cannot always serialise again where the worker quotes it. A delete needs
only its key: its `data` may be null or absent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
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
# The widest reason a reject carries (a DLQ header and the quarantine): a reason may quote what
# the producer sent, and a quote of a megabyte would not fit the DLQ message beside its value.
MAX_REASON = 500
# The landing column's width; a longer message id is refused, and a reject names the message
# by its position instead.
MAX_MESSAGE_ID = 200
# How deep a message may nest arrays and objects. Python's json parses up to about 1,000 levels,
# but what a record quotes later (the quarantine's JSON, a landed value's JSON text) is
# serialised deeper in the stack, where so deep a value is a RecursionError that would fail the
# whole batch. The envelope is 2 levels; a contract's values are scalars or shallow.
MAX_DEPTH = 64
_TOO_DEEP = f"message is not usable JSON (nested too deeply: more than {MAX_DEPTH} levels)"

# What no store column holds: NUL, and the surrogates, which are not Unicode characters.
_UNHOLDABLE = re.compile("[\x00\ud800-\udfff]")
# The only way either can come out of UTF-8 JSON text: JSON requires a control character in a
# string to be escaped, and the UTF-8 decoder refuses an encoded surrogate. So a text without
# such an escape (nearly every message) is holdable without walking its values. A valid pair
# (`\ud83d\ude00`, an emoji as ASCII-only producers send it) also matches: the walk clears it.
_UNHOLDABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


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

    def __post_init__(self) -> None:
        # The reason, message id and record key reach a DLQ header and the store: whatever
        # a reason quotes, they stay short and holdable there.
        self.reason = storable(self.reason)[:MAX_REASON]
        self.message_id = storable(self.message_id)
        self.record_key = storable(self.record_key)

    @classmethod
    def from_accepted(cls, item: Accepted, reason: str, checks: list[dict[str, str]]) -> Reject:
        """An envelope that passed, rejected later for `reason` (cut to 500 characters)."""
        return cls(item.message, reason, item.envelope["message_id"], item.record_key,
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


def storable(text: str) -> str:
    """`text` with each NUL or surrogate spelled as its JSON escape (`\\u0000`): for what govex
    itself writes (a reason, a header), never for a producer's values, which are refused."""
    if _UNHOLDABLE.search(text) is None:
        return text
    return _UNHOLDABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def parse(res: IngestResource, message: Message, limit: int) -> Accepted | Reject:
    """The envelope of one message, or the reason it is rejected (never raises)."""
    envelope: Any = None
    try:
        envelope = _decode(message.value, limit)
        _check_text(envelope, message.value)
        _check_shape(envelope)
        _check_header(res, envelope)
        _check_key(res, envelope)
    except _Bad as bad:
        return _reject(res, message, envelope, bad)
    return Accepted(message, envelope, _key_text([envelope["key"][k] for k in res.key]))


def _reject(res: IngestResource, message: Message, envelope: Any, bad: _Bad) -> Reject:
    """The reject of a bad envelope, naming its message id, key and data where it has them
    (and where they are holdable: a NUL in the data keeps the data out of the quarantine; the
    DLQ has the message as it came)."""
    fallback_id = f"{res.topic}/{message.partition}/{message.offset}"
    message_id = fallback_id
    key = f"message:{fallback_id}"
    record: dict[str, Any] = {}
    if isinstance(envelope, dict):
        sent_id = envelope.get("message_id")
        if isinstance(sent_id, str) and 0 < len(sent_id) <= MAX_MESSAGE_ID \
                and _UNHOLDABLE.search(sent_id) is None:
            message_id = sent_id
            key = f"message:{message_id}"
        if isinstance(envelope.get("key"), dict):
            values = [envelope["key"].get(k) for k in res.key]
            if _first_unholdable(values) is None:
                key = _key_text(values)
        if isinstance(envelope.get("data"), dict) and _first_unholdable(envelope["data"]) is None:
            record = envelope["data"]
    return Reject(message, bad.reason, message_id, key,
                  [{"check": bad.check, "column": bad.column}], record)


def _decode(value: bytes | None, limit: int) -> Any:
    """The JSON in a message's value; _Bad when it is empty, too big, not UTF-8, not JSON or
    nested more than MAX_DEPTH levels deep."""
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
        decoded = json.loads(text, parse_constant=_no_constant)
    except ValueError as error:
        msg = f"message is not valid JSON ({error})"
        raise _Bad(msg, "json") from None
    except RecursionError:
        raise _Bad(_TOO_DEEP, "json") from None
    # Fewer brackets than the limit cannot nest deeper than it: most messages need no walk.
    if value.count(b"[") + value.count(b"{") > MAX_DEPTH and _deeper_than(decoded, MAX_DEPTH):
        raise _Bad(_TOO_DEEP, "json")
    return decoded


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests arrays and objects more than `limit` levels deep (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _check_text(envelope: Any, value: bytes | None) -> None:
    """_Bad naming the first text (value or name) of the message that no store can hold."""
    # The escapes are ASCII: the bytes tell as well as the decoded text would.
    if value is None or _UNHOLDABLE_ESCAPE.search(value) is None:
        return
    found = _first_unholdable(envelope)
    if found is None:
        return
    path, is_name, char = found
    if char == "\x00":
        what = "a NUL character (U+0000)"
    else:
        what = f"a lone surrogate (U+{ord(char):04X}, not a Unicode character)"
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    where = where.removeprefix(".") or "the envelope"
    text = f"a field name in {where}" if is_name else f"a text value in {where}"
    msg = f"{text} contains {what}, which the store cannot hold"
    # The column: the data or key field it is in, else the envelope field.
    inside = path[1:] if path[:1] in (["data"], ["key"]) else path
    raise _Bad(msg, "encoding", str(inside[0]) if inside else "")


def _first_unholdable(value: Any) -> tuple[list[str | int], bool, str] | None:
    """The first text in `value` (in document order, a name before its value) holding a NUL or
    a surrogate: (its path, whether it is a name, the character); None when there is none."""
    path: list[str | int] = []
    # Depth first, iteratively (a deeply nested message must not exhaust the stack).
    stack: list[tuple[list[str | int], Any, bool]] = [(path, value, False)]
    while stack:
        where, item, is_name = stack.pop()
        if isinstance(item, str):
            bad = _UNHOLDABLE.search(item)
            if bad is not None:
                return where, is_name, bad.group()
        elif isinstance(item, dict):
            for name, member in reversed(list(item.items())):
                stack.append(([*where, name], member, False))
                stack.append((where, name, True))
        elif isinstance(item, list):
            stack.extend(([*where, i], member, False)
                         for i, member in reversed(list(enumerate(item))))
    return None


def _no_constant(name: str) -> Any:
    """Python's json accepts NaN, Infinity and -Infinity; JSON (RFC 8259) does not."""
    msg = f"{name} is not a JSON value"
    raise ValueError(msg)


def _check_shape(envelope: Any) -> None:
    """A JSON object with exactly the envelope's fields."""
    if not isinstance(envelope, dict):
        msg = "message is not a JSON object (the govex envelope)"
        raise _Bad(msg, "envelope")
    missing = sorted(ENVELOPE_FIELDS - envelope.keys()
                     - ({"data"} if envelope.get("op") == "delete" else set()))
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
    if len(envelope["message_id"]) > MAX_MESSAGE_ID:
        msg = f"envelope message_id is longer than {MAX_MESSAGE_ID} characters"
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
    if envelope["op"] == "delete" and envelope.get("data") is None:
        # A delete needs only its key: data, null or absent, carries no meaning for it.
        envelope["data"] = {}
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
