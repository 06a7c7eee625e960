"""One verification call, `POST /api/v1/verify/{code}`: match or mismatch per field, found or
not found, for 1–1000 records, and never a value.

    the consumer's verify subscription to `code` → the call rate → the body, checked →
    keys and values typed and digested → one store transaction: the per-key answer counts,
    the index lookup, a `verify_records` row per answered record, the usage counts

Refusals change nothing and say why in one sentence: a token that is not a consumer's, or a
department with no active verify subscription to `code` (Forbidden, 403); an unknown
resource (404); over the subscription's call rate (TooManyCalls, 429, with the seconds to
wait); a body that is not what the route takes (DeclarationError, 422, naming
`records[i].fields.<name>` or whichever part is at fault: too many records, a field the
subscription may not ask about, a value not of its field's type).

Answers come from the subscription's verification index (`index`), as of the last run that
brought the subscription level with its resource (`as_of`). A record key gets at most
GOVEX_VERIFY_KEY_DAILY answers per subscription and day (Asia/Shanghai), counted in the store
so that every server process shares the count: past it, the record is answered
`"limited": true` and nothing else, and it is neither recorded nor counted as an answer (so a
birth date cannot be found by asking 366 times). The per-key limit does not bound how many
different keys are tried (an ID number found by trying its thousand sequence numbers with the
person's name): a subscription whose records answered "not found" today reach
GOVEX_VERIFY_NOT_FOUND_DAILY (metered in `usage_daily`, read with the catalog row) is refused
(429) until midnight Asia/Shanghai. What a call answered — one `verify_records`
row per answered record, the answer counts and the day's usage (`answers.record`, counted as
`records.count_usage` counts: one call, the records answered, the body's bytes, the records
found with every asked field matching, the records not found) — commits in one transaction,
or none of it does.

On a PostgreSQL store the call's statements go straight through psycopg (`direct`), and a
call of a few records makes its canonical texts and digests in plain Python (`_plain`): a
single-record call was otherwise mostly SQLAlchemy's and Arrow's fixed costs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
import pyarrow as pa
import sqlalchemy as sa

import catalog
import records
from catalog import tables as catalog_tables
from exchange.run import bookkeeping, masking, secrets
from exchange.store import Principal
from exchange.verify import answers, direct
from exchange.verify.canonical import (
    BadValue,
    FieldRule,
    field_rules,
    normalised,
    parse,
    plain_text,
)
from exchange.verify.digests import Digester
from exchange.verify.limits import CallRate
from govex.errors import DeclarationError, Forbidden, GovexError
from govex.ids import uuid7
from govex.moments import aware
from govex.settings import Settings, load_settings
from govex.workdays import SHANGHAI, local_date

__all__ = ["CALL_RATE", "MAX_RECORDS", "TooManyCalls", "UnknownResource", "recorded_key",
           "verify"]

MAX_RECORDS = 1000
#: This process's call buckets, one per subscription (`limits`).
CALL_RATE = CallRate()
_BODY_KEYS = ("records", "subscription")
_RECORD_KEYS = frozenset(("key", "fields"))
_NO_FIELDS: dict[str, Any] = {}
_CACHE_SIZE = 1024  # parsed declarations and contract rules kept per process

subscriptions = catalog_tables.subscriptions
resources = catalog_tables.resources
progress = bookkeeping.progress


class UnknownResource(DeclarationError):
    """No resource has this code (HTTP 404)."""


class TooManyCalls(GovexError):  # noqa: N818 - named for the HTTP answer it becomes
    """Over the subscription's call rate (HTTP 429); retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Verifier:
    """A consumer's verify subscription as a call uses it."""

    sub: catalog.Subscription
    resource: catalog.Resource
    key: tuple[FieldRule, ...]
    key_names: frozenset[str]
    rules: dict[str, FieldRule]  # the fields it may ask about
    as_of: dt.datetime | None  # when a run last brought its index level with the resource
    not_found_today: int  # its answers "not found" so far today (Asia/Shanghai)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def verify(
    store: sa.Engine, principal: Principal, code: str, body: bytes,
    *, now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Answer one call of `principal` about resource `code` with the JSON `body` (see the
    module docstring for what is refused, and how)."""
    at = now or _now()
    if principal.role != "consumer":
        msg = (f"{principal.department}/{principal.role} may not verify: verification is asked "
               "with a consumer token of a department holding a verify subscription")
        raise Forbidden(msg)
    settings = load_settings()
    # One connection and one transaction for the whole call: the catalog read, then the
    # writes (a store round trip costs more than anything computed in between).
    with store.begin() as conn:
        verifier, items = _admitted(conn, principal, code, body, at, settings)
        asked = _digested(store, settings, items, verifier)
        granted, held = answers.grant(conn, verifier.sub.id, asked.key_digests, at,
                                      settings.verify_key_daily)
        results, done = _answers(items, asked, granted, held)
        answers.record(conn, call_id=str(uuid7()), resource=code, subscription=verifier.sub.id,
                       consumer=verifier.sub.consumer, at=at, answered=done,
                       body_bytes=len(body))
    as_of = verifier.as_of.isoformat() if verifier.as_of is not None else None
    return {"subscription": verifier.sub.id, "as_of": as_of, "results": results}


def _recorded(keys: pa.Table, rules: Sequence[FieldRule], key: Sequence[str]) -> list[str]:
    """The asked keys as `verify_records` names them: provenance's KEY text of each key
    typed and normalised as it was compared (an ID number's check character in upper case)."""
    return [str(k) for k in records.record_keys(
        pa.table({r.name: normalised(keys.column(r.name), r) for r in rules}), key,
    ).to_pylist()]


def recorded_key(conn: sa.Connection, code: str, key: str) -> str:
    """Record `key` of `code` (provenance's KEY text, as the source spells it) as a call
    records it, so that disclosure finds its verifications however the source spells the key
    (a source may keep an ID number's check character x in lower case). `key` itself when a
    part is not of its field's type: no call could have asked it so. DeclarationError for an
    unknown resource or a key of the wrong shape."""
    resource = catalog.load_resource(conn, code)
    rules = field_rules(catalog.load_contract_version(conn, resource.contract))
    key_rules = [rules[name] for name in resource.key]
    parts = records.split_key(key, resource.key)
    try:
        typed = pa.table({r.name: parse([parts[r.name]], r) for r in key_rules})
    except BadValue:
        return key
    return _recorded(typed, key_rules, resource.key)[0]


# ---- who is asking, under which subscription -------------------------------------------


def _admitted(
    conn: sa.Connection, principal: Principal, code: str, body: bytes, at: dt.datetime,
    settings: Settings,
) -> tuple[_Verifier, list[_Item]]:
    """The subscription the call is under and its records, once every refusal is passed:
    who may ask (403, 404), then the body's JSON, the subscription named, the call rate
    (429), the records (422)."""
    candidates = _active(conn, principal.department, code, at)
    asked = _body(body)
    verifier = _chosen(candidates, asked.get("subscription"), principal.department, code)
    cap = settings.verify_not_found_daily
    if verifier.not_found_today >= cap:
        wait = _to_midnight(at)
        msg = (f"subscription {verifier.sub.id} has had {verifier.not_found_today} records "
               f"answered not found today, its limit (GOVEX_VERIFY_NOT_FOUND_DAILY {cap}): "
               "asking mostly about records the source does not hold is how keys are "
               f"enumerated; it answers again after midnight Asia/Shanghai, in {wait} s")
        raise TooManyCalls(msg, wait)
    wait = CALL_RATE.take(verifier.sub.id, settings.verify_rate)
    if wait:
        msg = (f"subscription {verifier.sub.id} is over its {settings.verify_rate} calls per "
               f"second (GOVEX_VERIFY_RATE); retry after {wait} s")
        raise TooManyCalls(msg, wait)
    return verifier, _records(asked, verifier, code)


def _to_midnight(at: dt.datetime) -> int:
    """Whole seconds from `at` to the next midnight in Asia/Shanghai, when the day's counts
    start again."""
    local = at.astimezone(SHANGHAI)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(),
                                   tzinfo=SHANGHAI)
    return max(1, int((midnight - local).total_seconds() + 0.999))


_parsed: dict[tuple[str, str, str], Any] = {}


def _cached(kind: str, name: str, stamp: Any, make: Any) -> Any:
    """A declaration parsed (or a contract's rules built) once per process and version."""
    key = (kind, name, str(stamp))
    found = _parsed.get(key)
    if found is None:
        if len(_parsed) > _CACHE_SIZE:
            _parsed.clear()
        found = _parsed[key] = make()
    return found


# Built once: a statement built per call costs more CPU than the call's own work (SQLAlchemy
# constructs it and derives its cache key each time); the same holds in `index` and `answers`.
# The declarations come as their JSON text, parsed only when `_cached` has no current copy:
# decoding them on every call cost more than the rest of the read.
_SUBSCRIPTIONS = (
    sa.select(subscriptions.c.id, subscriptions.c.state, subscriptions.c.ended_at,
              subscriptions.c.valid_from, subscriptions.c.valid_until,
              subscriptions.c.declaration["delivery"].as_string().label("delivery"),
              sa.cast(subscriptions.c.declaration, sa.Text).label("declaration"),
              subscriptions.c.updated_at,
              sa.cast(resources.c.declaration, sa.Text).label("resource"),
              resources.c.updated_at.label("resource_at"),
              progress.c.updated_at.label("indexed_at"),
              records.usage_daily.c.not_found)
    .select_from(
        subscriptions.join(resources, resources.c.code == subscriptions.c.resource_code)
        .outerjoin(progress, progress.c.subscription == subscriptions.c.id)
        .outerjoin(records.usage_daily, sa.and_(
            records.usage_daily.c.subscription == subscriptions.c.id,
            records.usage_daily.c.day == sa.bindparam("day"))))
    .where(subscriptions.c.resource_code == sa.bindparam("code"),
           subscriptions.c.consumer == sa.bindparam("department"))
)
_SUBSCRIPTIONS_DIRECT = direct.Statement(_SUBSCRIPTIONS)


def _active(
    conn: sa.Connection, department: str, code: str, at: dt.datetime
) -> list[_Verifier]:
    """The department's verify subscriptions to `code` that are active today (Asia/Shanghai):
    one indexed read of the catalog per call, so a revocation holds from the next call."""
    today = local_date(at)
    params = {"code": code, "department": department, "day": today}
    listed: Iterable[Mapping[Any, Any]]
    if direct.applies(conn):
        listed = _SUBSCRIPTIONS_DIRECT.mappings(conn, params)
    else:
        listed = conn.execute(_SUBSCRIPTIONS, params).mappings()
    rows = [r for r in listed if r["delivery"] == "verify"]
    if not rows:
        known = conn.execute(sa.select(resources.c.code).where(resources.c.code == code)).first()
        if known is None:
            msg = f"unknown resource code '{code}' (see GET /api/v1/resources)"
            raise UnknownResource(msg, value=code)
        msg = (f"department '{department}' holds no verify subscription to {code}: ask for "
               "one with a sharing request (delivery: verify)")
        raise Forbidden(msg)
    active = [r for r in rows if r["state"] == "active" and r["valid_from"] <= today
              and (r["valid_until"] is None or today <= r["valid_until"])]
    if not active:
        raise Forbidden(_why_not_active(rows[0], code, today))
    return sorted((_verifier(conn, row) for row in active), key=lambda v: v.sub.id)


def _why_not_active(row: Mapping[Any, Any], code: str, today: dt.date) -> str:
    if row["state"] == "revoked":
        ended = aware(row["ended_at"])
        when = f" on {local_date(ended)}" if ended else ""
        return f"verify subscription {row['id']} to {code} was revoked{when}: it answers no more"
    if row["valid_from"] > today:
        return f"verify subscription {row['id']} to {code} is valid from {row['valid_from']}"
    return (f"verify subscription {row['id']} to {code} expired: it was valid until "
            f"{row['valid_until']}")


def _verifier(conn: sa.Connection, row: Mapping[Any, Any]) -> _Verifier:
    sub: catalog.Subscription = _cached(
        "subscription", row["id"], row["updated_at"],
        lambda: catalog.Subscription.model_validate(json.loads(row["declaration"])))
    resource: catalog.Resource = _cached(
        "resource", sub.resource, row["resource_at"],
        lambda: catalog.Resource.model_validate(json.loads(row["resource"])))
    rules: dict[str, FieldRule] = _cached(  # a registered contract version never changes
        "contract", resource.contract, "",
        lambda: field_rules(catalog.load_contract_version(conn, resource.contract)))
    return _Verifier(sub, resource, tuple(rules[k] for k in resource.key),
                     frozenset(resource.key), {f: rules[f] for f in sub.fields if f in rules},
                     aware(row["indexed_at"]), row["not_found"] or 0)


def _chosen(candidates: list[_Verifier], named: Any, department: str, code: str) -> _Verifier:
    """The subscription the call is under: the one named in the body, or the only one."""
    if named is not None:
        if not isinstance(named, str):
            msg = "body field 'subscription' must be a subscription id (SUB-…)"
            raise DeclarationError(msg, field="subscription")
        for verifier in candidates:
            if verifier.sub.id == named:
                return verifier
        msg = (f"'{named}' is not an active verify subscription of department '{department}' "
               f"to {code} (active: {', '.join(v.sub.id for v in candidates)})")
        raise Forbidden(msg)
    if len(candidates) > 1:
        msg = (f"department '{department}' holds several verify subscriptions to {code} "
               f"({', '.join(v.sub.id for v in candidates)}): name one in body field "
               "'subscription'")
        raise DeclarationError(msg, field="subscription")
    return candidates[0]


_masters: dict[str, bytes] = {}
_NO_MASTER = bytes(32)  # no run has delivered yet: nothing is indexed under any key


def _master(store: sa.Engine, settings: Settings) -> bytes:
    """The master key behind every subscription key, read from the store once per process
    (it never changes once made; GOVEX_SECRET_KEY, when set, wins as everywhere). A call
    creates none: before any run made one, no index exists and a stand-in finds nothing."""
    configured = secrets.configured_master_key(settings)
    if configured is not None:
        return configured
    url = store.url.render_as_string(hide_password=True)
    found = _masters.get(url)
    if found is None:
        found = secrets.find_master_key(store)
        if found is None:
            return _NO_MASTER
        _masters[url] = found
    return found


_digesters: dict[tuple[bytes, str], Digester] = {}


def _digester(master: bytes, subscription: str) -> Digester:
    """The subscription's digester (its key derived, its HMAC pads hashed), once per process."""
    found = _digesters.get((master, subscription))
    if found is None:
        if len(_digesters) > _CACHE_SIZE:
            _digesters.clear()
        found = _digesters[(master, subscription)] = Digester(
            masking.subscription_key(master, subscription))
    return found


# ---- the body -------------------------------------------------------------------------


class _Item(NamedTuple):
    """One asked record: its key and its fields as sent (a tuple: a call makes a thousand)."""

    key: dict[str, Any]
    fields: dict[str, Any]


def _body(body: bytes) -> dict[str, Any]:
    try:  # orjson: a 1000-record body parses in a third of the time (and NaN is refused)
        asked = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        msg = f"the request body is not valid JSON ({error})"
        raise DeclarationError(msg) from None
    if not isinstance(asked, dict):
        msg = 'the request body must be a JSON object {"records": [...]}'
        raise DeclarationError(msg)
    unknown = [k for k in asked if k not in _BODY_KEYS]
    if unknown:
        msg = (f"body field '{unknown[0]}' is not known: send 'records' and, when the "
               "department holds several verify subscriptions, 'subscription'")
        raise DeclarationError(msg, field=unknown[0])
    return asked


def _records(asked: dict[str, Any], verifier: _Verifier, code: str) -> list[_Item]:
    listed = asked.get("records")
    if not isinstance(listed, list):
        msg = "body field 'records' must be a list of 1 to 1000 records {key, fields}"
        raise DeclarationError(msg, field="records")
    if not listed or len(listed) > MAX_RECORDS:
        msg = (f"records holds {len(listed)} records; ask about 1 to {MAX_RECORDS} in one call")
        raise DeclarationError(msg, field="records")
    items: list[_Item] = []
    allowed = verifier.rules.keys()
    for record in listed:
        # The common case in a few set comparisons; anything else is named by `_refused`.
        key = record.get("key") if type(record) is dict else None
        fields = record.get("fields", _NO_FIELDS) if type(record) is dict else None
        if not (type(key) is dict and type(fields) is dict and record.keys() <= _RECORD_KEYS
                and key.keys() == verifier.key_names and fields.keys() <= allowed):
            raise _refused(len(items), record, verifier, code)
        items.append(_Item(key, fields))
    return items


def _refused(i: int, record: Any, verifier: _Verifier, code: str) -> DeclarationError:
    """What is wrong with `records[i]`, in one sentence naming the part at fault."""
    where = f"records[{i}]"
    if not isinstance(record, dict):
        return DeclarationError(f"{where} must be an object {{key, fields}}", field=where)
    unknown = [k for k in record if k not in _RECORD_KEYS]
    if unknown:
        msg = f"{where}.{unknown[0]} is not known: a record has 'key' and 'fields'"
        return DeclarationError(msg, field=f"{where}.{unknown[0]}")
    key, fields = record.get("key"), record.get("fields", _NO_FIELDS)
    if not isinstance(key, dict):
        msg = (f"{where}.key must be an object naming the record key "
               f"({', '.join(verifier.resource.key)})")
        return DeclarationError(msg, field=f"{where}.key")
    for name in key:
        if name not in verifier.key_names:
            msg = (f"{where}.key.{name} is not a key field of {code} (its key: "
                   f"{', '.join(verifier.resource.key)})")
            return DeclarationError(msg, field=f"{where}.key.{name}")
    missing = [k for k in verifier.resource.key if k not in key]
    if missing:
        msg = f"{where}.key.{missing[0]} is missing: the key of {code} is " + ", ".join(
            verifier.resource.key)
        return DeclarationError(msg, field=f"{where}.key.{missing[0]}")
    if not isinstance(fields, dict):
        msg = f"{where}.fields must be an object {{field: value}}"
        return DeclarationError(msg, field=f"{where}.fields")
    name = next(n for n in fields if n not in verifier.rules)
    msg = (f"{where}.fields.{name} is not a field of subscription {verifier.sub.id} (it may "
           f"ask about: {', '.join(verifier.rules)})")
    return DeclarationError(msg, field=f"{where}.fields.{name}")


def _keys(items: Sequence[_Item], verifier: _Verifier) -> pa.Table:
    """The asked keys as a table in the contract's key types (422 naming a bad part)."""
    columns = {}
    for rule in verifier.key:
        asked = [item.key[rule.name] for item in items]
        try:
            columns[rule.name] = parse(asked, rule)
        except BadValue as bad:
            where = f"records[{bad.index}].key.{rule.name}"
            msg = f"{where} {bad.reason}"
            raise DeclarationError(msg, field=where) from None
        at = next((i for i, value in enumerate(asked) if type(value) is str
                   and "\x00" in value), None)  # parsed: a text field's values are texts
        if at is not None:
            where = f"records[{at}].key.{rule.name}"
            msg = (f"{where} holds the character U+0000, which no record key holds (a call "
                   "is recorded by its keys)")
            raise DeclarationError(msg, field=where)
    return pa.table(columns)


def _asked(items: Sequence[_Item]) -> dict[str, tuple[list[int], list[Any]]]:
    """Per asked field: (the records asking it, their values as sent)."""
    first = items[0].fields.keys()
    if all(item.fields.keys() == first for item in items):  # the usual call: one form
        everyone = list(range(len(items)))
        return {name: (everyone, [item.fields[name] for item in items]) for name in first}
    rows: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        for name in item.fields:
            rows.setdefault(name, []).append(i)
    return {name: (asking, [items[i].fields[name] for i in asking])
            for name, asking in rows.items()}


def _values(
    items: Sequence[_Item], verifier: _Verifier
) -> dict[str, tuple[list[int], pa.Array[Any]]]:
    """Per asked field: (the records asking it, their values in the field's contract type)."""
    typed = {}
    for name, (asking, values) in _asked(items).items():
        try:
            typed[name] = (asking, parse(values, verifier.rules[name]))
        except BadValue as bad:
            where = f"records[{asking[bad.index]}].fields.{name}"
            msg = f"{where} {bad.reason}"
            raise DeclarationError(msg, field=where) from None
    return typed


#: Records up to which a call's texts are made in plain Python (`_plain`).
PLAIN_MOST = 16


_Plain = tuple[list[list[str]], list[str], dict[str, tuple[list[int], list[str]]]]


def _plain(items: Sequence[_Item], verifier: _Verifier) -> _Plain | None:
    """(each key's canonical texts, each record key as `_recorded` names it, per asked field
    the records asking it and their canonical texts) in plain Python, `canonical.plain_text`:
    for a few records Arrow's fixed cost per column and kernel was most of the call's work.
    None when a value is not certain to give Arrow's text, or is not of its type: the call
    then takes Arrow's path (`_keys`, `_values`), which also names the value at fault."""
    key_texts: list[list[str]] = []
    record_keys: list[str] = []
    for item in items:
        parts, recorded = [], []
        for rule in verifier.key:
            value = item.key[rule.name]
            text = plain_text(value, rule)
            as_key = (plain_text(value, rule, key=True) if pa.types.is_floating(rule.type)
                      else text)
            if text is None or as_key is None or "\x00" in as_key:
                return None  # Arrow's path names what is wrong with it
            parts.append(text)
            recorded.append(as_key)
        key_texts.append(parts)
        record_keys.append(",".join(recorded))  # the rules are in the resource key's order
    texts: dict[str, tuple[list[int], list[str]]] = {}
    for name, (asking, values) in _asked(items).items():
        rule = verifier.rules[name]
        named = [plain_text(value, rule) for value in values]
        if None in named:
            return None
        texts[name] = (asking, cast("list[str]", named))
    return key_texts, record_keys, texts


def _digested(
    store: sa.Engine, settings: Settings, items: Sequence[_Item], verifier: _Verifier
) -> _Asked:
    """The call's keys and values digested under the subscription's key: in plain Python for
    a few records whose values all allow it (`_plain`), else through Arrow, which also names
    a value that is not of its field's type (422)."""
    digester = _digester(_master(store, settings), verifier.sub.id)
    plain = _plain(items, verifier) if len(items) <= PLAIN_MOST else None
    if plain is None:
        keys = _keys(items, verifier)
        values = _values(items, verifier)
        return _Asked(digester.key_digests(keys, verifier.key),
                      _recorded(keys, verifier.key, verifier.resource.key),
                      {name: (asking, digester.field_digests(typed, verifier.rules[name]))
                       for name, (asking, typed) in values.items()})
    key_texts, record_keys, texts = plain
    return _Asked(digester.key_digests_of(key_texts), record_keys,
                  {name: (asking, digester.field_digests_of(named, verifier.rules[name]))
                   for name, (asking, named) in texts.items()})


class _Asked(NamedTuple):
    """A call's records digested: what the index is asked and what `verify_records` names."""

    key_digests: list[str]
    record_keys: list[str]  # provenance's KEY text of each asked key
    field_digests: dict[str, tuple[list[int], Sequence[str | None]]]  # (records, digests)


# ---- the answers ----------------------------------------------------------------------


def _answers(
    items: Sequence[_Item], asked: _Asked, granted: Sequence[bool],
    held: Mapping[str, Mapping[str, str]],
) -> tuple[list[dict[str, Any]], list[answers.Answered]]:
    """(the results in the order asked, and each answered record as it is recorded)."""
    record_keys = asked.record_keys
    sources = [held.get(digest) if ok else None
               for digest, ok in zip(asked.key_digests, granted, strict=True)]
    matches: list[dict[str, bool]] = [{} for _ in items]
    for name, (asking, digests) in asked.field_digests.items():
        for record, digest in zip(asking, digests, strict=True):
            source = sources[record]
            if source is not None:  # no digest where the source holds no value: no match
                matches[record][name] = digest is not None and source.get(name) == digest
    results: list[dict[str, Any]] = []
    done: list[answers.Answered] = []
    for i, item in enumerate(items):
        if not granted[i]:
            results.append({"key": item.key, "limited": True})
            continue
        fields = ",".join(item.fields)
        if sources[i] is None:
            results.append({"key": item.key, "found": False})
            done.append(answers.Answered(record_keys[i], fields, False, False))
            continue
        match = matches[i]
        results.append({"key": item.key, "found": True, "match": match})
        done.append(answers.Answered(record_keys[i], fields, True, all(match.values())))
    return results, done
