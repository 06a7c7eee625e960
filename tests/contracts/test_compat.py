"""Compatibility rules, table-driven: each row is one change to one property."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import (
    BREAKING_KINDS,
    CHANGE_KINDS,
    Contract,
    breaking_changes,
    check_evolution,
    compare,
)


def _wrap(prop: dict[str, Any] | None, *, required: bool = False, **top: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"id": {"type": "string"}}
    if prop is not None:
        props["x"] = prop
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": ["id"]}
    if required:
        schema["required"].append("x")
    schema.update(top)
    return schema


# (id, old property fragment, new property fragment, breaking?, expected kind)
CASES: list[tuple[str, Any, Any, bool, str]] = [
    ("type int->string", {"type": "integer"}, {"type": "string"}, True, "type_changed"),
    ("type number->integer narrows", {"type": "number"}, {"type": "integer"}, True, "type_changed"),
    ("type integer->number widens", {"type": "integer"}, {"type": "number"}, False, "type_widened"),
    (
        "null added to type list",
        {"type": "string"},
        {"type": ["string", "null"]},
        False,
        "type_widened",
    ),
    (
        "null removed from type list",
        {"type": ["string", "null"]},
        {"type": "string"},
        True,
        "type_changed",
    ),
    ("type added where none", {}, {"type": "string"}, True, "type_changed"),
    ("type removed", {"type": "string"}, {}, False, "type_widened"),
    ("enum narrowed", {"enum": ["a", "b"]}, {"enum": ["a"]}, True, "enum_narrowed"),
    ("enum widened", {"enum": ["a"]}, {"enum": ["a", "b"]}, False, "enum_widened"),
    ("enum added", {"type": "string"}, {"type": "string", "enum": ["a"]}, True, "enum_added"),
    ("enum removed", {"enum": ["a"]}, {}, False, "enum_removed"),
    (
        "enum 1 -> 1.0 is the same value",
        {"enum": [1, 2]},
        {"enum": [1.0, 2, 3]},
        False,
        "enum_widened",
    ),
    ("enum true is not 1", {"enum": [True]}, {"enum": [1]}, True, "enum_narrowed"),
    ("const added", {"type": "string"}, {"type": "string", "const": "a"}, True, "const_added"),
    ("const changed", {"const": "a"}, {"const": "b"}, True, "const_changed"),
    ("const removed", {"const": "a"}, {}, False, "const_removed"),
    ("minimum raised", {"minimum": 0}, {"minimum": 1}, True, "range_tightened"),
    ("minimum lowered", {"minimum": 1}, {"minimum": 0}, False, "range_loosened"),
    (
        "minimum added",
        {"type": "integer"},
        {"type": "integer", "minimum": 0},
        True,
        "range_tightened",
    ),
    ("minimum removed", {"minimum": 0}, {}, False, "range_loosened"),
    ("maximum lowered", {"maximum": 10}, {"maximum": 9}, True, "range_tightened"),
    ("maximum raised", {"maximum": 9}, {"maximum": 10}, False, "range_loosened"),
    (
        "minimum -> exclusiveMinimum same limit",
        {"minimum": 0},
        {"exclusiveMinimum": 0},
        True,
        "range_tightened",
    ),
    (
        "exclusiveMaximum -> maximum same limit",
        {"exclusiveMaximum": 5},
        {"maximum": 5},
        False,
        "range_loosened",
    ),
    ("exclusiveMaximum added", {}, {"exclusiveMaximum": 5}, True, "range_tightened"),
    ("minLength raised", {"minLength": 1}, {"minLength": 2}, True, "length_tightened"),
    ("maxLength lowered", {"maxLength": 18}, {"maxLength": 17}, True, "length_tightened"),
    (
        "maxLength added",
        {"type": "string"},
        {"type": "string", "maxLength": 5},
        True,
        "length_tightened",
    ),
    ("maxLength raised", {"maxLength": 17}, {"maxLength": 18}, False, "length_loosened"),
    ("minLength removed", {"minLength": 3}, {}, False, "length_loosened"),
    (
        "pattern added",
        {"type": "string"},
        {"type": "string", "pattern": "^[0-9]+$"},
        True,
        "pattern_added",
    ),
    ("pattern changed", {"pattern": "^[0-9]+$"}, {"pattern": "^[0-9]*$"}, True, "pattern_changed"),
    ("pattern removed", {"pattern": "^[0-9]+$"}, {}, False, "pattern_removed"),
    (
        "format added",
        {"type": "string"},
        {"type": "string", "format": "date"},
        True,
        "format_added",
    ),
    ("format changed", {"format": "date"}, {"format": "date-time"}, True, "format_changed"),
    ("format removed", {"format": "date"}, {}, False, "format_removed"),
    (
        "multipleOf added",
        {"type": "integer"},
        {"type": "integer", "multipleOf": 2},
        True,
        "multiple_of_changed",
    ),
    (
        "multipleOf 4 -> 2 loosens",
        {"multipleOf": 4},
        {"multipleOf": 2},
        False,
        "multiple_of_loosened",
    ),
    (
        "description changed",
        {"description": "a"},
        {"description": "b"},
        False,
        "annotation_changed",
    ),
    ("title added", {}, {"title": "Name"}, False, "annotation_changed"),
    ("examples changed", {"examples": ["a"]}, {"examples": ["b"]}, False, "annotation_changed"),
    ("pii changed", {"x-govex-pii": "name"}, {"x-govex-pii": "address"}, False, "pii_changed"),
    ("national check added", {}, {"x-govex-checks": ["cn_resident_id"]}, True, "checks_added"),
    ("national check removed", {"x-govex-checks": ["cn_uscc"]}, {}, False, "checks_removed"),
    ("unknown keyword added is conservative", {}, {"not": {"const": "a"}}, True, "keyword_changed"),
    ("property removed", {"type": "string"}, None, True, "property_removed"),
    ("optional property added", None, {"type": "string"}, False, "property_added"),
]


@pytest.mark.parametrize(
    ("old", "new", "breaking", "kind"),
    [
        pytest.param(old, new, breaking, kind, id=case_id)
        for case_id, old, new, breaking, kind in CASES
    ],
)
def test_property_change(old: Any, new: Any, breaking: bool, kind: str) -> None:
    changes = compare(_wrap(old), _wrap(new))
    assert [(c.kind, c.breaking) for c in changes] == [(kind, breaking)]
    assert changes[0].path == "/properties/x"
    assert changes[0].detail
    assert bool(breaking_changes(_wrap(old), _wrap(new))) is breaking


def test_case_table_is_large_and_every_kind_is_known() -> None:
    assert len(CASES) >= 25
    assert {case[4] for case in CASES} <= set(CHANGE_KINDS)
    assert set(CHANGE_KINDS) >= BREAKING_KINDS


def test_new_required_property_is_breaking() -> None:
    changes = compare(_wrap(None), _wrap({"type": "string"}, required=True))
    assert [(c.path, c.kind, c.breaking) for c in changes] == [
        ("/properties/x", "required_added", True)
    ]
    assert "new required property" in changes[0].detail


def test_existing_property_becoming_required_is_breaking() -> None:
    changes = compare(_wrap({"type": "string"}), _wrap({"type": "string"}, required=True))
    assert [(c.kind, c.breaking) for c in changes] == [("required_added", True)]
    assert "became required" in changes[0].detail


def test_property_no_longer_required_is_not_breaking() -> None:
    changes = compare(_wrap({"type": "string"}, required=True), _wrap({"type": "string"}))
    assert [(c.kind, c.breaking) for c in changes] == [("required_removed", False)]


@pytest.mark.parametrize(
    ("old", "new", "kind", "breaking"),
    [
        pytest.param(
            {}, {"additionalProperties": False}, "additional_properties_closed", True, id="closed"
        ),
        pytest.param(
            {"additionalProperties": True},
            {"additionalProperties": False},
            "additional_properties_closed",
            True,
            id="true-to-false",
        ),
        pytest.param(
            {"additionalProperties": False}, {}, "additional_properties_opened", False, id="opened"
        ),
    ],
)
def test_additional_properties(old: Any, new: Any, kind: str, breaking: bool) -> None:
    changes = compare(_wrap(None, **old), _wrap(None, **new))
    assert [(c.path, c.kind, c.breaking) for c in changes] == [
        ("/additionalProperties", kind, breaking)
    ]


def test_nested_object_properties_have_pointer_paths() -> None:
    def schema(city: dict[str, Any]) -> dict[str, Any]:
        address = {"type": "object", "properties": {"city": city, "zip": {"type": "string"}}}
        return _wrap(None) | {"properties": {"id": {"type": "string"}, "address": address}}

    changes = compare(schema({"type": "string"}), schema({"type": "integer"}))
    assert [(c.path, c.kind) for c in changes] == [
        ("/properties/address/properties/city", "type_changed")
    ]


def test_array_items_are_compared() -> None:
    old = _wrap({"type": "array", "items": {"type": "string", "enum": ["a", "b"]}})
    new = _wrap({"type": "array", "items": {"type": "string", "enum": ["a"]}})
    changes = compare(old, new)
    assert [(c.path, c.kind, c.breaking) for c in changes] == [
        ("/properties/x/items", "enum_narrowed", True)
    ]


def test_pointer_escapes_slash_and_tilde() -> None:
    changes = compare(_wrap(None) | {"properties": {"a/b~c": {}}}, _wrap(None))
    assert changes[0].path == "/properties/a~1b~0c"


def test_identical_schemas_have_no_changes() -> None:
    schema = _wrap({"type": "string", "pattern": "^[A-Z]+$", "x-govex-pii": "name"})
    assert compare(schema, schema) == []


def _contract(version: str, prop: dict[str, Any] | None) -> Contract:
    return Contract(name="resident_identity", version=version, schema=_wrap(prop))


def test_evolution_breaking_change_needs_major_bump() -> None:
    old = _contract("1.2.0", {"type": "integer"})
    same_major = _contract("1.3.0", {"type": "string"})
    bumped = _contract("2.0.0", {"type": "string"})
    assert [c.kind for c in check_evolution(old, same_major)] == ["type_changed"]
    assert check_evolution(old, bumped) == []


def test_evolution_compatible_change_within_major_is_allowed() -> None:
    assert check_evolution(_contract("1.0.0", None), _contract("1.1.0", {"type": "string"})) == []
