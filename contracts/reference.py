"""The reference semantics of record validation: jsonschema, one record at a time.

The vectorised validator (validate.py) must agree with this module row for row; the property
tests check exactly that. Rows coming from a database or an Arrow batch are first turned into the
JSON instance jsonschema sees by `json_projection`, whose rules are the contract between the two:

- A SQL NULL means "absent", unless the property's `type` lists "null", in which case it is the
  JSON value null. So a NULL in a required, non-nullable column is a `required` violation, and
  in an optional one it is no violation at all.
- A NULL in a column the schema does not declare is absent too: `additionalProperties: false`
  only objects to undeclared columns that hold a value.
- Dates and datetimes become ISO 8601 strings (`date.isoformat()`, `datetime.isoformat()`), the
  way they travel in JSON; Decimals become floats. Everything else is passed through.

One departure from stock jsonschema: `pattern` runs on RE2 (`contracts.patterns`), with
exactly `re.search`'s meaning but in time linear in the text. Stock jsonschema uses Python `re`,
where `^(a+)+$` against 35 `a`s and a `!` takes minutes: a hostile record must not buy that.
A schema with a pattern RE2 cannot run, or with `patternProperties` (whose names jsonschema
matches with Python `re` in three keywords), is refused when the validator is built.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from contracts.model import Contract, allows_null
from contracts.patterns import pattern_refusal, re2_search, schema_patterns
from govex.errors import DeclarationError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

Violation = tuple[str | None, str]  # (field or None for the record, JSON Schema keyword)

# Only `date` is asserted; every other format is an annotation, as in the vectorised validator.
def to_json_scalar(value: Any) -> Any:
    """One column value as it would appear in JSON."""
    if isinstance(value, dt.date | dt.time):  # datetime is a date subclass: isoformat suits both
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def _schema_of(contract_or_schema: Contract | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(contract_or_schema, Contract):
        return contract_or_schema.schema
    return dict(contract_or_schema)


def json_projection(row: Mapping[str, Any], schema: Contract | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON instance a row stands for (see the module docstring for the rules)."""
    properties: Mapping[str, Any] = _schema_of(schema).get("properties", {})
    instance: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            prop = properties.get(name)
            if isinstance(prop, dict) and allows_null(prop):
                instance[name] = None
            continue
        instance[name] = to_json_scalar(value)
    return instance


def _re2_pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """jsonschema's `pattern` keyword, evaluated on RE2 (same verdict, same message)."""
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not re2_search(pattern, [instance])[0]:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _re2_validator() -> Any:
    """Draft 2020-12 with `pattern` on RE2, and the `date` format checked (jsonschema is
    imported here, on first use: a run never needs it)."""
    from jsonschema import Draft202012Validator, FormatChecker, validators

    cls = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"pattern": _re2_pattern}
    )
    return cls, FormatChecker(formats=("date",))


def reference_validator(schema: Contract | Mapping[str, Any]) -> Validator:
    """The jsonschema validator every govex validator is measured against (patterns on RE2).

    Raises DeclarationError for a schema holding a pattern RE2 cannot run or
    `patternProperties`: neither is ever evaluated with Python `re`.
    """
    resolved = _schema_of(schema)
    for pointer, keyword, pattern in schema_patterns(resolved):
        if keyword == "patternProperties":
            msg = (
                "keyword 'patternProperties' is not supported: contracts name their "
                "properties (jsonschema would match the names with Python `re`)"
            )
            raise DeclarationError(msg, field=pointer, value=pattern)
        refusal = pattern_refusal(pattern)
        if refusal is not None:
            raise DeclarationError(refusal, field=pointer, value=pattern)
    cls, date_only = _re2_validator()
    validator: Validator = cls(resolved, format_checker=date_only)
    return validator


def _names(value: Any) -> list[str]:
    return [str(name) for name in value]


def _pairs(
    error: ValidationError, instance: Mapping[str, Any], schema: dict[str, Any]
) -> list[Violation]:
    keyword = str(error.validator)
    if error.absolute_path:
        return [(str(error.absolute_path[0]), keyword)]
    if keyword == "required":
        # jsonschema raises one `required` error per missing name, naming it only in the text.
        return [
            (str(name), keyword) for name in _names(error.validator_value) if name not in instance
        ]
    if keyword == "additionalProperties":
        # One error lists every unexpected name; report each column on its own.
        declared = schema.get("properties", {})
        return [(str(name), keyword) for name in instance if name not in declared]
    return [(None, keyword)]


def reference_violations(
    schema: Contract | Mapping[str, Any],
    records: Iterable[Mapping[str, Any]],
    *,
    project: bool = True,
) -> list[set[Violation]]:
    """Per record, the set of (field, keyword) pairs jsonschema reports.

    Records are rows (as from `pa.Table.to_pylist()`) and are passed through `json_projection`
    first; `project=False` validates them as JSON instances unchanged.
    """
    resolved = _schema_of(schema)
    validator = reference_validator(resolved)
    result: list[set[Violation]] = []
    for record in records:
        instance = json_projection(record, resolved) if project else dict(record)
        found: set[Violation] = set()
        for error in validator.iter_errors(instance):
            found.update(_pairs(error, instance, resolved))
        result.append(found)
    return result
