"""At most GOVEX_VERIFY_KEY_DAILY answers per record key, subscription and Asia/Shanghai day:
past it a record is answered `"limited": true` only, and nothing of it is recorded or counted,
so a value cannot be enumerated by asking again and again."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from exchange.store import Principal
from exchange.verify import service
from govex.workdays import SHANGHAI
from tests.verify.conftest import CODE, ask, people, person

GSC = Principal("gsc", "consumer")
TAX = Principal("tax", "consumer")
# 23:30 in Shanghai on 1 December, then 00:30 on 2 December: another day.
LATE = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)
NEXT_DAY = LATE + dt.timedelta(hours=1)


def _call(world: Any, who: Principal, records: list[dict[str, Any]],
          at: dt.datetime) -> list[dict[str, Any]]:
    body = json.dumps({"records": records}).encode()
    results: list[dict[str, Any]] = service.verify(world.store, who, CODE, body, now=at)["results"]
    return results


def test_a_key_gets_its_daily_answers_then_limited(
    world_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_VERIFY_KEY_DAILY", "3")
    world = world_factory(people(10))
    world.run()
    one, two = person(1), person(2)
    guesses = [ask(one["id_no"], birth_date=f"1960-01-{day:02d}") for day in range(1, 6)]
    first = _call(world, GSC, [*guesses, ask(two["id_no"], name=two["name"])], LATE)
    assert [r.get("limited", False) for r in first] == [False, False, False, True, True, False]
    assert first[3] == {"key": {"id_no": one["id_no"]}, "limited": True}
    assert first[5]["match"] == {"name": True}
    # The same day: the key is spent, the other key still has answers.
    again = _call(world, GSC, [ask(one["id_no"], name=one["name"]),
                               ask(two["id_no"], name=two["name"])], LATE)
    assert again[0] == {"key": {"id_no": one["id_no"]}, "limited": True}
    assert again[1]["found"] is True
    # Another subscription counts its own answers.
    assert _call(world, TAX, [ask(one["id_no"], name=one["name"])], LATE)[0]["found"] is True
    # The next day in Shanghai, the key answers again.
    assert _call(world, GSC, [ask(one["id_no"], name=one["name"])], NEXT_DAY)[0]["match"] == {
        "name": True}

    # Only answers are recorded and counted; the limited asks are not.
    assert world.count("verify_records", subscription="SUB-GSC-V01") == (3 + 1) + 1 + 1
    with world.store.connect() as conn:
        used = {row.day: row for row in conn.exec_driver_sql(
            "SELECT day, calls, records FROM usage_daily WHERE subscription = 'SUB-GSC-V01'")}
        answers = sorted(tuple(r) for r in conn.exec_driver_sql(
            "SELECT day, answers FROM verify_answers WHERE subscription = 'SUB-GSC-V01'"))
    assert [(row.calls, row.records) for _, row in sorted(used.items())] == [(2, 5), (1, 1)]
    assert [a[1] for a in answers] == [2, 3, 1]  # day 1: keys two and one; day 2: key one


def test_a_key_asked_under_another_spelling_is_the_same_key(
    world_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count is per record, whatever case its check digit is sent in."""
    monkeypatch.setenv("GOVEX_VERIFY_KEY_DAILY", "2")
    world = world_factory(people(10))
    world.run()
    key = person(3)["id_no"]
    assert key.endswith("X")
    results = _call(world, GSC, [ask(key), ask(key.lower()), ask(key.lower())], LATE)
    assert [r.get("limited", False) for r in results] == [False, False, True]
    assert results[1] == {"key": {"id_no": key.lower()}, "found": True, "match": {}}


def test_runs_forget_earlier_days_counts_and_an_end_forgets_all(world_factory: Any) -> None:
    world = world_factory(people(10))
    world.run()
    today = dt.datetime.now(SHANGHAI).date()
    for at in (dt.datetime.now(dt.UTC) - dt.timedelta(days=2), dt.datetime.now(dt.UTC)):
        _call(world, GSC, [ask(person(1)["id_no"])], at)
    _call(world, TAX, [ask(person(1)["id_no"])], dt.datetime.now(dt.UTC))
    assert world.count("verify_answers", subscription="SUB-GSC-V01") == 2
    world.run()
    with world.store.connect() as conn:
        left = [r.day for r in conn.exec_driver_sql(
            "SELECT day FROM verify_answers WHERE subscription = 'SUB-GSC-V01'")]
    assert [dt.date.fromisoformat(str(d)) for d in left] == [today]
    with world.client() as client:
        client.post("/api/v1/subscriptions/SUB-GSC-V01/revoke", json={"reason": "结束"},
                    headers=world.headers("psb", "provider"))
    world.run()
    assert world.count("verify_answers", subscription="SUB-GSC-V01") == 0
    assert world.count("verify_answers", subscription="SUB-TAX-V01") == 1


def test_a_subscription_probing_for_keys_is_refused_until_midnight(
    world_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trying many keys (an ID number's sequence numbers with a known name) is mostly "not
    found": past GOVEX_VERIFY_NOT_FOUND_DAILY of those a day the subscription is refused
    (429 until midnight in Shanghai) whatever it asks, and nothing of the refused call is
    recorded; another subscription, and the next day, are not affected."""
    monkeypatch.setenv("GOVEX_VERIFY_NOT_FOUND_DAILY", "3")
    world = world_factory(people(10))
    world.run()
    one = person(1)
    tries = [ask(f"{110105199001019000 + n:018d}", name=one["name"]) for n in range(4)]
    first = _call(world, GSC, tries, LATE)  # one call may pass the cap by its own records
    assert [r["found"] for r in first] == [False] * 4
    recorded = world.count("verify_records", subscription="SUB-GSC-V01")
    with pytest.raises(service.TooManyCalls, match="GOVEX_VERIFY_NOT_FOUND_DAILY 3") as refused:
        _call(world, GSC, [ask(one["id_no"], name=one["name"])], LATE)
    assert refused.value.retry_after == 30 * 60  # 23:30 in Shanghai: half an hour to go
    assert world.count("verify_records", subscription="SUB-GSC-V01") == recorded
    assert _call(world, TAX, [ask(one["id_no"], name=one["name"])], LATE)[0]["found"] is True
    assert _call(world, GSC, [ask(one["id_no"], name=one["name"])], NEXT_DAY)[0]["match"] == {
        "name": True}


def test_not_found_answers_under_the_cap_are_answered(
    world_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_VERIFY_NOT_FOUND_DAILY", "3")
    world = world_factory(people(10))
    world.run()
    unknown = [ask(f"{110105199001019000 + n:018d}") for n in range(2)]
    assert [r["found"] for r in _call(world, GSC, unknown, LATE)] == [False, False]
    known = person(2)
    assert _call(world, GSC, [ask(known["id_no"], name=known["name"])], LATE)[0]["found"]
