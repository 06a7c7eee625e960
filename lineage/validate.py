"""Checking an OpenLineage RunEvent from another producer before it is stored.

govex's own events are built by `lineage.events` and checked against the spec by its tests;
events that arrive over HTTP (`POST /api/v1/lineage`) are whatever the sender
wrote. `validate_run_event` holds them to the spec: the core schema of OpenLineage 2-0-2
(`lineage/spec/OpenLineage.json`, the spec's own file, Apache-2.0 with `LICENSE.txt` beside
it; openlineage-python ships classes, not the schema), with the formats it names checked:

- `eventType` one of the spec's, `eventTime` an RFC 3339 date-time with a time zone,
  `run.runId` a UUID, `producer` and `schemaURL` absolute URIs, `job.namespace` and
  `job.name` strings (and, beyond the schema, not empty);
- every facet an object carrying `_producer` and `_schemaURL` (the spec's `BaseFacet`);
- no NaN or Infinity anywhere (Python's JSON reader accepts them; JSON does not, and
  PostgreSQL refuses to store them), and no nesting deeper than `MAX_DEPTH`.

Only RunEvents are accepted: the lineage store files every event under its run.

`govex_claims` says whether an event speaks for govex itself (its namespace or producer): govex
stores its own events directly, so such an event over HTTP is a forgery, whoever sends it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from govex.errors import DeclarationError
from lineage.events import JOB_NAMESPACE, producer

if TYPE_CHECKING:  # jsonschema is imported on first use: a run never validates an event
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import ValidationError

__all__ = ["CORE_SCHEMA", "MAX_DEPTH", "govex_claims", "run_ids", "validate_run_event"]

CORE_SCHEMA = Path(__file__).with_name("spec") / "OpenLineage.json"
#: Objects and arrays inside objects and arrays: real events stay under 15 (a column-lineage
#: facet is the deepest); the limit keeps every later step (JSON encoding, the schema check)
#: far from Python's recursion limit.
MAX_DEPTH = 64
# Longest offending value quoted back in an error message, in characters.
_QUOTE = 80

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def _formats() -> FormatChecker:
    """uuid as jsonschema checks it; date-time and uri, which it checks only with optional
    packages, here."""
    from jsonschema import FormatChecker

    checker = FormatChecker(["uuid"])

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.match(value):
            return False
        dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # month 13 etc.
        return True

    @checker.checks("uri", raises=ValueError)
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return (
            bool(_SCHEME.match(parts.scheme))
            and bool(parts.netloc or parts.path)
            and not any(c.isspace() for c in value)
        )

    return checker


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    schema = json.loads(CORE_SCHEMA.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], DRAFT202012.create_resource(schema)
    )
    return Draft202012Validator(
        {"$ref": f"{schema['$id']}#/$defs/RunEvent"},
        registry=registry,
        format_checker=_formats(),
    )


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


def _refuse(where: str, problem: str, value: Any = None) -> DeclarationError:
    msg = f"the lineage event is not a valid OpenLineage RunEvent: {problem}"
    return DeclarationError(msg, field=where or None, value=value)


def _walk(payload: Any) -> None:
    """No NaN or Infinity, no nesting beyond MAX_DEPTH; iterative, so no input can make it
    recurse."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(payload, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            raise _refuse(_path(path), f"{node} is not a JSON number (JSON has no NaN or "
                          "Infinity): send a number, a string or null")
        children: Any = (
            node.items() if isinstance(node, Mapping)
            else enumerate(node) if isinstance(node, list) else ()
        )
        for key, child in children:
            if isinstance(child, Mapping | list) and len(path) + 1 >= MAX_DEPTH:
                raise _refuse(_path((*path, key)), f"it is nested deeper than {MAX_DEPTH} "
                              "levels")
            stack.append((child, (*path, key)))


def _message(error: ValidationError) -> str:
    if error.validator == "format":
        return f"{_quote(error.instance)} is not a valid {error.validator_value}"
    if error.validator == "enum":
        values: Any = error.validator_value
        allowed = ", ".join(str(v) for v in values)
        return f"{_quote(error.instance)} is not one of {allowed}"
    if error.validator == "type":
        return f"{_quote(error.instance)} is not of type {error.validator_value}"
    return error.message if len(error.message) <= 2 * _QUOTE else error.message[:159] + "…"


def validate_run_event(payload: Any) -> dict[str, Any]:
    """`payload` as a dict when it is a valid RunEvent of the spec; otherwise a DeclarationError
    naming the first field at fault, in one sentence (nothing is stored by the caller)."""
    if not isinstance(payload, Mapping):
        msg = (
            "the lineage event must be a JSON object (an OpenLineage RunEvent), not "
            f"{type(payload).__name__}"
        )
        raise DeclarationError(msg, value=type(payload).__name__)
    if "run" not in payload and ("dataset" in payload or "job" in payload):
        msg = (
            "only OpenLineage RunEvents are accepted (this looks like a DatasetEvent or a "
            "JobEvent, which has no run to file it under)"
        )
        raise DeclarationError(msg, field="run")
    _walk(payload)
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(payload))
    # The spec wraps each facet map in a one-branch anyOf; name the facet at fault, not the map.
    while error is not None and error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    if error is not None:
        where = _path(error.absolute_path)
        raise _refuse(where, _message(error), error.instance if where else None)
    for where in ("job.namespace", "job.name"):
        value = payload["job"]["namespace" if where == "job.namespace" else "name"]
        if not value.strip():
            raise _refuse(where, "it is empty")
    return dict(payload)


def _at(payload: Mapping[str, Any], *path: str) -> Any:
    node: Any = payload
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


# Where a RunEvent names a job (its own, its parent's, the root of its hierarchy) and a run.
_JOBS = (("job",), ("run", "facets", "parent", "job"), ("run", "facets", "parent", "root", "job"))
_RUNS = (("run",), ("run", "facets", "parent", "run"), ("run", "facets", "parent", "root", "run"))


def run_ids(payload: Mapping[str, Any]) -> set[str]:
    """Every run id the event names (its run, its parent, its root), as sent and in the
    canonical lowercase form govex stores."""
    found: set[str] = set()
    for path in _RUNS:
        value = _at(payload, *path, "runId")
        if isinstance(value, str) and value:
            found.add(value)
            try:
                found.add(str(uuid.UUID(value)))
            except ValueError:
                continue
    return found


def _producer_base() -> str:
    """govex's producer URI up to the version: every version's events claim it."""
    return producer().split("/tree/", 1)[0] + "/"


def govex_claims(payload: Mapping[str, Any]) -> str | None:
    """Where the event speaks for govex (a job in govex's namespace, govex as producer), or
    None. Such events come from govex alone, which never sends them over HTTP."""
    for path in _JOBS:
        namespace = _at(payload, *path, "namespace")
        if isinstance(namespace, str) and namespace.strip().casefold() == JOB_NAMESPACE:
            return f"{'.'.join(path)}.namespace '{namespace}'"
    claimed = payload.get("producer")
    if isinstance(claimed, str) and claimed.startswith(_producer_base()):
        return f"producer '{claimed}'"
    return None
