"""Verification on a PostgreSQL store and source: the index built by a real run, answers, the
per-key limit exact under concurrent calls, and a call's records, answer counts and usage in
one transaction (a failure after the records were inserted leaves none of them)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.store import Principal
from exchange.verify import service
from tests.verify.conftest import CODE, ask, people, person

pytestmark = pytest.mark.integration

GSC = Principal("gsc", "consumer")


@pytest.fixture
def world(world_factory: Any, pg_url: str) -> Any:
    """Source and store in one fresh PostgreSQL database (the tables do not collide)."""
    built = world_factory(people(500), source_url=pg_url, store_url=pg_url)
    built.run()
    return built


def _body(records: list[dict[str, Any]]) -> bytes:
    return json.dumps({"records": records}).encode()


def test_answers_from_an_index_in_postgresql(world: Any) -> None:
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 500
    records = [ask(person(i)["id_no"], name=person(i)["name"], children=person(i)["children"])
               for i in range(0, 500, 5)]
    records += [ask(person(i)["id_no"], name="某人") for i in range(1, 500, 50)]
    records += [ask(person(i)["id_no"], name=person(i)["name"]) for i in range(600, 610)]
    with world.client() as client:
        answer = client.post(f"/api/v1/verify/{CODE}", json={"records": records},
                             headers=world.headers("gsc"))
    results = answer.json()["results"]
    assert [r["match"] for r in results[:100]] == [{"name": True, "children": True}] * 100
    assert [r["match"] for r in results[100:110]] == [{"name": False}] * 10
    assert [r["found"] for r in results[110:]] == [False] * 10
    assert world.count("verify_records", subscription="SUB-GSC-V01") == 120


def test_the_key_limit_holds_across_concurrent_calls(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_VERIFY_KEY_DAILY", "10")
    key = person(7)["id_no"]
    answered: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def call() -> None:
        try:
            start.wait()
            results = service.verify(world.store, GSC, CODE,
                                     _body([ask(key, name=str(n)) for n in range(3)]))["results"]
            answered.append(sum(1 for r in results if not r.get("limited")))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(answered) == 10  # 24 asked at once, exactly 10 answered
    assert world.count("verify_records", subscription="SUB-GSC-V01") == 10
    with world.store.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT answers FROM verify_answers WHERE subscription = 'SUB-GSC-V01'"
        )).scalar_one() == 10


def test_a_failure_after_the_records_leaves_nothing(world: Any) -> None:
    """The usage upsert fails after the verification rows and answer counts were written in
    the call's transaction: all of it rolls back, so counts never disagree with records."""
    with world.store.begin() as conn:
        conn.execute(sa.text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'metering is down'; END $$"))
        conn.execute(sa.text(
            "CREATE TRIGGER refuse BEFORE INSERT ON usage_daily "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"))
    with pytest.raises(sa.exc.DBAPIError, match="metering is down"):
        service.verify(world.store, GSC, CODE, _body([ask(person(1)["id_no"], name="居民1")]))
    for table in ("verify_records", "verify_answers"):
        assert world.count(table, subscription="SUB-GSC-V01") == 0, table
    with world.store.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse ON usage_daily"))
    result = service.verify(world.store, GSC, CODE, _body([ask(person(1)["id_no"],
                                                               name="居民1")]))
    assert result["results"][0]["match"] == {"name": True}
    for table in ("verify_records", "verify_answers", "usage_daily"):
        assert world.count(table, subscription="SUB-GSC-V01") == 1, table


def test_deletes_and_replacement_keep_a_postgresql_index_exact(world: Any) -> None:
    gone, outright = person(11), person(12)
    later = "2026-11-02 08:00:00+00"
    world.source("UPDATE people SET removed = true, updated_at = :at WHERE id_no = :k",
                  at=later, k=gone["id_no"])
    world.source("DELETE FROM people WHERE id_no = :k", k=outright["id_no"])
    world.run()
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 499
    world.run(full=True)
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 498
    results = service.verify(world.store, GSC, CODE, _body(
        [ask(gone["id_no"]), ask(outright["id_no"]), ask(person(13)["id_no"])]))["results"]
    assert [r["found"] for r in results] == [False, False, True]


@pytest.mark.parametrize("odd", ["", "\x1f"])
def test_verification_records_keep_every_key_as_asked(pg_url: str, odd: str) -> None:
    """`answers.record` sends a column's texts joined by the unit separator; a key holding the
    separator itself (source data is anyone's) is written as JSON rows instead: either way
    every row is exactly what was answered."""
    import datetime as dt

    from exchange.store import create_store_engine, upgrade
    from exchange.verify import answers

    engine = create_store_engine(pg_url)
    upgrade(engine)
    done = [answers.Answered(f"K{i}{odd if i == 1 else ''},x", "name,birth_date"[: 4 + i],
                             i % 2 == 0, i % 3 == 0) for i in range(5)]
    with engine.begin() as conn:
        answers.record(conn, call_id="call-1", resource="R", subscription="SUB-1",
                       at=dt.datetime(2026, 12, 3, tzinfo=dt.UTC), answered=done)
        rows = conn.execute(sa.text(
            "SELECT record_key, fields, found, matched FROM verify_records "
            "WHERE call_id = 'call-1' ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [tuple(a) for a in done]
