"""Loading contracts from a workspace, and every way a contract file can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts import Contract, load_contract, load_contracts, parse_semver
from govex.errors import DeclarationError, DeclarationErrors

RESIDENT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "居民身份基础信息",
    "type": "object",
    "x-govex-checks": ["cn_id_birth_date_consistent"],
    "properties": {
        "id_no": {
            "type": "string",
            "pattern": "^[0-9]{17}[0-9X]$",
            "x-govex-pii": "id_number",
            "x-govex-checks": ["cn_resident_id"],
        },
        "name": {"type": "string", "maxLength": 50, "x-govex-pii": "name"},
        "birth_date": {"type": "string", "format": "date"},
        "phone": {"type": ["string", "null"], "x-govex-pii": "phone"},
    },
    "required": ["id_no", "name"],
}


def _write(root: Path, name: str, version: str, content: Any) -> Path:
    path = root / name / f"{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def test_load_contract_and_helpers(tmp_path: Path) -> None:
    contract = load_contract(_write(tmp_path, "resident_identity", "1.2.3", RESIDENT))
    assert contract.name == "resident_identity"
    assert contract.version == "1.2.3"
    assert contract.semver == (1, 2, 3)
    assert contract.ref == "resident_identity@1.2.3"
    assert contract.fields == ("id_no", "name", "birth_date", "phone")
    assert contract.required == frozenset({"id_no", "name"})
    assert contract.property("name")["maxLength"] == 50
    assert contract.pii("id_no") == "id_number"
    assert contract.pii("birth_date") is None
    assert contract.checks("id_no") == ("cn_resident_id",)
    assert contract.checks() == ("cn_id_birth_date_consistent",)
    assert contract.checks("name") == ()
    with pytest.raises(KeyError, match="resident_identity@1.2.3 has no property 'nope'"):
        contract.property("nope")


def test_contract_is_frozen_and_hashable() -> None:
    contract = Contract("c", "1.0.0", {"type": "object", "properties": {"a": {}}})
    assert {contract: 1}[Contract("c", "1.0.0", {"type": "object", "properties": {"a": {}}})]
    with pytest.raises(AttributeError):
        contract.version = "2.0.0"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"), [("0.0.0", (0, 0, 0)), ("1.2.3", (1, 2, 3)), ("10.20.30", (10, 20, 30))]
)
def test_parse_semver(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_semver(text) == expected


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0-rc.1", "1.0.0+build", "v1.0.0", "1.0.٣"])
def test_parse_semver_rejects_anything_else(text: str) -> None:
    with pytest.raises(DeclarationError, match="not strict semver") as info:
        parse_semver(text)
    assert info.value.value == text


def test_version_comes_from_file_name_and_must_be_semver(tmp_path: Path) -> None:
    path = _write(tmp_path, "resident_identity", "1.0", RESIDENT)
    with pytest.raises(DeclarationError, match="'1.0' is not strict semver") as info:
        load_contract(path)
    assert info.value.file == str(path)
    assert info.value.field == "version"


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "c", "1.0.0", '{\n  "type": "object",\n  "properties": {,}\n}')
    with pytest.raises(DeclarationError, match="not valid JSON: .* at line 3") as info:
        load_contract(path)
    assert str(path) in str(info.value)


def test_duplicate_json_keys_are_rejected(tmp_path: Path) -> None:
    text = '{"type": "object", "properties": {"a": {}, "a": {"type": "string"}}}'
    with pytest.raises(DeclarationError, match="'a' appears twice") as info:
        load_contract(_write(tmp_path, "c", "1.0.0", text))
    assert info.value.field == "a"


def _bad(**changes: Any) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(json.dumps(RESIDENT))
    for key, value in changes.items():
        if value is None:
            schema.pop(key, None)
        else:
            schema[key] = value
    return schema


@pytest.mark.parametrize(
    ("schema", "message", "field"),
    [
        pytest.param(
            _bad(properties={"a": {"type": "strnig"}}, required=None),
            "not a valid JSON Schema",
            "/properties/a/type",
            id="bad-type-name",
        ),
        pytest.param(_bad(type="array"), "must be an object schema", "type", id="not-object"),
        pytest.param(_bad(type=None), "must be an object schema", "type", id="no-type"),
        pytest.param(
            _bad(properties=None), "at least one property", "properties", id="no-properties"
        ),
        pytest.param(
            _bad(required=["id_no", "ghost"]),
            "'ghost', which is not one of",
            "required",
            id="required-unknown",
        ),
        pytest.param(
            _bad(**{"$schema": "http://json-schema.org/draft-07/schema#"}),
            "draft 2020-12",
            "$schema",
            id="draft-07",
        ),
        pytest.param(
            _bad(properties={"a": {"x-govex-pii": 3}}, required=None),
            "x-govex-pii",
            "a",
            id="pii-not-a-name",
        ),
        pytest.param(
            _bad(**{"x-govex-checks": "cn_uscc"}),
            "x-govex-checks",
            "(top level)",
            id="checks-not-a-list",
        ),
        pytest.param([1, 2], "must hold a JSON object", None, id="json-array"),
    ],
)
def test_bad_contracts_name_file_field_and_value(
    tmp_path: Path, schema: Any, message: str, field: str | None
) -> None:
    path = _write(tmp_path, "resident_identity", "1.0.0", schema)
    with pytest.raises(DeclarationError, match=message) as info:
        load_contract(path)
    assert info.value.file == str(path)
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_bad_contract_name(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match="contract name 'has space'"):
        load_contract(_write(tmp_path, "has space", "1.0.0", RESIDENT))


def test_load_contracts_sorts_by_name_then_semver(tmp_path: Path) -> None:
    for name, version in [("b", "1.0.0"), ("a", "10.0.0"), ("a", "2.0.0"), ("a", "2.0.1")]:
        _write(tmp_path, name, version, RESIDENT)
    (tmp_path / "README.md").write_text("notes", encoding="utf-8")
    (tmp_path / "a" / "notes.txt").write_text("ignored", encoding="utf-8")
    refs = [c.ref for c in load_contracts(tmp_path)]
    assert refs == ["a@2.0.0", "a@2.0.1", "a@10.0.0", "b@1.0.0"]


def test_load_contracts_reports_every_bad_file(tmp_path: Path) -> None:
    _write(tmp_path, "good", "1.0.0", RESIDENT)
    _write(tmp_path, "bad", "1.0", RESIDENT)
    _write(tmp_path, "bad", "2.0.0", "{")
    (tmp_path / "stray.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DeclarationErrors) as info:
        load_contracts(tmp_path)
    assert len(info.value.errors) == 3
    assert "contracts/<name>/<semver>.json" in str(info.value)


def test_load_contracts_single_error_is_raised_as_is(tmp_path: Path) -> None:
    _write(tmp_path, "bad", "2.0.0", "{")
    with pytest.raises(DeclarationError, match="not valid JSON") as info:
        load_contracts(tmp_path)
    assert not isinstance(info.value, DeclarationErrors)


def test_load_contracts_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match="is not a directory"):
        load_contracts(tmp_path / "missing")
