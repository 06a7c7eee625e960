"""Reading contracts from a workspace: `contracts/<name>/<semver>.json`, checked on the way in.

A contract file comes from a department the others do not trust, so it is bounded before it is
believed: at most `MAX_BYTES` (1 MiB; a contract of a hundred fields is a few tens of KiB) and
`MAX_DEPTH` (64) nested arrays and objects (Python's JSON parser would otherwise end deep input
in a RecursionError). Once it parses, it must be a JSON Schema the rest of govex can run: every
pattern has an RE2 form (no pattern is ever evaluated with Python `re`) and the vectorised
validator supports every keyword, so `govex apply` refuses what a run would refuse.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from contracts.model import (
    CHECK_PARAMETERS,
    NORMALIZE_STEPS,
    RECORD_PREFIX,
    Contract,
    check_items,
    parse_semver,
    property_types,
)
from contracts.patterns import pattern_refusal, schema_patterns
from contracts.validate import BatchValidator
from govex.errors import DeclarationError, DeclarationErrors
from govex.files import MAX_DECLARATION_BYTES, read_declaration

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# Names are used in refs (`name@1.0.0`), paths and table names: keep them plain.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
MAX_BYTES = MAX_DECLARATION_BYTES
MAX_DEPTH = 64


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON allows duplicate keys and keeps the last; in a reviewed contract that hides a bug."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _pointer(parts: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _no_constant(name: str) -> Any:
    """`NaN`, `Infinity`: Python's JSON parser accepts them, JSON does not."""
    msg = f"{name} is not a JSON value"
    raise ValueError(msg)


def _depth(document: Any) -> int:
    """How deeply arrays and objects nest (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                return deepest
            stack += [(child, depth + 1) for child in node]
    return deepest


def _parse_json(path: Path) -> Any:
    file = str(path)
    text = read_declaration(path, file, "a contract")
    too_deep = f"nests arrays and objects more than {MAX_DEPTH} deep; a contract never does"
    try:
        document = json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_no_constant
        )
    except RecursionError as error:
        raise DeclarationError(too_deep, file=file) from error
    except json.JSONDecodeError as error:
        msg = f"is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        raise DeclarationError(
            msg,
            file=file,
            value=text.splitlines()[error.lineno - 1] if text.splitlines() else "",
        ) from error
    except _DuplicateKeyError as error:
        msg = f"key {error.key!r} appears twice in the same JSON object; keep one"
        raise DeclarationError(
            msg,
            file=file,
            field=error.key,
            value=error.key,
        ) from error
    except ValueError as error:  # NaN/Infinity, an integer of more than 4300 digits
        reason = str(error).split(";")[0]  # not Python's advice on sys.set_int_max_str_digits
        msg = f"is not valid JSON: {reason}"
        raise DeclarationError(msg, file=file) from error
    if _depth(document) > MAX_DEPTH:
        raise DeclarationError(too_deep, file=file)
    return document


def _check_extensions(schema: dict[str, Any], file: str) -> None:
    """`x-govex-pii` is a category name; `x-govex-checks` a list of check names;
    `x-govex-normalize` a list of normalisation steps of a string property."""
    nodes: list[tuple[str | None, dict[str, Any]]] = [(None, schema)]
    nodes += [(name, prop) for name, prop in schema["properties"].items() if isinstance(prop, dict)]
    for name, node in nodes:
        where = "(top level)" if name is None else name
        pii = node.get("x-govex-pii")
        if pii is not None and (not isinstance(pii, str) or not pii):
            msg = f"x-govex-pii must be a category name such as 'name' or 'id_number', got {pii!r}"
            raise DeclarationError(
                msg,
                file=file,
                field=where,
                value=pii,
            )
        checks = node.get("x-govex-checks")
        if checks is not None and (
            not isinstance(checks, list)
            or not all(_check_item_shaped(c) for c in checks)
            or len({name for name, _ in check_items(checks)}) != len(checks)
        ):
            msg = (
                "x-govex-checks must be a list of distinct check names such as "
                "['cn_resident_id'], each a name or an object naming one check and its "
                f"parameters such as {{'cn_division_code': {{'as_of': '2009-06-30'}}}}, got "
                f"{checks!r}"
            )
            raise DeclarationError(
                msg,
                file=file,
                field=where,
                value=checks,
            )
        for check, params in check_items(checks):
            _check_parameters(schema, check, params, file, where)
        if "x-govex-normalize" in node:
            _check_normalize(name, node, file)


def _check_normalize(name: str | None, node: dict[str, Any], file: str) -> None:
    """`x-govex-normalize` is a list of distinct steps, on a string property only: it says how
    verification compares that property's text (see `contracts.model.NORMALIZE_STEPS`)."""
    steps = node["x-govex-normalize"]
    known = ", ".join(NORMALIZE_STEPS)
    if name is None:
        msg = f"x-govex-normalize belongs on a string property, not the top level (steps: {known})"
        raise DeclarationError(msg, file=file, field="(top level)", value=steps)
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        msg = f"x-govex-normalize of '{name}' must be a list of steps from {known}, got {steps!r}"
        raise DeclarationError(msg, file=file, field=name, value=steps)
    unknown = [s for s in steps if s not in NORMALIZE_STEPS]
    if unknown:
        msg = (f"x-govex-normalize of '{name}' has unknown step {unknown[0]!r}; the steps are "
               f"{known}")
        raise DeclarationError(msg, file=file, field=name, value=unknown[0])
    if len(set(steps)) != len(steps):
        msg = f"x-govex-normalize of '{name}' repeats a step: {steps!r}"
        raise DeclarationError(msg, file=file, field=name, value=steps)
    types = property_types(node) or frozenset()
    if (types - {"null"}) != {"string"} or node.get("format") in ("date", "date-time"):
        msg = (f"x-govex-normalize applies to text, but '{name}' is not a string property "
               "(dates, date-times, numbers and booleans compare as their type already)")
        raise DeclarationError(msg, file=file, field=name, value=steps)


def _check_item_shaped(item: Any) -> bool:
    if isinstance(item, dict):
        return len(item) == 1 and all(
            isinstance(k, str) and k and isinstance(v, dict) for k, v in item.items()
        )
    return isinstance(item, str) and bool(item)


def _check_parameters(
    schema: dict[str, Any], check: str, params: dict[str, Any], file: str, where: str
) -> None:
    """Each parameter is one the check takes, with a value it can use."""
    known = CHECK_PARAMETERS.get(check, ())
    for name, value in params.items():
        if name not in known:
            takes = f"takes only {', '.join(known)}" if known else "takes no parameters"
            msg = f"check {check!r} has no parameter {name!r}: it {takes}"
            raise DeclarationError(msg, file=file, field=where, value=params)
        if name == "as_of" and not _as_of_usable(schema, value):
            msg = (
                f"check {check!r} parameter as_of must be a date YYYY-MM-DD or "
                f"'{RECORD_PREFIX}<field>' naming a date property of this contract, got {value!r}"
            )
            raise DeclarationError(msg, file=file, field=where, value=value)


def _as_of_usable(schema: dict[str, Any], value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith(RECORD_PREFIX):
        prop = schema["properties"].get(value.removeprefix(RECORD_PREFIX))
        return isinstance(prop, dict) and prop.get("format") in ("date", "date-time")
    try:
        return dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


def check_contract_schema(schema: Any, *, file: str) -> dict[str, Any]:
    """Everything a contract schema must satisfy beyond being JSON; returns it typed."""
    if not isinstance(schema, dict):
        msg = f"must hold a JSON object (a JSON Schema), not {type(schema).__name__}"
        raise DeclarationError(
            msg,
            file=file,
            value=schema,
        )
    dialect = schema.get("$schema")
    if dialect is not None and str(dialect).rstrip("#") != DRAFT_2020_12:
        msg = f"$schema must be {DRAFT_2020_12!r} (JSON Schema draft 2020-12), got {dialect!r}"
        raise DeclarationError(
            msg,
            file=file,
            field="$schema",
            value=dialect,
        )
    _check_patterns(schema, file)
    from jsonschema import Draft202012Validator  # on first use: a run never checks a schema
    from jsonschema.exceptions import SchemaError, best_match

    try:
        Draft202012Validator.check_schema(schema)
    except RecursionError as error:  # MAX_DEPTH keeps files shallow; a dict built in code may not
        msg = f"nests schemas more than {MAX_DEPTH} deep; a contract never does"
        raise DeclarationError(msg, file=file) from error
    except SchemaError as error:
        worst = best_match(error.context) or error if error.context else error
        where = _pointer(worst.absolute_path)
        msg = f"is not a valid JSON Schema draft 2020-12 at {where}: {worst.message}"
        raise DeclarationError(
            msg,
            file=file,
            field=where,
            value=worst.instance,
        ) from error
    if schema.get("type") != "object":
        msg = f'must be an object schema ("type": "object"), got type {schema.get("type")!r}'
        raise DeclarationError(
            msg,
            file=file,
            field="type",
            value=schema.get("type"),
        )
    properties = schema.get("properties")
    if not properties:
        msg = 'must declare at least one property under "properties"'
        raise DeclarationError(
            msg,
            file=file,
            field="properties",
            value=properties,
        )
    for name in schema.get("required", ()):
        if name not in properties:
            msg = (
                f"required names {name!r}, which is not one of the properties; "
                'declare it under "properties" or drop it from "required"'
            )
            raise DeclarationError(
                msg,
                file=file,
                field="required",
                value=name,
            )
    _check_extensions(schema, file)
    try:  # the validator every run builds: refuse here what it would refuse there
        BatchValidator(schema)
    except DeclarationError as error:
        raise DeclarationError(
            error.message, file=file, field=error.field, value=error.value
        ) from error
    return schema


def _check_patterns(schema: dict[str, Any], file: str) -> None:
    """Every pattern must run on RE2; checked before jsonschema compiles them with Python `re`
    (which can also fail with a RecursionError on deeply nested groups)."""
    for pointer, _keyword, pattern in schema_patterns(schema):
        refusal = pattern_refusal(pattern)
        if refusal is not None:
            raise DeclarationError(refusal, file=file, field=pointer, value=pattern)


def load_contract(path: str | Path) -> Contract:
    """Load `contracts/<name>/<semver>.json`; name and version come from the path."""
    path = Path(path)
    file = str(path)
    if path.suffix != ".json":
        msg = "a contract file must be named <semver>.json, e.g. 1.0.0.json"
        raise DeclarationError(
            msg,
            file=file,
            value=path.name,
        )
    name = path.parent.name
    if not _NAME.fullmatch(name):
        msg = f"contract name {name!r} (the directory) must be letters, digits, '_', '.' or '-'"
        raise DeclarationError(
            msg,
            file=file,
            field="name",
            value=name,
        )
    version = path.name[: -len(".json")]
    parse_semver(version, file=file)
    schema = check_contract_schema(_parse_json(path), file=file)
    return Contract(name=name, version=version, schema=schema)


def load_contracts(directory: str | Path) -> list[Contract]:
    """Every contract version under a workspace's `contracts/` directory, sorted by name, semver.

    All bad files are reported together (DeclarationErrors) so one pass fixes them all.
    """
    root = Path(directory)
    if not root.is_dir():
        msg = "is not a directory; contracts live in <workspace>/contracts/<name>/<semver>.json"
        raise DeclarationError(
            msg,
            file=str(root),
        )
    contracts: list[Contract] = []
    errors: list[DeclarationError] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".json":
            errors.append(
                DeclarationError(
                    "a contract must sit in a directory named after it: "
                    f"contracts/<name>/<semver>.json, not contracts/{entry.name}",
                    file=str(entry),
                    value=entry.name,
                )
            )
            continue
        if not entry.is_dir():
            continue
        for file in sorted(entry.glob("*.json")):
            try:
                contracts.append(load_contract(file))
            except DeclarationError as error:
                errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise DeclarationErrors(errors)
    return sorted(contracts, key=lambda c: (c.name, c.semver))
