"""Schema evolution: which changes between two contract versions break consumers.

"Breaking" means some record valid under the old version is invalid under the new one, or a
field consumers rely on disappears. Such a change needs a new major version. The comparison is
conservative: a keyword it does not understand that changed counts as breaking.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from contracts.model import ANNOTATION_KEYWORDS, Contract, check_items

ChangeKind = Literal[
    "property_added",
    "property_removed",
    "required_added",
    "required_removed",
    "type_changed",
    "type_widened",
    "enum_added",
    "enum_narrowed",
    "enum_widened",
    "enum_removed",
    "const_added",
    "const_changed",
    "const_removed",
    "range_tightened",
    "range_loosened",
    "length_tightened",
    "length_loosened",
    "multiple_of_changed",
    "multiple_of_loosened",
    "pattern_added",
    "pattern_changed",
    "pattern_removed",
    "format_added",
    "format_changed",
    "format_removed",
    "additional_properties_closed",
    "additional_properties_opened",
    "checks_added",
    "checks_removed",
    "pii_changed",
    "annotation_changed",
    "keyword_changed",
]
CHANGE_KINDS: tuple[str, ...] = get_args(ChangeKind)

BREAKING_KINDS: frozenset[str] = frozenset(
    {
        "property_removed",
        "required_added",
        "type_changed",
        "enum_added",
        "enum_narrowed",
        "const_added",
        "const_changed",
        "range_tightened",
        "length_tightened",
        "multiple_of_changed",
        "pattern_added",
        "pattern_changed",
        "format_added",
        "format_changed",
        "additional_properties_closed",
        "checks_added",
        "keyword_changed",
    }
)

# Keywords handled by a dedicated rule below; anything else falls to the conservative rule.
_HANDLED = frozenset(
    {
        "type",
        "properties",
        "required",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "pattern",
        "format",
        "additionalProperties",
        "items",
        "x-govex-pii",
        "x-govex-checks",
    }
)


@dataclass(frozen=True)
class SchemaChange:
    """One difference between two schema versions, at a JSON-pointer-like path."""

    path: str
    kind: str
    breaking: bool
    detail: str


def _change(path: str, kind: ChangeKind, detail: str) -> SchemaChange:
    return SchemaChange(path=path or "/", kind=kind, breaking=kind in BREAKING_KINDS, detail=detail)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _json_equal(one: Any, two: Any) -> bool:
    """JSON equality: 1 == 1.0 but True != 1 (as jsonschema's `enum` compares)."""
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(map(_json_equal, one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_json_equal(one[k], two[k]) for k in one)
    if _is_number(one) and _is_number(two):
        return bool(one == two)
    return type(one) is type(two) and bool(one == two)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _types(node: dict[str, Any]) -> set[str] | None:
    declared = node.get("type")
    if declared is None:
        return None
    return {declared} if isinstance(declared, str) else set(declared)


def _compare_type(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    before, after = _types(old), _types(new)
    if before == after:
        return []
    if after is None:
        return [_change(path, "type_widened", f"type constraint {sorted(before or ())} removed")]
    if before is None:
        return [_change(path, "type_changed", f"type {sorted(after)} added where any was allowed")]

    def accepted(t: str) -> bool:
        # Every integer is a number, so integer -> number widens; number -> integer narrows.
        return t in after or (t == "integer" and "number" in after)

    lost = sorted(t for t in before if not accepted(t))
    if lost:
        return [
            _change(
                path,
                "type_changed",
                f"type {sorted(before)} -> {sorted(after)} no longer accepts {lost}",
            )
        ]
    return [_change(path, "type_widened", f"type {sorted(before)} -> {sorted(after)}")]


def _compare_enum(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    changes: list[SchemaChange] = []
    if "enum" in old or "enum" in new:
        if "enum" not in new:
            changes.append(_change(path, "enum_removed", "enum removed: any value allowed"))
        elif "enum" not in old:
            changes.append(_change(path, "enum_added", f"enum {new['enum']!r} added"))
        else:
            removed = [v for v in old["enum"] if not any(_json_equal(v, w) for w in new["enum"])]
            added = [v for v in new["enum"] if not any(_json_equal(v, w) for w in old["enum"])]
            if removed:
                changes.append(_change(path, "enum_narrowed", f"enum values {removed!r} removed"))
            elif added:
                changes.append(_change(path, "enum_widened", f"enum values {added!r} added"))
    if "const" in old or "const" in new:
        if "const" not in new:
            changes.append(_change(path, "const_removed", f"const {old['const']!r} removed"))
        elif "const" not in old:
            changes.append(_change(path, "const_added", f"const {new['const']!r} added"))
        elif not _json_equal(old["const"], new["const"]):
            changes.append(
                _change(path, "const_changed", f"const {old['const']!r} -> {new['const']!r}")
            )
    return changes


Bound = tuple[float, bool]  # (limit, exclusive)


def _bound(node: dict[str, Any], inclusive: str, exclusive: str, lower: bool) -> Bound | None:
    """The effective bound on one side, combining the inclusive and exclusive keywords."""
    candidates: list[Bound] = []
    if inclusive in node:
        candidates.append((node[inclusive], False))
    if exclusive in node:
        candidates.append((node[exclusive], True))
    return max(candidates, key=lambda b: _tightness(b, lower)) if candidates else None


def _tightness(bound: Bound, lower: bool) -> tuple[float, bool]:
    """Orders bounds on one side from loosest to tightest (exclusive beats inclusive on a tie)."""
    return (bound[0], bound[1]) if lower else (-bound[0], bound[1])


def _compare_range(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    changes: list[SchemaChange] = []
    for side, inclusive, exclusive, lower in (
        ("lower", "minimum", "exclusiveMinimum", True),
        ("upper", "maximum", "exclusiveMaximum", False),
    ):
        before = _bound(old, inclusive, exclusive, lower)
        after = _bound(new, inclusive, exclusive, lower)
        if before == after:
            continue
        text = f"{side} bound {_show(before, inclusive, exclusive)} -> "
        text += _show(after, inclusive, exclusive)
        if after is not None and (
            before is None or _tightness(after, lower) > _tightness(before, lower)
        ):
            changes.append(_change(path, "range_tightened", text))
        elif before is not None and (
            after is None or _tightness(after, lower) < _tightness(before, lower)
        ):
            changes.append(_change(path, "range_loosened", text))
    return changes


def _show(bound: Bound | None, inclusive: str, exclusive: str) -> str:
    if bound is None:
        return "none"
    return f"{exclusive if bound[1] else inclusive} {bound[0]}"


def _compare_lengths(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    changes: list[SchemaChange] = []
    for keyword, low in (
        ("minLength", True),
        ("maxLength", False),
        ("minItems", True),
        ("maxItems", False),
        ("minProperties", True),
        ("maxProperties", False),
    ):
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        # A missing minimum is 0; a missing maximum is infinity.
        b = (0 if low else math.inf) if before is None else before
        a = (0 if low else math.inf) if after is None else after
        tighter = a > b if low else a < b
        kind: ChangeKind = "length_tightened" if tighter else "length_loosened"
        changes.append(_change(path, kind, f"{keyword} {before} -> {after}"))
    return changes


def _compare_multiple_of(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    before, after = old.get("multipleOf"), new.get("multipleOf")
    if before == after:
        return []
    text = f"multipleOf {before} -> {after}"
    if after is None:
        return [_change(path, "multiple_of_loosened", text)]
    if before is not None:
        ratio = before / after
        if ratio == int(ratio):  # every multiple of the old step is a multiple of the new one
            return [_change(path, "multiple_of_loosened", text)]
    return [_change(path, "multiple_of_changed", text)]


def _compare_strings(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    changes: list[SchemaChange] = []
    for keyword in ("pattern", "format"):
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        text = f"{keyword} {before!r} -> {after!r}"
        if after is None:
            kind: ChangeKind = "pattern_removed" if keyword == "pattern" else "format_removed"
        elif before is None:
            kind = "pattern_added" if keyword == "pattern" else "format_added"
        else:
            kind = "pattern_changed" if keyword == "pattern" else "format_changed"
        changes.append(_change(path, kind, text))
    return changes


def _check_set(node: dict[str, Any]) -> set[str]:
    """A node's checks as comparable text: the name, then its parameters when it has any (a
    changed parameter reads as that check removed and added, so as breaking)."""
    return {
        name + (json.dumps(params, sort_keys=True, ensure_ascii=False) if params else "")
        for name, params in check_items(node.get("x-govex-checks", ()))
    }


def _compare_extensions(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    changes: list[SchemaChange] = []
    if old.get("x-govex-pii") != new.get("x-govex-pii"):
        changes.append(
            _change(
                path,
                "pii_changed",
                f"x-govex-pii {old.get('x-govex-pii')!r} -> {new.get('x-govex-pii')!r}",
            )
        )
    before, after = _check_set(old), _check_set(new)
    if after - before:  # a new national-standard check can reject records that passed before
        changes.append(_change(path, "checks_added", f"checks {sorted(after - before)} added"))
    if before - after:
        changes.append(_change(path, "checks_removed", f"checks {sorted(before - after)} removed"))
    return changes


def _compare_object(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    changes: list[SchemaChange] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name, sub in old_props.items():
        where = f"{path}/properties/{_escape(name)}"
        if name not in new_props:
            changes.append(_change(where, "property_removed", f"property {name!r} removed"))
        else:
            changes.extend(_compare_node(where, sub, new_props[name]))
    for name in new_props:
        if name not in old_props and name not in new_required:
            where = f"{path}/properties/{_escape(name)}"
            changes.append(_change(where, "property_added", f"optional property {name!r} added"))
    for name in sorted(new_required - old_required):
        where = f"{path}/properties/{_escape(name)}"
        detail = (
            f"existing property {name!r} became required"
            if name in old_props
            else f"new required property {name!r}"
        )
        changes.append(_change(where, "required_added", detail))
    for name in sorted(old_required - new_required):
        where = f"{path}/properties/{_escape(name)}"
        changes.append(_change(where, "required_removed", f"property {name!r} no longer required"))

    before, after = old.get("additionalProperties", True), new.get("additionalProperties", True)
    where = f"{path}/additionalProperties"
    if before is True and after is not True:
        changes.append(
            _change(
                where, "additional_properties_closed", f"additionalProperties true -> {after!r}"
            )
        )
    elif after is True and before is not True:
        changes.append(
            _change(
                where, "additional_properties_opened", f"additionalProperties {before!r} -> true"
            )
        )
    elif isinstance(before, dict) and isinstance(after, dict):
        changes.extend(_compare_node(where, before, after))
    elif before != after:
        kind: ChangeKind = (
            "additional_properties_opened" if before is False else "additional_properties_closed"
        )
        changes.append(_change(where, kind, f"additionalProperties {before!r} -> {after!r}"))
    return changes


def _compare_node(path: str, old: Any, new: Any) -> list[SchemaChange]:
    if isinstance(old, bool) or isinstance(new, bool):  # boolean schemas: true = any, false = none
        old_s = {} if old is True else ({"not": {}} if old is False else old)
        new_s = {} if new is True else ({"not": {}} if new is False else new)
        if old_s == new_s:
            return []
        return _compare_node(path, old_s, new_s)
    changes = _compare_type(path, old, new)
    changes += _compare_enum(path, old, new)
    changes += _compare_range(path, old, new)
    changes += _compare_lengths(path, old, new)
    changes += _compare_multiple_of(path, old, new)
    changes += _compare_strings(path, old, new)
    changes += _compare_extensions(path, old, new)
    changes += _compare_object(path, old, new)
    if "items" in old or "items" in new:
        changes += _compare_node(f"{path}/items", old.get("items", True), new.get("items", True))
    for keyword in sorted((old.keys() | new.keys()) - _HANDLED):
        if _json_equal(old.get(keyword), new.get(keyword)) and (keyword in old) == (keyword in new):
            continue
        text = f"{keyword} {old.get(keyword)!r} -> {new.get(keyword)!r}"
        if keyword in ANNOTATION_KEYWORDS or keyword.startswith("x-"):
            changes.append(_change(path, "annotation_changed", text))
        else:
            changes.append(_change(path, "keyword_changed", text))
    return changes


def compare(old_schema: dict[str, Any], new_schema: dict[str, Any]) -> list[SchemaChange]:
    """Every difference between two schemas, each marked breaking or not."""
    return _compare_node("", old_schema, new_schema)


def breaking_changes(old_schema: dict[str, Any], new_schema: dict[str, Any]) -> list[SchemaChange]:
    """Only the differences that need a new major version."""
    return [change for change in compare(old_schema, new_schema) if change.breaking]


def check_evolution(old: Contract, new: Contract) -> list[SchemaChange]:
    """Breaking changes made without bumping the major version (empty when the move is fine)."""
    if new.semver[0] > old.semver[0]:
        return []
    return breaking_changes(old.schema, new.schema)
