"""Runs keep a verify subscription's index exact, like a target: updates and deletes reach
it, a run that reads everything replaces it, a new or changed subscription gets its backfill,
an ended one loses its index, and a dry run shows it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from exchange import cli
from exchange.run import dry_run
from tests.verify.conftest import BASE_TIME, CODE, GSC_FIELDS, ask, people, person, subscriptions

URL = f"/api/v1/verify/{CODE}"
LATER = BASE_TIME + dt.timedelta(days=1)


def _answers(world: Any, records: list[dict[str, Any]], who: str = "gsc") -> list[Any]:
    with world.client() as client:
        answer = client.post(URL, json={"records": records}, headers=world.headers(who))
    assert answer.status_code == 200, answer.text
    return [{k: v for k, v in r.items() if k != "key"} for r in answer.json()["results"]]


def test_updates_and_soft_deletes_reach_the_index(world_factory: Any) -> None:
    world = world_factory(people(20))
    world.run()
    moved, gone = person(5), person(6)
    world.source("UPDATE people SET name = '新名字', updated_at = :at WHERE id_no = :k",
                 at=LATER, k=moved["id_no"])
    world.source("UPDATE people SET removed = 1, updated_at = :at WHERE id_no = :k",
                 at=LATER, k=gone["id_no"])
    summary = world.run()
    assert {d.subscription: d.delivered for d in summary.deliveries}["SUB-GSC-V01"] == 2
    assert _answers(world, [
        ask(moved["id_no"], name="新名字"), ask(moved["id_no"], name=moved["name"]),
        ask(gone["id_no"], name=gone["name"]), ask(person(7)["id_no"], name=person(7)["name"]),
    ]) == [{"found": True, "match": {"name": True}}, {"found": True, "match": {"name": False}},
           {"found": False}, {"found": True, "match": {"name": True}}]
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 19


def test_a_run_that_reads_everything_replaces_the_index(world_factory: Any) -> None:
    world = world_factory(people(20))
    world.run()
    gone = person(8)
    world.source("DELETE FROM people WHERE id_no = :k", k=gone["id_no"])
    world.run()  # an increment cannot see a row deleted outright
    assert _answers(world, [ask(gone["id_no"])]) == [{"found": True, "match": {}}]
    world.run(full=True)
    assert _answers(world, [ask(gone["id_no"]), ask(person(9)["id_no"], name="居民9")]) == [
        {"found": False}, {"found": True, "match": {"name": True}}]
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 19
    assert world.count("verify_index", subscription="SUB-TAX-V01") == 19


def test_a_new_verify_subscription_gets_its_backfill(
    world_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    later = [subscriptions()[2]]  # only the bulk one at first
    world = world_factory(people(30), later)
    world.run()
    world.insert([{**person(i), "updated_at": LATER} for i in range(30, 40)])
    world.run()
    world.write_subscriptions(subscriptions())
    world.apply()
    world.insert([{**person(i), "updated_at": LATER + dt.timedelta(hours=1)}
                  for i in range(40, 45)])
    capsys.readouterr()
    assert cli.main(["run", CODE, "--json"]) == 0  # a real `govex run`
    summary = json.loads(capsys.readouterr().out)
    by_sub = {d["subscription"]: d for d in summary["deliveries"]}
    assert by_sub["SUB-GSC-V01"]["backfill"] is True
    assert by_sub["SUB-GSC-V01"]["delivered"] == 45
    assert by_sub["SUB-HPF-001"]["delivered"] == 5  # the others get the increment only
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 45
    old, new = person(3), person(42)
    assert _answers(world, [ask(old["id_no"], name=old["name"]),
                            ask(new["id_no"], name=new["name"])]) == [
        {"found": True, "match": {"name": True}}] * 2

    # Changing what it may ask about re-indexes it (its delivered shape changed).
    world.write_subscriptions([{**s, "fields": [*GSC_FIELDS, "phone"]}
                               if s["id"] == "SUB-GSC-V01" else s for s in subscriptions()])
    world.apply()
    summary_again = world.run()
    again = {d.subscription: d for d in summary_again.deliveries}
    assert again["SUB-GSC-V01"].backfill is True
    assert _answers(world, [ask(old["id_no"], phone=old["phone"])]) == [
        {"found": True, "match": {"phone": True}}]


def test_an_ended_subscription_loses_its_index(world_factory: Any) -> None:
    world = world_factory(people(20))
    world.run()
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 20
    with world.client() as client:
        revoked = client.post("/api/v1/subscriptions/SUB-GSC-V01/revoke",
                              json={"reason": "不再需要核验"},
                              headers=world.headers("psb", "provider"))
    assert revoked.status_code == 200, revoked.text
    summary = world.run()
    skipped = {d.subscription: d for d in summary.deliveries}["SUB-GSC-V01"]
    assert skipped.status == "skipped"
    assert world.count("verify_index", subscription="SUB-GSC-V01") == 0
    assert world.count("verify_index", subscription="SUB-TAX-V01") == 20  # the others stay
    with world.store.connect() as conn:
        purged = conn.execute(sa.text(
            "SELECT purged_at FROM catalog_subscriptions WHERE id = 'SUB-GSC-V01'")).scalar_one()
        [detail] = conn.execute(sa.text(
            "SELECT detail FROM audit_log WHERE kind = 'purge'")).scalars().all()
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert purged is not None
    assert (detail["target"], detail["rows"], detail["ended"]) == (
        "verification index", 20, "revoked")
    world.run()  # once: nothing more to purge, nothing audited again
    with world.store.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM audit_log WHERE kind = 'purge'")).scalar_one() == 1


def test_a_dry_run_shows_the_index(world_factory: Any) -> None:
    world = world_factory(people(10))
    forecast = {s.subscription: s.to_json() for s in
                dry_run(world.store, CODE).subscriptions}
    assert forecast["SUB-GSC-V01"]["target"] is None
    assert forecast["SUB-GSC-V01"]["mode"] == "index"
    assert forecast["SUB-GSC-V01"]["delivery"] == "verify"
    assert forecast["SUB-GSC-V01"]["records"] == 10
    assert forecast["SUB-HPF-001"]["delivery"] == "bulk"
    assert world.count("verify_index") == 0
