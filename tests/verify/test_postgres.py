"""Verification on a PostgreSQL store and source: the index built by a real run, answers, the
per-key limit exact under concurrent calls, and a call's records, answer counts and usage in
one transaction (a failure after the records were inserted leaves none of them)."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from exchange.store import Principal
from exchange.verify import service
from exchange.verify.limits import CallRate
from govex.errors import DeclarationError
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


def test_a_lost_connection_is_invalidated_and_the_next_call_answers(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the call's connection between its catalog read and its writes (the
    statements psycopg sends directly): the call fails as SQLAlchemy's own statements do,
    with the pooled connection invalidated and nothing written; the next call answers."""
    url = world.store.url.set(drivername="postgresql").render_as_string(hide_password=False)

    class Ending:
        def take(self, subscription: str, rate: int) -> int:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            return 0

    body = _body([ask(person(1)["id_no"], name="居民1")])
    monkeypatch.setattr(service, "CALL_RATE", Ending())
    with pytest.raises(sa.exc.DBAPIError) as failed:
        service.verify(world.store, GSC, CODE, body)
    assert failed.value.connection_invalidated
    monkeypatch.setattr(service, "CALL_RATE", CallRate())
    assert service.verify(world.store, GSC, CODE, body)["results"][0]["match"] == {
        "name": True}
    for table in ("verify_records", "verify_answers", "usage_daily"):
        assert world.count(table, subscription="SUB-GSC-V01") == 1, table


def test_a_record_asking_no_field_is_recorded(world: Any) -> None:
    """One record asking only whether it is held: its `verify_records` row names no field
    (an empty text, which the statement's text columns must not read as no row)."""
    results = service.verify(world.store, GSC, CODE, _body([ask(person(1)["id_no"])]))
    assert results["results"] == [{"key": {"id_no": person(1)["id_no"]}, "found": True,
                                   "match": {}}]
    with world.store.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT record_key, fields, found, matched FROM verify_records")).all() == [
            (person(1)["id_no"], "", True, True)]


def test_a_store_reached_through_psycopg2_answers_the_same(world: Any) -> None:
    """Statements sent straight through the driver (`direct`) need psycopg 3; a store URL
    naming another driver takes SQLAlchemy's path and gets the same answers and rows."""
    records = [ask(person(7)["id_no"], name=person(7)["name"]), ask(person(8)["id_no"],
               name="某人"), ask("110105199001019999", name="nobody")]
    first = service.verify(world.store, GSC, CODE, _body(records))
    other = sa.create_engine(world.store.url.set(drivername="postgresql+psycopg2"))
    try:
        second = service.verify(other, GSC, CODE, _body(records))
    finally:
        other.dispose()
    assert first["results"] == second["results"]
    assert [r.get("match") for r in first["results"]] == [{"name": True}, {"name": False}, None]
    with world.store.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT record_key, fields, found, matched FROM verify_records ORDER BY id")).all()
        usage = conn.execute(sa.text("SELECT calls, records, matches, not_found FROM usage_daily"
                                     " WHERE subscription = 'SUB-GSC-V01'")).one()
    assert rows[:3] == rows[3:]
    assert tuple(usage) == (2, 6, 2, 2)


def test_a_key_holding_nul_is_refused_naming_it(world: Any) -> None:
    """PostgreSQL text holds no U+0000, and a call is recorded by its keys: such a key is a
    422 naming it, not a failed insert (500), on every path."""
    odd = person(2)["id_no"][:6] + "\x00" + person(2)["id_no"][7:]
    for records in ([ask(odd)], [ask(person(1)["id_no"])] * 20 + [ask(odd)]):  # plain, Arrow
        with pytest.raises(DeclarationError, match=r"key\.id_no holds the character U\+0000"):
            service.verify(world.store, GSC, CODE, _body(records))
    assert world.count("verify_records", subscription="SUB-GSC-V01") == 0


X = person(3)  # its ID number ends in the check digit X
PLAIN = [  # values plain Python makes texts of: the check digit in lower case, full-width
    ask(X["id_no"].lower(), name=X["name"], score=X["score"], married=X["married"]),
    ask(person(4)["id_no"], name="居民４", birth_date=person(4)["birth_date"].isoformat(),
        children=person(4)["children"]),
    ask(person(5)["id_no"], name="Ｅve", score=-0.0, children=7),
    ask(person(6)["id_no"]),
    ask("110105199001019999", name="nobody"),
]
# The same, with a name to trim and one to compose (NFC), which go to Arrow's path.
ARROW = [*PLAIN[:2], ask(person(5)["id_no"], name=f" {person(5)['name']}\u3000"),
         ask(person(6)["id_no"], name="E\u0301"), PLAIN[4]]


@pytest.mark.parametrize(("records", "plain"), [(PLAIN, True), (ARROW, False)])
def test_a_few_records_answer_and_record_as_arrow_would(
    world: Any, monkeypatch: pytest.MonkeyPatch, records: list[dict[str, Any]], plain: bool
) -> None:
    """A call of up to `PLAIN_MOST` records makes its texts in plain Python where it can:
    asked again with every call on Arrow's path, the same records get the same answers, the
    same `verify_records` rows and the same key digests (each key's answer count 2)."""
    made: list[bool] = []
    real = service._plain

    def spied(*args: Any) -> Any:
        found = real(*args)
        made.append(found is not None)
        return found

    monkeypatch.setattr(service, "_plain", spied)
    first = service.verify(world.store, GSC, CODE, _body(records))
    monkeypatch.setattr(service, "PLAIN_MOST", 0)
    second = service.verify(world.store, GSC, CODE, _body(records))
    assert made == [plain]
    assert first["results"] == second["results"]
    assert [r.get("match") for r in first["results"]][:2] == [
        {"name": True, "score": True, "married": True},
        {"name": True, "birth_date": True, "children": True}]
    with world.store.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT record_key, fields, found, matched FROM verify_records ORDER BY id")).all()
        counts = conn.execute(sa.text("SELECT answers FROM verify_answers")).scalars().all()
    assert rows[:5] == rows[5:]
    assert rows[0].record_key == X["id_no"].upper()
    assert counts == [2] * 5


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
    """`answers.record_rows` sends a column's texts joined by the unit separator; a key holding the
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
        answers.record_rows(conn, call_id="call-1", resource="R", subscription="SUB-1",
                       at=dt.datetime(2026, 12, 3, tzinfo=dt.UTC), answered=done)
        rows = conn.execute(sa.text(
            "SELECT record_key, fields, found, matched FROM verify_records "
            "WHERE call_id = 'call-1' ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [tuple(a) for a in done]
