"""Declaring verification: a verify subscription declares no copy, a contract's
`x-govex-normalize` is checked where contracts are loaded, and a sharing request for
`delivery: verify` becomes a verify subscription that the next run indexes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import catalog
import contracts
from exchange import requests
from exchange.store import Principal
from govex.errors import DeclarationError, DeclarationErrors
from tests.verify.conftest import CODE, CONTRACT, ask, people, person, subscriptions

GSC = Principal("gsc", "consumer")
AUTHORITY = Principal("dsj", "authority")
PSB = Principal("psb", "provider")


@pytest.mark.parametrize(("extra", "named"), [
    ({"target": {"connection": "gsc_db", "table": "people"}}, "target"),
    ({"masking": {"name": "mask_name"}}, "masking"),
    ({"mode": "snapshot"}, "mode"),
    ({"retain_after_end": True}, "retain_after_end"),
])
def test_a_verify_subscription_declares_no_copy(
    world_factory: Any, extra: dict[str, Any], named: str
) -> None:
    world = world_factory(people(3))
    world.write_subscriptions([{**subscriptions()[0], **extra}])
    with pytest.raises(DeclarationError) as refused:
        world.apply()
    assert f"a verify subscription receives no copy, so it cannot declare {named}" in str(
        refused.value)
    assert "SUB-GSC-V01" in str(refused.value)


def test_a_stored_verify_subscription_loads_back(world_factory: Any) -> None:
    world = world_factory(people(3))
    with world.store.connect() as conn:
        [sub] = [s for s in catalog.load_subscriptions(conn, CODE) if s.id == "SUB-GSC-V01"]
    assert (sub.delivery, sub.target, sub.masking) == ("verify", None, {})


def _contract(tmp_path: Path, name_property: dict[str, Any], top: dict[str, Any] | None = None
              ) -> Path:
    schema = json.loads(json.dumps(CONTRACT))
    schema["properties"]["name"] = name_property
    schema.update(top or {})
    path = tmp_path / "contracts" / "people" / "1.0.0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(schema))
    return path


@pytest.mark.parametrize(("prop", "top", "says"), [
    ({"type": "string", "x-govex-normalize": ["trim", "casefold"]}, None,
     "x-govex-normalize of 'name' has unknown step 'casefold'; the steps are fullwidth, nfc, "
     "trim"),
    ({"type": "string", "x-govex-normalize": "trim"}, None,
     "x-govex-normalize of 'name' must be a list of steps"),
    ({"type": "string", "x-govex-normalize": ["trim", "trim"]}, None, "repeats a step"),
    ({"type": "integer", "x-govex-normalize": ["trim"]}, None,
     "'name' is not a string property"),
    ({"type": "string", "format": "date", "x-govex-normalize": ["trim"]}, None,
     "'name' is not a string property"),
    ({"type": "string"}, {"x-govex-normalize": ["trim"]}, "not the top level"),
])
def test_a_bad_normalize_is_refused_naming_the_field(
    tmp_path: Path, prop: dict[str, Any], top: dict[str, Any] | None, says: str
) -> None:
    with pytest.raises(DeclarationError) as refused:
        contracts.load_contract(_contract(tmp_path, prop, top))
    assert says in str(refused.value)


def test_normalize_steps_apply_in_one_order(tmp_path: Path) -> None:
    loaded = contracts.load_contract(_contract(
        tmp_path, {"type": ["string", "null"], "x-govex-normalize": ["trim", "fullwidth"]}))
    assert loaded.normalize("name") == ("fullwidth", "trim")
    assert loaded.normalize("phone") == ()


def _ask(**overrides: Any) -> requests.Ask:
    today = dt.datetime.now(dt.UTC).date()
    return requests.Ask.model_validate({
        "resource": CODE, "purpose": "窗口核验办事人身份", "legal_basis": "《政务服务条例》",
        "fields": ["name", "birth_date"], "delivery": "verify",
        "valid_from": str(today), "valid_until": str(today + dt.timedelta(days=365)),
        **overrides,
    })


def _conditional(world: Any) -> None:
    resource = world.root / "resources" / "people.yaml"
    declared = yaml.safe_load(resource.read_text())
    resource.write_text(yaml.safe_dump({**declared, "sharing": "conditional"},
                                       allow_unicode=True))
    world.write_subscriptions([])
    world.apply()


def test_a_verify_request_becomes_a_verify_subscription(world_factory: Any) -> None:
    world = world_factory(people(10))
    _conditional(world)
    for refused, named in [({"target": {"connection": "gsc_db", "table": "t"}}, "target"),
                           ({"masking": {"name": "mask_name"}}, "masking"),
                           ({"mode": "append"}, "mode"), ({"retain_after_end": True},
                                                          "retain_after_end")]:
        with pytest.raises(DeclarationError) as no:
            requests.submit(world.store, GSC, _ask(**refused))
        assert "a verify request receives no copy" in no.value.message
        assert no.value.field == named
    asked = requests.submit(world.store, GSC, _ask())
    assert (asked["delivery"], asked["target"], asked["mode"]) == ("verify", None, None)
    requests.review(world.store, AUTHORITY, asked["id"], compliant=True)
    with pytest.raises(DeclarationError) as masked:
        requests.approve(world.store, PSB, asked["id"], masking={"name": "mask_name"})
    assert "adds no masking" in masked.value.message
    approved = requests.approve(world.store, PSB, asked["id"], fields=["name"])
    sub_id = approved["subscription"]
    with world.store.connect() as conn:
        [sub] = catalog.load_subscriptions(conn, CODE)
    assert (sub.id, sub.delivery, sub.target, sub.fields) == (sub_id, "verify", None, ["name"])
    world.run()
    with world.client() as client:
        answer = client.post(f"/api/v1/verify/{CODE}", headers=world.headers("gsc"),
                             json={"records": [ask(person(4)["id_no"], name="居民4")]})
        outside = client.post(f"/api/v1/verify/{CODE}", headers=world.headers("gsc"),
                              json={"records": [ask(person(4)["id_no"], birth_date="1960-01-13")]})
        page = client.get(f"/requests/{asked['id']}", headers=world.headers("gsc"))
    assert answer.json()["results"][0]["match"] == {"name": True}
    assert outside.status_code == 422  # narrowed away by the approval
    assert page.status_code == 200
    assert "verification only, no copy" in page.text


def test_a_bulk_request_still_needs_its_target(world_factory: Any) -> None:
    world = world_factory(people(3))
    with pytest.raises(DeclarationError) as refused:
        requests.submit(world.store, GSC, _ask(delivery="bulk"))
    assert "a bulk request needs a target" in refused.value.message


def test_errors_list_each_file(world_factory: Any) -> None:
    """Two bad verify files are reported together, one sentence each."""
    world = world_factory(people(3))
    world.write_subscriptions([
        {**subscriptions()[0], "mode": "append"},
        {**subscriptions()[1], "target": {"connection": "tax_db", "table": "t"}},
    ])
    with pytest.raises(DeclarationErrors) as refused:
        world.apply()
    assert len(refused.value.errors) == 2


def test_a_file_for_an_approved_verify_request_must_say_verify(world_factory: Any) -> None:
    """`govex apply` compares a file naming an approval with it, delivery included."""
    world = world_factory(people(3))
    _conditional(world)
    asked = requests.submit(world.store, GSC, _ask(fields=["name"]))
    requests.review(world.store, AUTHORITY, asked["id"], compliant=True)
    sub_id = requests.approve(world.store, PSB, asked["id"])["subscription"]
    declared = {"id": sub_id, "consumer": "gsc", "fields": ["name"], "request": asked["id"]}
    world.write_subscriptions([{**declared, "target": {"connection": "gsc_db",
                                                       "table": "people"}}])
    with pytest.raises(DeclarationError) as refused:
        world.apply()
    assert "delivery" in str(refused.value)
    world.write_subscriptions([{**declared, "delivery": "verify"}])
    world.apply()  # the same subscription, not a second one
    with world.store.connect() as conn:
        assert [s.id for s in catalog.load_subscriptions(conn, CODE)] == [sub_id]
