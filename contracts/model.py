"""The `Contract` value: one version of one resource's JSON Schema, plus read-only helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from govex.errors import DeclarationError

# Strict semver core only: no leading zeros, no pre-release or build suffix, ASCII digits.
_SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", re.ASCII)

SemVer = tuple[int, int, int]

# Keywords that never reject a value nor change what a schema accepts.
ANNOTATION_KEYWORDS = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "contentMediaType",
        "contentEncoding",
    }
)


#: The parameters each parameterised national-standard check accepts (`x-govex-checks` items
#: written `{"check": {parameter: value}}`); a check not listed takes none.
CHECK_PARAMETERS: dict[str, tuple[str, ...]] = {"cn_division_code": ("as_of",)}
#: `as_of: "record:<field>"` takes the date from each record's field instead of a fixed date.
RECORD_PREFIX = "record:"

#: `x-govex-normalize` steps a string property may declare: how verification (可用不可见)
#: compares its values. `fullwidth`: full-width ASCII variants (U+FF01–U+FF5E) to their ASCII
#: forms and the ideographic space (U+3000) to a space; `nfc`: Unicode NFC; `trim`: leading
#: and trailing white space removed. Applied in this order, whatever order the contract lists.
NormalizeStep = Literal["fullwidth", "nfc", "trim"]
NORMALIZE_STEPS: tuple[NormalizeStep, ...] = get_args(NormalizeStep)


def check_items(declared: Any) -> list[tuple[str, dict[str, Any]]]:
    """(name, parameters) of each `x-govex-checks` item: a name, or a one-key object naming
    the check and holding its parameters. Assumes the shape `contracts.loading` checked."""
    items: list[tuple[str, dict[str, Any]]] = []
    for item in declared or ():
        if isinstance(item, dict):
            items += [(str(name), dict(params)) for name, params in item.items()]
        else:
            items.append((str(item), {}))
    return items


def parse_semver(text: str, *, file: str | None = None) -> SemVer:
    """`"1.2.3"` -> `(1, 2, 3)`; anything but strict MAJOR.MINOR.PATCH is a declaration error."""
    match = _SEMVER.fullmatch(text)
    if match is None:
        msg = f"version {text!r} is not strict semver MAJOR.MINOR.PATCH (e.g. 1.0.0)"
        raise DeclarationError(
            msg,
            file=file,
            field="version",
            value=text,
        )
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def property_types(prop: dict[str, Any]) -> frozenset[str] | None:
    """The JSON types a property declares, or None when it declares no `type` (any type)."""
    declared = prop.get("type")
    if declared is None:
        return None
    if isinstance(declared, str):
        return frozenset({declared})
    return frozenset(str(t) for t in declared)


def allows_null(prop: dict[str, Any] | None) -> bool:
    """True when a property explicitly lets JSON null through its `type` keyword.

    This is what decides whether a SQL NULL is the value null or an absent property.
    """
    if prop is None:
        return False
    types = property_types(prop)
    return types is not None and "null" in types


@dataclass(frozen=True)
class Contract:
    """One contract version. `schema` is the parsed JSON Schema; treat it as read-only."""

    name: str
    version: str
    schema: dict[str, Any]

    def __post_init__(self) -> None:
        parse_semver(self.version, file=self.ref)

    def __hash__(self) -> int:
        # The schema dict is not hashable; name@version identifies a contract version.
        return hash((self.name, self.version))

    @property
    def semver(self) -> SemVer:
        return parse_semver(self.version)

    @property
    def ref(self) -> str:
        """`name@version`, the form resources use to pin a contract."""
        return f"{self.name}@{self.version}"

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = self.schema.get("properties", {})
        return props

    @property
    def fields(self) -> tuple[str, ...]:
        """Property names in declaration order (JSON object order is kept by the loader)."""
        return tuple(self.properties)

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.schema.get("required", ()))

    def property(self, name: str) -> dict[str, Any]:
        """The sub-schema of property `name`; KeyError names the contract when it is unknown."""
        try:
            return self.properties[name]
        except KeyError:
            msg = f"contract {self.ref} has no property {name!r}"
            raise KeyError(msg) from None

    def pii(self, name: str) -> str | None:
        """The `x-govex-pii` category of a property (`name`, `id_number`, …), or None."""
        value = self.property(name).get("x-govex-pii")
        return None if value is None else str(value)

    def normalize(self, name: str) -> tuple[str, ...]:
        """The `x-govex-normalize` steps of a property, in the order they apply
        (`NORMALIZE_STEPS`); empty when it declares none."""
        declared = self.property(name).get("x-govex-normalize") or ()
        return tuple(step for step in NORMALIZE_STEPS if step in declared)

    def checks(self, name: str | None = None) -> tuple[str, ...]:
        """Named national-standard checks (`x-govex-checks`) of a property, or top-level ones."""
        return tuple(self.check_parameters(name))

    def check_parameters(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        """The same checks with their parameters: `"cn_uscc"` gives `{}`, and
        `{"cn_division_code": {"as_of": "2009-06-30"}}` gives `{"as_of": "2009-06-30"}`."""
        node = self.schema if name is None else self.property(name)
        return dict(check_items(node.get("x-govex-checks", ())))
