"""Offline validation of OpenLineage events against the official spec and govex's facet schemas.

Reusable by any test (`from tests.lineage.spec_validation import load_validator`), and exposed
as the `validate_event` fixture in tests/lineage/conftest.py.

What is checked, with nothing fetched over the network (a `referencing.Registry` maps every
schema's `$id` to its local file; an unknown URL is an error, not a download):

1. the event against the core schema (`OpenLineage.json#/$defs/RunEvent`, or the root oneOf);
2. every facet — run, job, dataset, input and output facets — against the `$defs` entry its
   own `_schemaURL` names: official facets against `shared/openlineage-spec/facets/*.json`,
   govex's against `lineage/schemas/<version>/*.json` (which `$ref` the core `RunFacet`);
3. that the facet sits where its schema says it belongs (a run facet extends `RunFacet`, an
   input facet `InputDatasetFacet`, …) and under the key its schema declares (`parent`,
   `columnLineage`, `govex_resource`, …); custom facet keys carry a `<prefix>_` and govex's
   the `govex_` prefix;
4. formats: `uuid`, `date-time` (with a time zone) and `uri`, which jsonschema does not check
   without extra packages.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[2]
SPEC_ENV = "GOVEX_OPENLINEAGE_SPEC"
OFFICIAL_BASE = "https://openlineage.io/spec/"
GOVEX_SCHEMAS = REPO / "lineage" / "schemas"
CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9]*_[A-Za-z][A-Za-z0-9]*$")

# Where each facet map sits in a RunEvent, and the core definition its facets must extend.
_FACET_KINDS = {
    "facets@run": "RunFacet",
    "facets@job": "JobFacet",
    "facets@dataset": "DatasetFacet",
    "inputFacets": "InputDatasetFacet",
    "outputFacets": "OutputDatasetFacet",
}


# The official schemas as the project received them in `shared/openlineage-spec` (Apache-2.0,
# LICENSE inside), for a clone with no `shared/` beside it; `test_spec.py` keeps them equal.
VENDORED_SPEC = Path(__file__).resolve().parent / "openlineage-spec"
SHARED_SPEC = REPO.parent / "shared" / "openlineage-spec"


def spec_dir() -> Path:
    """The official schemas: `$GOVEX_OPENLINEAGE_SPEC`, else `shared/openlineage-spec` beside
    the repository (where CI copies `shared/`), else the copy kept beside this module."""
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured)
    return SHARED_SPEC if (SHARED_SPEC / "OpenLineage.json").is_file() else VENDORED_SPEC


def _format_checker() -> FormatChecker:
    checker = FormatChecker()  # every format jsonschema can check as installed (uuid, …)

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if "T" not in value.upper():
            msg = f"{value!r} has no time part"
            raise ValueError(msg)
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            msg = f"{value!r} has no time zone offset"
            raise ValueError(msg)
        return True

    @checker.checks("uri", raises=ValueError)
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        if not parts.scheme or not (parts.netloc or parts.path):
            msg = f"{value!r} is not an absolute URI"
            raise ValueError(msg)
        return True

    return checker


class SpecValidator:
    """Validates event dicts; `errors` lists every problem, `validate` asserts there are none."""

    def __init__(self, spec: Path, extra: Sequence[Path] = (GOVEX_SCHEMAS,)) -> None:
        core_file = spec / "OpenLineage.json"
        files = [core_file, *sorted((spec / "facets").glob("*.json"))]
        for directory in extra:
            files += sorted(directory.rglob("*.json"))
        self.schemas: dict[str, dict[str, Any]] = {}
        for file in files:
            contents = json.loads(file.read_text(encoding="utf-8"))
            schema_id = contents.get("$id")
            if not schema_id:
                msg = f"{file} has no $id: it cannot be referenced"
                raise ValueError(msg)
            Draft202012Validator.check_schema(contents)
            self.schemas[schema_id] = contents
        self.core_id = json.loads(core_file.read_text(encoding="utf-8"))["$id"]
        self.registry: Registry[Any] = Registry().with_resources(
            (schema_id, DRAFT202012.create_resource(contents))
            for schema_id, contents in self.schemas.items()
        )
        self.format_checker = _format_checker()

    # -- public -------------------------------------------------------------------------------

    def validate(self, event: Any) -> dict[str, Any]:
        """The event as a dict (a RunEvent object is serialized first); AssertionError listing
        every problem when it is not valid."""
        payload = _as_dict(event)
        problems = self.errors(payload)
        if problems:
            raise AssertionError(
                "OpenLineage event is not valid:\n  " + "\n  ".join(problems)
            )
        return payload

    def errors(self, event: Any) -> list[str]:
        payload = _as_dict(event)
        target = f"{self.core_id}#/$defs/RunEvent" if "run" in payload else self.core_id
        problems = self._schema_errors(target, payload, "event")
        url = payload.get("schemaURL")
        if isinstance(url, str) and url.partition("#")[0] != self.core_id:
            problems.append(f"event: schemaURL {url!r} is not the core spec {self.core_id}")
        for where, kind, key, facet in _facets(payload):
            problems += self._facet_errors(where, kind, key, facet)
        return problems

    # -- internals ----------------------------------------------------------------------------

    def _schema_errors(self, ref: str, instance: Any, where: str) -> list[str]:
        validator = Draft202012Validator(
            {"$ref": ref}, registry=self.registry, format_checker=self.format_checker
        )
        try:
            found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        except Exception as error:  # noqa: BLE001 - an unresolvable $ref is a finding too
            return [f"{where}: cannot validate against {ref}: {error}"]
        return [
            f"{where}{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}" for e in found
        ]

    def _facet_errors(self, where: str, kind: str, key: str, facet: Any) -> list[str]:
        place = f"{where}[{key!r}]"
        if not isinstance(facet, Mapping):
            return [f"{place}: a facet must be an object"]
        url = facet.get("_schemaURL")
        if not isinstance(url, str):
            return [f"{place}: has no _schemaURL"]
        base, _, fragment = url.partition("#")
        schema = self.schemas.get(base)
        if schema is None:
            return [f"{place}: _schemaURL {url!r} names no schema known offline"]
        if not fragment.startswith("/$defs/"):
            return [f"{place}: _schemaURL {url!r} must point at a $defs entry"]
        problems = self._schema_errors(url, facet, place)
        definition = schema.get("$defs", {}).get(fragment.removeprefix("/$defs/"))
        if definition is None:
            return [*problems, f"{place}: {url!r} names no definition"]
        extends = {
            str(part["$ref"]).rpartition("/")[2]
            for part in definition.get("allOf", [])
            if isinstance(part, Mapping) and "$ref" in part
        }
        if kind not in extends:
            problems.append(
                f"{place}: a {kind} is expected here, but {url} extends "
                f"{', '.join(sorted(extends)) or 'nothing'}"
            )
        declared = [
            name
            for name, prop in schema.get("properties", {}).items()
            if isinstance(prop, Mapping) and prop.get("$ref") == f"#{fragment}"
        ]
        if declared and key not in declared:
            problems.append(f"{place}: the schema names this facet {' or '.join(declared)}")
        if not base.startswith(OFFICIAL_BASE):
            if not CUSTOM_KEY.match(key):
                problems.append(f"{place}: a custom facet key must be <prefix>_<name>")
            if base.startswith("https://github.com/govex/") and not key.startswith("govex_"):
                problems.append(f"{place}: govex facets are prefixed govex_")
        return problems


def _as_dict(event: Any) -> dict[str, Any]:
    if isinstance(event, Mapping):
        return dict(event)
    from openlineage.client.serde import Serde

    return Serde.to_dict(event)


def _facets(event: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(where, expected kind, key, facet) for every facet of a RunEvent."""

    def each(node: Any, field: str, where: str, kind: str) -> Iterator[tuple[str, str, str, Any]]:
        facets = node.get(field) if isinstance(node, Mapping) else None
        if isinstance(facets, Mapping):
            for key, facet in facets.items():
                yield f"{where}.{field}", _FACET_KINDS[kind], str(key), facet

    yield from each(event.get("run"), "facets", "run", "facets@run")
    yield from each(event.get("job"), "facets", "job", "facets@job")
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for i, dataset in enumerate(event.get(side) or []):
            yield from each(dataset, "facets", f"{side}[{i}]", "facets@dataset")
            yield from each(dataset, extra, f"{side}[{i}]", extra)


def load_validator() -> SpecValidator:
    """The validator, or a skip naming what is missing (a failure under CI=true)."""
    spec = spec_dir()
    if not (spec / "OpenLineage.json").is_file() or not (spec / "facets").is_dir():
        reason = (
            f"the official OpenLineage schemas are not at {spec} (set {SPEC_ENV} or copy "
            "shared/openlineage-spec beside the repository)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true this is a failure, not a skip")
        pytest.skip(reason)
    return SpecValidator(spec)
