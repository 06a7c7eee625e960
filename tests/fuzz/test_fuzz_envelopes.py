"""Fuzz: the ingest worker's per-message decoding and checks, in process, without a broker.

Random bytes, random JSON (NUL, surrogates, huge integers, non-finite floats) and mutated valid
envelopes of the demo's Kafka-fed resource (TAX-RES-001) are judged in micro-batches by
`checks.judge`. Judging never raises; every message is either accepted or rejected, once, with a
non-empty reason; and what is accepted is exactly the envelope INTERFACES.md describes.
A fixed, derandomised budget keeps CI reproducible and fast.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catalog
import contracts
from exchange.demo.files import packaged_workspace
from exchange.ingest import checks
from exchange.ingest.envelope import ENVELOPE_FIELDS, MAX_MESSAGE_BYTES, Message, Reject
from exchange.ingest.resource import IngestResource

FUZZ = settings(max_examples=500, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

_UNHOLDABLE = re.compile("[\x00\ud800-\udfff]")
USCC = "91350100M000100Y43"  # a valid unified social credit code (GB 32100-2015 check digit)
GOOD_DATA: dict[str, Any] = {
    "uscc": USCC, "taxpayer_name": "某某公司", "credit_level": "A",
    "evaluation_year": 2024, "evaluated_on": "2025-04-01",
}


def _resource() -> IngestResource:
    root = packaged_workspace()
    declared = catalog.Resource.model_validate(
        yaml.safe_load((root / "resources" / "tax-credit-rating.yaml").read_text("utf-8")))
    contract = contracts.load_contract(
        Path(root) / "contracts" / "tax_credit_rating" / "1.0.0.json")
    return IngestResource(declared, contract)


RES = _resource()


def _good_envelope(i: int = 0) -> dict[str, Any]:
    return {
        "message_id": f"m-{i}", "resource": RES.code, "contract_version": RES.contract.version,
        "op": "upsert", "key": {"uscc": USCC}, "data": dict(GOOD_DATA),
        "source_system": "tax-vertical", "event_time": "2026-01-01T00:00:00+08:00",
    }


# -- strategies ---------------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=()), max_size=20) | st.sampled_from(
    ["", "\x00", "\ud800", "a\udfffb", "\ud83d\ude00", "upsert", "delete", RES.code, USCC, "1.0.0",
     "2026-01-01", "not-a-date", "A" * 300])
_scalars = (
    st.none() | st.booleans()
    | st.integers() | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=15,
)


def _dumps(value: Any, ascii_only: bool) -> bytes:
    """JSON text of `value` as bytes; a surrogate that UTF-8 cannot encode goes through as
    `surrogatepass` bytes (not UTF-8: the worker must refuse them)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def mutated_envelope(draw: st.DrawFn) -> Any:
    envelope: Any = _good_envelope(draw(st.integers(0, 5)))
    if draw(st.booleans()):
        envelope["op"] = "delete"
        if draw(st.booleans()):
            envelope.pop("data")
        elif draw(st.booleans()):
            envelope["data"] = None
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(
            ["drop", "replace", "extra", "op", "key", "data_field", "data_drop", "key_extra",
             "nest", "whole"]))
        if not isinstance(envelope, dict):
            break
        fields = sorted(envelope) or ["message_id"]
        if action == "drop" and envelope:
            envelope.pop(draw(st.sampled_from(fields)), None)
        elif action == "replace":
            envelope[draw(st.sampled_from(sorted(ENVELOPE_FIELDS)))] = draw(json_values)
        elif action == "extra":
            envelope[draw(_text)] = draw(json_values)
        elif action == "op":
            envelope["op"] = draw(st.sampled_from(["UPSERT", "insert", "", None, 1, "delete"])
                                  | _text)
        elif action == "key":
            if isinstance(envelope.get("key"), dict):
                envelope["key"]["uscc"] = draw(json_values)
        elif action == "key_extra":
            if isinstance(envelope.get("key"), dict):
                envelope["key"][draw(_text)] = draw(json_values)
        elif action == "data_field":
            if isinstance(envelope.get("data"), dict):
                name = draw(st.sampled_from([*GOOD_DATA, "extra"]) | _text)
                envelope["data"][name] = draw(json_values)
        elif action == "data_drop":
            if isinstance(envelope.get("data"), dict) and envelope["data"]:
                envelope["data"].pop(draw(st.sampled_from(sorted(envelope["data"]))))
        elif action == "nest":
            depth = draw(st.sampled_from([63, 64, 65, 200]))
            value: Any = 1
            for _ in range(depth):
                value = [value]
            envelope[draw(st.sampled_from(["data", "key", "extra"]))] = value
        else:
            envelope = draw(json_values)
    return envelope


message_values = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.builds(_dumps, json_values, st.booleans()),
    st.builds(_dumps, mutated_envelope(), st.booleans()),
    # Valid envelopes with raw byte damage: truncation, a flipped byte, NaN spellings.
    st.builds(lambda v, cut: v[:cut], st.builds(_dumps, mutated_envelope(), st.booleans()),
              st.integers(0, 400)),
    st.builds(lambda v: v.replace(b"2024", b"NaN", 1).replace(b"2025", b"1e999", 1),
              st.builds(_dumps, mutated_envelope(), st.just(True))),
    st.builds(lambda v, b: v.replace(b"\"A\"", b, 1),
              st.builds(_dumps, mutated_envelope(), st.just(True)),
              st.sampled_from([b"\"\\u0000\"", b"\"\\ud800\"", b"\"\\ud83d\\ude00\"", b"\"\xff\"",
                               b"Infinity", b"-0", b"1E400", b"[]"])),
)


# -- the property ---------------------------------------------------------------------------------


def _holdable(value: Any) -> bool:
    if isinstance(value, str):
        return _UNHOLDABLE.search(value) is None
    if isinstance(value, dict):
        return all(_holdable(k) and _holdable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_holdable(v) for v in value)
    return True


def _assert_valid_envelope(envelope: Any, value: bytes) -> None:
    assert isinstance(envelope, dict)
    assert value.decode("utf-8")  # UTF-8 JSON, within the limit
    assert len(value) <= MAX_MESSAGE_BYTES
    op = envelope["op"]
    assert op in ("upsert", "delete")
    expected = ENVELOPE_FIELDS if op == "upsert" else ENVELOPE_FIELDS - {"data"}
    assert expected <= envelope.keys() <= ENVELOPE_FIELDS
    for name in ("message_id", "resource", "contract_version", "source_system", "event_time"):
        assert isinstance(envelope[name], str)
        assert envelope[name]
    assert len(envelope["message_id"]) <= 200
    assert envelope["resource"] == RES.code
    assert envelope["contract_version"] == RES.contract.version
    dt.datetime.fromisoformat(envelope["event_time"])
    assert _holdable(envelope)
    key = envelope["key"]
    assert isinstance(key, dict)
    assert set(key) == set(RES.key)
    assert all(key[k] is not None and not isinstance(key[k], dict | list) for k in RES.key)
    if op == "upsert":
        data = envelope["data"]
        assert isinstance(data, dict)
        assert all(data.get(k) == key[k] for k in RES.key)
        # The contract passed: jsonschema has nothing against the record.
        assert not list(RES.validator.iter_errors(data))


@FUZZ
@given(values=st.lists(message_values, min_size=1, max_size=6),
       limit=st.sampled_from([MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES, 64]))
def test_judging_random_messages_never_raises_and_sorts_every_message(
    values: list[bytes | None], limit: int,
) -> None:
    messages = [Message(0, offset, b"k", value) for offset, value in enumerate(values)]
    judged = checks.judge(RES, messages, limit)

    accepted = [a.message.offset for a in judged.accepted]
    rejected = [r.message.offset for r in judged.rejects]
    assert sorted(accepted + rejected) == list(range(len(messages))), "a message lost or doubled"
    for reject in judged.rejects:
        assert isinstance(reject, Reject)
        assert isinstance(reject.reason, str)
        assert reject.reason.strip()
        assert _holdable(reject.reason)
        assert _holdable(reject.message_id)
        assert _holdable(reject.record_key)
        assert reject.checks
    for item in judged.accepted:
        assert item.message.value is not None
        assert len(item.message.value) <= limit
        _assert_valid_envelope(item.envelope, item.message.value)
        assert isinstance(item.record_key, str)
        assert item.record_key


@pytest.mark.parametrize("op", ["upsert", "delete"])
def test_the_seed_envelope_is_accepted(op: str) -> None:
    """The mutations start from an envelope that passes: a fuzz run that rejects everything
    would prove nothing."""
    envelope = _good_envelope()
    envelope["op"] = op
    judged = checks.judge(RES, [Message(0, 0, None, _dumps(envelope, True))], MAX_MESSAGE_BYTES)
    assert [r.reason for r in judged.rejects] == []
    assert len(judged.accepted) == 1
