"""`POST /api/v1/verify/{code}` against an index built by real runs: exact answers per field
for matching, mismatching and unknown records, no source value in any answer, the records
and usage a call leaves, and no target for a verify subscription."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import sqlalchemy as sa

import records
from exchange.verify import tables as verify_tables
from tests.verify.conftest import CODE, GSC_FIELDS, ask, people, person, source_view

URL = f"/api/v1/verify/{CODE}"


def _table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_thousand_records_get_exact_answers_and_no_source_value(world_factory: Any) -> None:
    rows = people(1200)
    world = world_factory(rows)
    summary = world.run()
    delivered = {d.subscription: d.delivered for d in summary.deliveries}
    assert delivered["SUB-GSC-V01"] == 1200  # the index took every record
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 1200

    rng = random.Random(14)
    asked: list[dict[str, Any]] = []
    expected: list[dict[str, Any]] = []
    leaks: set[str] = set()  # source values the consumer did not send: must never show
    for i in rng.sample(range(1200), 700):  # known records, some fields wrong
        p = person(i)
        sent = source_view(p)
        truth: dict[str, bool] = {}
        for name in GSC_FIELDS:
            if p[name] is None:
                truth[name] = False  # the source holds no value: nothing matches
                sent[name] = "北京市某处" if name == "address" else sent[name]
                continue
            wrong = rng.random() < 0.3
            truth[name] = not wrong
            if wrong and name in ("name", "address", "birth_date"):
                leaks.add(str(source_view(p)[name]))
            if wrong:
                sent[name] = {"name": "张冒名", "address": "上海市某路1号",
                              "birth_date": "1999-12-31", "score": p["score"] + 0.5,
                              "children": p["children"] + 1,
                              "married": not p["married"]}[name]
        if i % 5 == 0:  # ask about a subset of the fields only
            keep = rng.sample(GSC_FIELDS, 2)
            sent = {k: v for k, v in sent.items() if k in keep}
            truth = {k: v for k, v in truth.items() if k in keep}
        asked.append(ask(p["id_no"], **sent))
        expected.append({"found": True, "match": truth})
    for i in range(5000, 5300):  # unknown records
        p = person(i)
        asked.append(ask(p["id_no"], name=p["name"]))
        expected.append({"found": False})
    order = list(range(len(asked)))
    rng.shuffle(order)
    body = {"records": [asked[i] for i in order]}
    with world.client() as client:
        answer = client.post(URL, json=body, headers=world.headers("gsc"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["subscription"] == "SUB-GSC-V01"
    assert result["as_of"] is not None
    assert len(result["results"]) == 1000
    for position, got in enumerate(result["results"]):
        want = expected[order[position]]
        assert got["key"] == asked[order[position]]["key"]
        assert {k: v for k, v in got.items() if k != "key"} == want, (position, got)
    text = answer.content.decode("utf-8")
    assert leaks
    for value in leaks:
        assert value not in text, value
    for p in (person(i) for i in range(1200)):  # never a value of a field not asked
        assert p["phone"] not in text

    # What the call left: a record per answered record, and the day's usage, equal to it.
    with world.store.connect() as conn:
        rows_left = conn.execute(sa.select(records.verify_records)).mappings().all()
        usage = conn.execute(sa.select(records.usage_daily)).mappings().all()
    assert len(rows_left) == 1000
    assert len({r["call_id"] for r in rows_left}) == 1
    assert sum(r["found"] for r in rows_left) == 700
    matched = sum(1 for w in expected if w.get("found") and all(w["match"].values()))
    assert sum(r["matched"] for r in rows_left) == matched
    [day] = [u for u in usage if u["subscription"] == "SUB-GSC-V01"]
    assert (day["calls"], day["records"], day["matches"], day["not_found"]) == (
        1, 1000, matched, 300)
    assert day["bytes"] == len(answer.request.content)
    one = next(r for r in rows_left if r["found"])
    assert (one["resource"], one["subscription"]) == (CODE, "SUB-GSC-V01")
    assert one["record_key"] in {person(i)["id_no"] for i in range(1200)}


def test_a_verify_subscription_never_gets_a_target(world_factory: Any) -> None:
    world = world_factory(people(50))
    world.run()
    world.run(full=True)
    assert _table_names(world.consumer_urls["gsc"]) == []
    assert _table_names(world.consumer_urls["tax"]) == []
    assert _table_names(world.consumer_urls["hpf"]) != []  # the bulk one did get its table
    # No provenance (nothing reached the consumer), and no usage for keeping the index.
    with world.store.connect() as conn:
        subs = set(conn.execute(sa.text(
            "SELECT DISTINCT subscription FROM lineage_provenance")).scalars())
        used = set(conn.execute(sa.select(records.usage_daily.c.subscription)).scalars())
        audit = [json.loads(r) if isinstance(r, str) else r for r in conn.execute(sa.text(
            "SELECT detail FROM audit_log WHERE kind = 'delivery'")).scalars()]
    assert "SUB-GSC-V01" not in subs
    assert "SUB-GSC-V01" not in used
    assert "SUB-HPF-001" in subs
    # The delivery is recorded and audited like any other, its target the index.
    gsc = [a for a in audit if a["consumer"] == "gsc"]
    assert gsc
    assert all(a["target"] == "verification index" for a in gsc)


def test_the_index_holds_no_value(world_factory: Any) -> None:
    world = world_factory(people(30))
    world.run()
    with world.store.connect() as conn:
        dump = json.dumps([dict(r) for r in conn.execute(
            sa.select(verify_tables.verify_index)).mappings()], default=str, ensure_ascii=False)
    for p in people(30):
        for value in (p["id_no"], p["name"], p["birth_date"].isoformat(), p["phone"]):
            assert value not in dump
    assert "居民" not in dump


def test_as_of_is_when_the_last_run_indexed(world_factory: Any) -> None:
    world = world_factory(people(5))
    before = dt.datetime.now(dt.UTC)
    world.run()
    with world.client() as client:
        got = client.post(URL, json={"records": [ask(person(1)["id_no"])]},
                          headers=world.headers("gsc")).json()
    assert got["results"] == [{"key": {"id_no": person(1)["id_no"]}, "found": True,
                               "match": {}}]
    as_of = dt.datetime.fromisoformat(got["as_of"])
    assert before <= as_of <= dt.datetime.now(dt.UTC)


def test_values_compare_as_the_contract_types_them(world_factory: Any) -> None:
    """Through a real run and the API: the declared normalisation of text (trim, NFC,
    full-width), an ID number's x in either case, numbers, dates and booleans by value."""
    special = {**person(900), "id_no": "11010519900105123X", "name": " Ａｌｉｃｅ　Ｗａｎｇ ",
               "address": "Café", "score": 12.5, "birth_date": dt.date(1990, 1, 5),
               "children": 2, "married": True}
    accent = {**person(901), "name": "Jose\u0301"}  # decomposed é
    world = world_factory([*people(5), special, accent])
    world.run()
    answers = [
        ask("11010519900105123x", name="Alice Wang", score="12.50", birth_date="1990-01-05",
            children=2.0, married=True, address="Café"),
        ask("11010519900105123X", name="Alice  Wang", score=12.51, birth_date="1990-05-01",
            children="3", married="false", address="Cafe\u0301"),
        ask(accent["id_no"], name="José"),
    ]
    with world.client() as client:
        got = client.post(URL, json={"records": answers}, headers=world.headers("gsc")).json()
    assert [r.get("match") for r in got["results"]] == [
        {"name": True, "score": True, "birth_date": True, "children": True, "married": True,
         "address": True},
        # address has no normalisation declared: the decomposed é is other text
        {"name": False, "score": False, "birth_date": False, "children": False,
         "married": False, "address": False},
        {"name": True},
    ]


def test_before_the_first_run_nothing_is_found_and_nothing_is_made(world_factory: Any) -> None:
    world = world_factory(people(5))
    with world.client() as client:
        got = client.post(URL, json={"records": [ask(person(1)["id_no"], name="居民1")]},
                          headers=world.headers("gsc")).json()
    assert got["as_of"] is None
    assert got["results"] == [{"key": {"id_no": person(1)["id_no"]}, "found": False}]
    assert world.count("exchange_secrets") == 0  # no master key made by a call
