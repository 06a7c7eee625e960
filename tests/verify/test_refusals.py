"""What a verification call refuses, with which status and sentence, and that a refused call
changes nothing: 422 naming the field at fault, 403 for who may not ask, 404, 413, 429 with
Retry-After."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.store import Principal
from exchange.verify import service
from govex.errors import Forbidden
from tests.verify.conftest import CODE, ask, people, person, subscriptions

URL = f"/api/v1/verify/{CODE}"
KEY = person(1)["id_no"]


@pytest.fixture
def world(world_factory: Any) -> Any:
    built = world_factory(people(20))
    built.run()
    return built


def _nothing_written(world: Any) -> None:
    """No verification record, answer count or usage of a verify subscription (the bulk
    subscription's deliveries are metered too)."""
    for table in ("verify_records", "verify_answers", "usage_daily"):
        for sub in ("SUB-GSC-V01", "SUB-TAX-V01"):
            assert world.count(table, subscription=sub) == 0, table


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"records": []}, "records holds 0 records; ask about 1 to 1000"),
    ({"records": [ask(KEY)] * 1001}, "records holds 1001 records"),
    ({"records": "all"}, "body field 'records' must be a list"),
    ({}, "body field 'records' must be a list"),
    ({"records": [ask(KEY)], "limit": 5}, "body field 'limit' is not known"),
    ({"records": [ask(KEY, phone="13800000001")]},
     "records[0].fields.phone is not a field of subscription SUB-GSC-V01"),
    ({"records": [ask(KEY), ask(KEY, nickname="x")]},
     "records[1].fields.nickname is not a field of subscription SUB-GSC-V01"),
    ({"records": [{"key": {"id_no": KEY, "name": "居民1"}}]},
     "records[0].key.name is not a key field of PSB-PPL-001"),
    ({"records": [{"key": {}}]}, "records[0].key.id_no is missing"),
    ({"records": [{"fields": {"name": "x"}}]}, "records[0].key must be an object"),
    ({"records": [{"key": {"id_no": KEY}, "extra": 1}]}, "records[0].extra is not known"),
    ({"records": [ask(KEY), ask(KEY, birth_date="1990-13-01")]},
     "records[1].fields.birth_date is not a calendar date (1990-13-01)"),
    ({"records": [ask(KEY, birth_date="1990-01-01"), ask(KEY, birth_date="1990-02-30")]},
     "records[1].fields.birth_date is not a calendar date (1990-02-30)"),
    ({"records": [ask(KEY, children="two")]},
     "records[0].fields.children must be an integer, not a string"),
    ({"records": [ask(KEY, score=True)]}, "records[0].fields.score must be a number"),
    ({"records": [ask(KEY, married="yes")]}, "records[0].fields.married must be true or"),
    ({"records": [ask(KEY, name=None)]}, "records[0].fields.name is null"),
    ({"records": [ask(KEY, name=12)]}, "records[0].fields.name must be a string"),
    ({"records": [{"key": {"id_no": 110105}}]}, "records[0].key.id_no must be a string"),
    ({"records": [ask(KEY), ask(KEY[:6] + "\x00" + KEY[7:])]},
     "records[1].key.id_no holds the character U+0000"),
]


def test_a_bad_body_is_422_naming_the_field(world: Any) -> None:
    with world.client() as client:
        for body, says in BAD_BODIES:
            answer = client.post(URL, json=body, headers=world.headers("gsc"))
            assert answer.status_code == 422, (body, answer.text)
            assert says in answer.json()["detail"], (body, answer.text)
    _nothing_written(world)


def test_a_body_that_is_not_json_is_422(world: Any) -> None:
    with world.client() as client:
        answer = client.post(URL, content=b"{records:", headers={
            **world.headers("gsc"), "Content-Type": "application/json"})
    assert answer.status_code == 422
    assert "not valid JSON" in answer.json()["detail"]


def test_who_may_not_ask_gets_403(world: Any) -> None:
    with world.client() as client:
        for department, role, says in [
            ("gsc", "admin", "gsc/admin may not verify"),
            ("psb", "provider", "psb/provider may not verify"),
            ("hpf", "consumer", "department 'hpf' holds no verify subscription to PSB-PPL-001"),
            ("psb", "consumer", "department 'psb' holds no verify subscription"),
        ]:
            answer = client.post(URL, json={"records": [ask(KEY, name="居民1")]},
                                 headers=world.headers(department, role))
            assert answer.status_code == 403, (department, role)
            assert says in answer.json()["detail"]
    _nothing_written(world)


def test_no_token_is_401_and_an_unknown_resource_404(world: Any) -> None:
    with world.client() as client:
        assert client.post(URL, json={"records": [ask(KEY)]}).status_code == 401
        answer = client.post("/api/v1/verify/NOPE-001", json={"records": [ask(KEY)]},
                             headers=world.headers("gsc"))
    assert answer.status_code == 404
    assert "unknown resource code 'NOPE-001'" in answer.json()["detail"]


def test_a_revoked_subscription_is_403_from_the_next_call(world: Any) -> None:
    with world.client() as client:
        assert client.post(URL, json={"records": [ask(KEY)]},
                           headers=world.headers("gsc")).status_code == 200
        revoked = client.post("/api/v1/subscriptions/SUB-GSC-V01/revoke",
                              json={"reason": "办事核验结束"},
                              headers=world.headers("psb", "provider"))
        assert revoked.status_code == 200, revoked.text
        answer = client.post(URL, json={"records": [ask(KEY)]}, headers=world.headers("gsc"))
    assert answer.status_code == 403
    assert "SUB-GSC-V01 to PSB-PPL-001 was revoked on" in answer.json()["detail"]
    assert world.count("verify_records") == 1  # only the call before


def test_an_expired_subscription_is_403(world: Any) -> None:
    """The day after its valid_until (2030-12-31, Asia/Shanghai) it answers no more."""
    after = dt.datetime(2030, 12, 31, 16, 0, tzinfo=dt.UTC)  # 1 January 2031 in Shanghai
    body = json.dumps({"records": [ask(KEY)]}).encode()
    gsc = Principal("gsc", "consumer")
    assert service.verify(world.store, gsc, CODE, body, now=after - dt.timedelta(minutes=1))
    with pytest.raises(Forbidden) as refused:
        service.verify(world.store, gsc, CODE, body, now=after)
    assert "SUB-GSC-V01 to PSB-PPL-001 expired: it was valid until 2030-12-31" in str(
        refused.value)


def test_several_subscriptions_need_one_named(world_factory: Any) -> None:
    subs = [*subscriptions(), {"id": "SUB-GSC-V02", "consumer": "gsc", "delivery": "verify",
                               "fields": ["phone"]}]
    world = world_factory(people(5), subs)
    world.run()
    phone = person(1)["phone"]
    with world.client() as client:
        unnamed = client.post(URL, json={"records": [ask(KEY, phone=phone)]},
                              headers=world.headers("gsc"))
        named = client.post(URL, json={"subscription": "SUB-GSC-V02",
                                       "records": [ask(KEY, phone=phone)]},
                            headers=world.headers("gsc"))
        wrong = client.post(URL, json={"subscription": "SUB-TAX-V01",
                                       "records": [ask(KEY, name="居民1")]},
                            headers=world.headers("gsc"))
        outside = client.post(URL, json={"subscription": "SUB-GSC-V01",
                                         "records": [ask(KEY, phone=phone)]},
                              headers=world.headers("gsc"))
    assert unnamed.status_code == 422
    assert "several verify subscriptions to PSB-PPL-001 (SUB-GSC-V01, SUB-GSC-V02)" in (
        unnamed.json()["detail"])
    assert named.status_code == 200
    assert named.json()["results"][0]["match"] == {"phone": True}
    assert wrong.status_code == 403
    assert "'SUB-TAX-V01' is not an active verify subscription of department 'gsc'" in (
        wrong.json()["detail"])
    assert outside.status_code == 422  # phone is not a field of SUB-GSC-V01
    assert "records[0].fields.phone" in outside.json()["detail"]


def test_over_the_call_rate_is_429_with_retry_after(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_VERIFY_RATE", "3")
    body = {"records": [ask(KEY, name="居民1")]}
    with world.client() as client:
        answers = [client.post(URL, json=body, headers=world.headers("gsc")) for _ in range(5)]
        other = client.post(URL, json={"records": [ask(KEY, name="居民1")]},
                            headers=world.headers("tax"))
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert [a.status_code for a in answers[3:]] == [429, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert "over its 3 calls per second (GOVEX_VERIFY_RATE)" in answers[3].json()["detail"]
    assert other.status_code == 200  # the bucket is the subscription's, not everyone's
    assert world.count("verify_records", subscription="SUB-GSC-V01") == 3


def test_a_body_over_its_limit_is_413(world: Any) -> None:
    big = json.dumps({"records": [ask(KEY, name="名" * 2000)] * 1000}).encode()
    assert len(big) > 1024 * 1024
    with world.client() as client:
        answer = client.post(URL, content=big, headers={
            **world.headers("gsc"), "Content-Type": "application/json"})
    assert answer.status_code == 413
    _nothing_written(world)


def test_a_thousand_record_body_is_within_the_limit(world: Any) -> None:
    """A realistic full batch: Chinese names and addresses, JSON-escaped (ensure_ascii)."""
    records = [ask(person(i)["id_no"], name=person(i)["name"],
                   address="北京市朝阳区建国路八十八号院三号楼十二层一二零三室",
                   birth_date="1990-01-01", score=12.5, children=2, married=True)
               for i in range(1000)]
    body = json.dumps({"records": records}).encode()
    with world.client() as client:
        answer = client.post(URL, content=body, headers={
            **world.headers("gsc"), "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text[:200]
    assert len(answer.json()["results"]) == 1000


def test_the_usage_is_not_counted_for_refused_calls(world: Any) -> None:
    with world.client() as client:
        client.post(URL, json={"records": [ask(KEY, phone="x")]}, headers=world.headers("gsc"))
        client.post(URL, json={"records": [ask(KEY)]}, headers=world.headers("hpf"))
    _nothing_written(world)
    with world.store.connect() as conn:
        hpf = conn.execute(sa.text(
            "SELECT sum(calls) FROM usage_daily WHERE consumer = 'hpf'")).scalar_one()
    assert not hpf  # its bulk deliveries are counted; its refused call is not
