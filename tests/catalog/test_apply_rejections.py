"""Every rejection rule of INTERFACES.md: exit code 2, a message naming what is wrong, and a
catalog exactly as it was before. Each case starts from a workspace that applies cleanly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Mutation = Callable[[Any], None]


def _add_resource_claiming_person_name(ws: Any) -> None:
    ws.write_yaml("resources/amr-people.yaml", ws.resource(
        code="AMR-RES-009", provider="amr", elements={"name": "person.name"},
        source={"connection": "amr_db", "table": "legal_people"}, sharing="unconditional",
    ))


def _sharing_none(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(sharing="none"))


def _no_approval(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(sharing="conditional"))


def _approved_by_alone(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(sharing="conditional"))
    ws.edit("subscriptions/gsc-residents.yaml", lambda s: s.update(approved_by="psb"))


def _approved_by_consumer(ws: Any) -> None:
    ws.edit("subscriptions/gsc-residents.yaml", lambda s: s.update(approved_by="gsc"))


def _l4(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(classification="L4"))


def _field_not_in_contract(ws: Any) -> None:
    ws.edit("subscriptions/gsc-residents.yaml", lambda s: s["fields"].append("salary"))


def _unknown_masking(ws: Any) -> None:
    ws.edit("subscriptions/gsc-residents.yaml",
            lambda s: s["masking"].update(name="scramble"))


def _unknown_consumer(ws: Any) -> None:
    ws.edit("subscriptions/gsc-residents.yaml", lambda s: s.update(consumer="nobody"))


def _unknown_provider(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(provider="nobody"))


def _unknown_source_connection(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r["source"].update(connection="nowhere"))


def _unknown_target_connection(ws: Any) -> None:
    ws.edit("subscriptions/gsc-residents.yaml",
            lambda s: s["target"].update(connection="nowhere"))


def _unknown_contract(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml",
            lambda r: r.update(contract="resident_identity@9.9.9"))


def _window_ended(ws: Any) -> None:
    ws.edit("subscriptions/gsc-residents.yaml",
            lambda s: s.update(valid_from="2024-01-01", valid_until="2025-12-31"))


def _breaking_minor(ws: Any) -> None:
    schema = ws.contract_v1()
    del schema["properties"]["phone"]
    ws.contract("resident_identity", "1.1.0", schema)


def _breaking_in_place(ws: Any) -> None:
    schema = ws.contract_v1()
    schema["properties"]["name"]["type"] = "integer"
    ws.contract("resident_identity", "1.0.0", schema)


def _new_required_minor(ws: Any) -> None:
    schema = ws.contract_v1()
    schema["required"] = [*schema["required"], "phone"]
    ws.contract("resident_identity", "1.1.0", schema)


def _malformed_yaml(ws: Any) -> None:
    ws.write_text("resources/psb-residents.yaml", "code: PSB-RES-001\nname: [unclosed\n")


def _malformed_json(ws: Any) -> None:
    ws.write_text("contracts/resident_identity/1.0.0.json", '{"type": "object", "properties": {')


def _duplicate_resource_code(ws: Any) -> None:
    ws.write_yaml("resources/zz-copy.yaml", ws.resource(elements={}))


def _duplicate_department(ws: Any) -> None:
    ws.edit("departments.yaml",
            lambda d: d["departments"].append({"code": "psb", "name": "另一个公安局"}))


def _webhook_not_http(ws: Any) -> None:
    ws.edit("departments.yaml", lambda d: d["departments"][0].update(
        notify={"webhook": "ftp://psb.example.gov.cn/events"}))


def _duplicate_yaml_key(ws: Any) -> None:
    ws.write_text("connections.yaml", (ws.root / "connections.yaml").read_text("utf-8")
                  + "  psb_db: {url: 'sqlite:///other.db'}\n")


def _unknown_key(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(owner="someone"))


def _unset_variable(ws: Any) -> None:
    ws.edit("connections.yaml",
            lambda c: c["connections"].update(psb_db={"url": "${GOVEX_TEST_PSB_UNSET_URL}"}))


def _masked_field_not_subscribed(ws: Any) -> None:
    ws.edit("subscriptions/gsc-residents.yaml",
            lambda s: s["masking"].update(phone="mask_phone"))


def _kafka_source_on_db_connection(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml",
            lambda r: r.update(source={"connection": "psb_db", "kafka": {"topic": "t"}}))


def _unknown_expectation(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r["quality"].update(
        expectations=[{"type": "ExpectColumnValuesToBeMagic", "kwargs": {"column": "name"}}]))


def _backtracking_expectation_regex(ws: Any) -> None:
    ws.edit("resources/psb-residents.yaml", lambda r: r["quality"].update(expectations=[
        {"type": "ExpectColumnValuesToNotMatchRegexList",
         "kwargs": {"column": "name", "regex_list": ["^x$", r"^(a)\1$"]}}]))


CASES: list[tuple[str, Mutation, list[str]]] = [
    ("one data one source", _add_resource_claiming_person_name,
     ["resources/amr-people.yaml", "person.name", "PSB-RES-001"]),
    ("sharing none", _sharing_none, ["subscriptions/gsc-residents.yaml", "sharing: none"]),
    ("conditional without approval", _no_approval,
     ["subscriptions/gsc-residents.yaml", "conditional", "govex request submit", "request: REQ-"]),
    ("approved_by alone", _approved_by_alone,
     ["subscriptions/gsc-residents.yaml", "approved_by alone", "govex request submit"]),
    ("approved by someone else", _approved_by_consumer, ["approved_by", "'psb'"]),
    ("L4 never in bulk", _l4, ["L4", "PSB-RES-001"]),
    ("field not in contract", _field_not_in_contract, ["'salary'", "resident_identity@1.0.0"]),
    ("unknown masking", _unknown_masking, ["masking.name", "'scramble'"]),
    ("unknown consumer", _unknown_consumer, ["consumer", "'nobody'"]),
    ("unknown provider", _unknown_provider, ["provider", "'nobody'"]),
    ("unknown source connection", _unknown_source_connection, ["source.connection", "nowhere"]),
    ("unknown target connection", _unknown_target_connection, ["target.connection", "nowhere"]),
    ("unknown contract", _unknown_contract, ["resident_identity@9.9.9"]),
    ("validity ended", _window_ended, ["valid_until", "2025-12-31"]),
    ("breaking change without major", _breaking_minor,
     ["resident_identity@1.1.0", "phone", "2.0.0"]),
    ("breaking edit in place", _breaking_in_place, ["resident_identity@1.0.0", "name"]),
    ("new required without major", _new_required_minor, ["resident_identity@1.1.0", "phone"]),
    ("malformed YAML", _malformed_yaml, ["resources/psb-residents.yaml", "malformed YAML"]),
    ("malformed JSON", _malformed_json, ["contracts/resident_identity/1.0.0.json"]),
    ("duplicate resource code", _duplicate_resource_code,
     ["resources/zz-copy.yaml", "duplicate resource 'PSB-RES-001'"]),
    ("duplicate department", _duplicate_department, ["departments.yaml", "duplicate department"]),
    ("webhook not http(s)", _webhook_not_http,
     ["departments.yaml", "not an http:// or https:// URL"]),
    ("duplicate YAML key", _duplicate_yaml_key, ["connections.yaml", "duplicate key 'psb_db'"]),
    ("unknown key", _unknown_key, ["resources/psb-residents.yaml", "unknown key 'owner'"]),
    ("unset variable", _unset_variable, ["GOVEX_TEST_PSB_UNSET_URL"]),
    ("masked field not subscribed", _masked_field_not_subscribed, ["masking.phone"]),
    ("kafka source on a database connection", _kafka_source_on_db_connection,
     ["source.connection", "kafka"]),
    ("unknown GE expectation", _unknown_expectation, ["ExpectColumnValuesToBeMagic"]),
    ("expectation regex without an RE2 form", _backtracking_expectation_regex,
     ["quality.expectations[0].kwargs.regex_list", "cannot run on RE2", "backreference"]),
]


@pytest.mark.parametrize(("case", "mutate", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_rejected_with_clear_error_and_no_change(
    case: str, mutate: Mutation, fragments: list[str], workspace: Any, govex: Any,
    store_snapshot: Any,
) -> None:
    code, _, err = govex("apply", str(workspace.root))
    assert code == 0, err
    before = store_snapshot()

    mutate(workspace)
    code, out, err = govex("apply", str(workspace.root))

    assert code == 2, f"{case}: expected exit 2, got {code}\n{out}\n{err}"
    for fragment in fragments:
        assert fragment in err, f"{case}: {fragment!r} not in error output:\n{err}"
    assert err.startswith("error: ")
    assert store_snapshot() == before, f"{case}: the catalog changed after a refused apply"


def test_one_source_within_a_fresh_workspace_names_the_first_holder(
    workspace: Any, govex: Any, store_snapshot: Any
) -> None:
    """With an empty store, the resource whose file comes first holds the element."""
    _add_resource_claiming_person_name(workspace)
    code, _, err = govex("apply", str(workspace.root))
    assert code == 2
    assert err.startswith("error: resources/psb-residents.yaml: field 'elements.name': ")
    assert "data element 'person.name' is already provided by resource AMR-RES-009" in err
    assert all(not rows for rows in store_snapshot().values())


def test_major_move_refused_while_subscription_pins_old_major(
    workspace: Any, govex: Any, store_snapshot: Any
) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    before = store_snapshot()
    v2 = workspace.contract_v1()
    del v2["properties"]["address"]
    workspace.contract("resident_identity", "2.0.0", v2)
    workspace.edit("resources/psb-residents.yaml",
                   lambda r: r.update(contract="resident_identity@2.0.0"))

    code, _, err = govex("apply", str(workspace.root))
    assert code == 2
    assert "SUB-GSC-001 still pins major version 1" in err
    assert store_snapshot() == before

    # The consumer checks the new version and re-pins: now the move goes through.
    workspace.edit("subscriptions/gsc-residents.yaml",
                   lambda s: s.update(contract="resident_identity@2.0.0"))
    code, out, err = govex("apply", str(workspace.root))
    assert code == 0, err
    assert "~ resource PSB-RES-001" in out
    assert "+ contract resident_identity@2.0.0" in out
