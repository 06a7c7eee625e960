"""Every event the builders emit validates against the official OpenLineage schemas (offline),
facets included, and govex's custom facets against their schemas in the repository; and the
validator rejects broken events (a validator that cannot fail proves nothing)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import lineage
from tests.lineage.samples import new_run_id, resource_info, sample_run, subscription_info
from tests.lineage.spec_validation import GOVEX_SCHEMAS, SpecValidator

Validate = Callable[[Any], dict[str, Any]]

ASSERTIONS = [
    {"assertion": "cn_resident_id", "success": False, "column": "id_no"},
    {"assertion": "required", "success": True, "column": "name"},
    {"assertion": "max_error_rate", "success": True, "severity": "error",
     "expected": "<= 0.02", "actual": 0.01},
]
METRICS = {
    "rowCount": 1000,
    "columnMetrics": {
        "id_no": {"nullCount": 0, "distinctCount": 1000},
        "score": {"nullCount": 3, "min": 0, "max": 99, "sum": 49500, "count": 997,
                  "quantiles": {"0.5": 50}},
    },
}
SOURCES = {
    "postgres": lineage.sql_dataset("postgresql+psycopg://u:pw@db.psb/psb", "residents"),
    "mysql": lineage.sql_dataset("mysql+pymysql://root@amr:3306/amr", "market_entities"),
    "sqlite": lineage.sql_dataset("sqlite:////srv/gsc.db", "residents"),
    "file": lineage.file_dataset("/srv/exports", "residents", "jsonl"),
    "kafka": lineage.kafka_dataset("k1:9092,k2:9092", "govex.ingest.TAX-RES-001"),
}


def all_events(run: lineage.ResourceRun) -> Iterator[tuple[str, lineage.RunEvent]]:
    """Every kind of event the builders make for `run`, with a label."""
    counts = lineage.RunCounts(read=1000, passed=990, quarantined=10, delivered=1980)
    delivered = {s.id: 990 for s in run.subscriptions}
    yield "run_started", lineage.run_started(run)
    yield "run_completed", lineage.run_completed(
        run, counts=counts, delivered=delivered, assertions=ASSERTIONS, metrics=METRICS
    )
    yield "run_completed (bare)", lineage.run_completed(run, counts=lineage.RunCounts())
    try:
        raise RuntimeError("extract failed: connection refused")  # noqa: TRY301
    except RuntimeError as error:
        yield "run_failed (exception)", lineage.run_failed(run, error)
    yield "run_failed (blocked)", lineage.run_failed(
        run, "blocked by the quality gate: 300 of 1000 records (30.0%) failed",
        blocked=True, counts=lineage.RunCounts(1000, 700, 300, 0),
        assertions=ASSERTIONS, metrics=METRICS,
    )
    for sub in run.subscriptions:
        yield f"delivery_started {sub.id}", lineage.delivery_started(run, sub)
        yield f"delivery_completed {sub.id}", lineage.delivery_completed(run, sub, 990)
        yield f"delivery_failed {sub.id}", lineage.delivery_failed(run, sub, OSError("disk full"))


def runs() -> Iterator[tuple[str, lineage.ResourceRun]]:
    yield "airflow parent", sample_run()
    yield "no parent", sample_run(parent=None)
    yield "parent with root", sample_run(
        parent=lineage.Parent(
            "airflow", "govex__PSB-RES-001.deliver", new_run_id(),
            root=lineage.Parent("airflow", "govex__PSB-RES-001", new_run_id()),
        )
    )
    yield "no subscriptions, no contract schema", sample_run(
        subscriptions=(), resource=resource_info(fields=(), description=None, watermark=None)
    )
    yield "hashed key (_govex_key)", sample_run(
        subscriptions=(
            subscription_info(
                masking={"id_no": "mask_id_number"},
                schema=(
                    lineage.SchemaField("id_no", "string"),
                    lineage.SchemaField("name", "string"),
                    lineage.SchemaField("_govex_key", "string"),
                ),
            ),
        )
    )
    for kind, source in SOURCES.items():
        yield f"{kind} source", sample_run(source=source)


CASES = [
    pytest.param(run, label, id=f"{run_label}: {label}")
    for run_label, run in runs()
    for label, _ in all_events(run)
]


@pytest.mark.parametrize(("run", "label"), CASES)
def test_every_built_event_is_valid(
    run: lineage.ResourceRun, label: str, validate_event: Validate
) -> None:
    event = dict(all_events(run))[label]
    payload = validate_event(event)
    # What goes over the wire is what was validated: JSON round trip changes nothing.
    assert validate_event(json.loads(json.dumps(payload))) == payload


def test_the_standard_and_govex_facets_all_appear(validate_event: Validate) -> None:
    """The architecture's facet list is covered (so the validation above is not vacuous)."""
    seen: set[str] = set()
    for _, run in runs():
        for _, event in all_events(run):
            payload = validate_event(event)
            seen |= {f"run.{k}" for k in payload["run"].get("facets", {})}
            seen |= {f"job.{k}" for k in payload["job"].get("facets", {})}
            for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
                for dataset in payload.get(side, []):
                    seen |= {f"{side}.{k}" for k in dataset.get("facets", {})}
                    seen |= {f"{side}.{k}" for k in dataset.get(extra, {})}
    assert seen >= {
        "run.parent", "run.processing_engine", "run.errorMessage",
        "run.govex_resource", "run.govex_subscription", "run.govex_runCounts",
        "job.jobType", "job.documentation",
        "inputs.schema", "inputs.ownership", "inputs.documentation",
        "inputs.dataQualityAssertions", "inputs.dataQualityMetrics",
        "outputs.schema", "outputs.ownership", "outputs.columnLineage",
        "outputs.outputStatistics",
    }


def test_event_shapes(exchange_run: lineage.ResourceRun, validate_event: Validate) -> None:
    run = exchange_run
    start = validate_event(lineage.run_started(run))
    assert start["eventType"] == "START"
    assert start["job"] == {**start["job"], "namespace": "govex", "name": "exchange.PSB-RES-001"}
    assert start["run"]["runId"] == run.run_id
    assert start["producer"] == lineage.producer()
    parent = start["run"]["facets"]["parent"]
    assert parent["job"] == {"namespace": "airflow", "name": "govex__PSB-RES-001.run"}
    assert parent["run"] == {"runId": run.parent[2]}  # type: ignore[index]
    assert [(i["namespace"], i["name"]) for i in start["inputs"]] == [
        ("postgres://db.psb:5432", "psb.public.residents")
    ]
    assert "secret" not in json.dumps(start)
    assert [o["name"] for o in start["outputs"]] == ["main.psb_residents", "hpf.residents"]
    resource = start["run"]["facets"]["govex_resource"]
    assert {k: resource[k] for k in ("code", "provider", "contract", "sharing")} == {
        "code": "PSB-RES-001", "provider": "psb", "contract": "resident_identity@1.0.0",
        "sharing": "conditional",
    }
    assert start["inputs"][0]["facets"]["ownership"]["owners"] == [
        {"name": "department:psb", "type": "PROVIDER"}
    ]
    schema = start["inputs"][0]["facets"]["schema"]["fields"]
    assert [(f["name"], f.get("type")) for f in schema] == [
        ("id_no", "string"), ("name", "string"), ("phone", "string"),
        ("birth_date", "date"), ("score", "integer"), ("updated_at", "timestamp"),
    ]

    done = validate_event(lineage.run_completed(
        run, counts=lineage.RunCounts(1000, 990, 10, 1980),
        delivered={"SUB-GSC-001": 990, "SUB-HPF-001": 990}, assertions=ASSERTIONS,
        metrics=METRICS,
    ))
    assert done["eventType"] == "COMPLETE"
    counts = done["run"]["facets"]["govex_runCounts"]
    assert {k: counts[k] for k in ("read", "passed", "quarantined", "delivered", "status")} == {
        "read": 1000, "passed": 990, "quarantined": 10, "delivered": 1980, "status": "success"
    }
    assert [o["outputFacets"]["outputStatistics"]["rowCount"] for o in done["outputs"]] == [
        990, 990
    ]
    quality = done["inputs"][0]["inputFacets"]
    assert quality["dataQualityAssertions"]["assertions"][0] == {
        "assertion": "cn_resident_id", "success": False, "column": "id_no"
    }
    assert quality["dataQualityMetrics"]["rowCount"] == 1000

    blocked = validate_event(lineage.run_failed(run, "blocked by the quality gate", blocked=True))
    assert blocked["eventType"] == "FAIL"
    assert blocked["run"]["facets"]["govex_runCounts"]["status"] == "blocked"
    assert blocked["run"]["facets"]["errorMessage"]["message"] == "blocked by the quality gate"


def test_column_lineage_names_the_masking(
    exchange_run: lineage.ResourceRun, validate_event: Validate
) -> None:
    gsc, hpf = exchange_run.subscriptions
    event = validate_event(lineage.delivery_completed(exchange_run, gsc, 990))
    (output,) = event["outputs"]
    fields = output["facets"]["columnLineage"]["fields"]
    assert set(fields) == {"id_no", "name", "birth_date"}
    (name_source,) = fields["name"]["inputFields"]
    assert name_source == {
        "namespace": "postgres://db.psb:5432", "name": "psb.public.residents", "field": "name",
        "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION",
                             "description": "mask_name", "masking": True}],
    }
    assert fields["id_no"]["inputFields"][0]["transformations"] == [
        {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
    ]
    # Incremental extraction by watermark shapes the whole output: an INDIRECT FILTER.
    assert output["facets"]["columnLineage"]["dataset"][0]["field"] == "updated_at"
    # Masked fields arrive as text; the _govex_* columns are part of the target schema.
    schema = {f["name"]: f.get("type") for f in output["facets"]["schema"]["fields"]}
    assert schema["birth_date"] == "date"
    assert schema["name"] == "string"
    assert {"_govex_resource", "_govex_run_id", "_govex_delivered_at"} <= set(schema)

    hashed = validate_event(lineage.delivery_started(exchange_run, hpf))
    transformations = hashed["outputs"][0]["facets"]["columnLineage"]["fields"]["phone"]
    assert transformations["inputFields"][0]["transformations"][0]["description"] == "hash"


def test_delivery_is_a_child_run(
    exchange_run: lineage.ResourceRun, validate_event: Validate
) -> None:
    sub = exchange_run.subscriptions[0]
    start = validate_event(lineage.delivery_started(exchange_run, sub))
    done = validate_event(lineage.delivery_completed(exchange_run, sub, 5))
    assert start["job"]["name"] == "exchange.PSB-RES-001.deliver.SUB-GSC-001"
    # The child run id is derived, so separate steps (processes) agree on it.
    assert start["run"]["runId"] == done["run"]["runId"] != exchange_run.run_id
    assert start["run"]["runId"] == lineage.delivery_run_id(exchange_run.run_id, sub.id)
    parent = start["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == exchange_run.run_id
    assert parent["job"] == {"namespace": "govex", "name": "exchange.PSB-RES-001"}
    # The root of the hierarchy is the Airflow run above the resource run.
    assert parent["root"]["job"]["namespace"] == "airflow"
    facet = start["run"]["facets"]["govex_subscription"]
    assert facet["masking"] == {"id_no": "none", "name": "mask_name", "birth_date": "none"}
    assert facet["consumer"] == "gsc"
    assert done["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 5
    assert done["outputs"][0]["facets"]["ownership"]["owners"][0]["name"] == "department:gsc"


def test_delivery_run_ids_sort_with_their_run() -> None:
    run_id = new_run_id()
    a = lineage.delivery_run_id(run_id, "SUB-A")
    assert a == lineage.delivery_run_id(run_id, "SUB-A") != lineage.delivery_run_id(run_id, "B")
    assert a[:13] == run_id[:13]  # same millisecond timestamp: UUIDv7 of the run's instant
    legacy = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"  # not a UUIDv7: UUIDv5 instead
    assert lineage.delivery_run_id(legacy, "SUB-A") == lineage.delivery_run_id(legacy, "SUB-A")


def test_event_time_must_be_aware(exchange_run: lineage.ResourceRun) -> None:
    when = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    assert lineage.run_started(exchange_run, event_time=when)["eventTime"] == when.isoformat()
    with pytest.raises(ValueError, match="no time zone"):
        lineage.run_started(exchange_run, event_time=dt.datetime(2026, 11, 27, 8, 0))  # noqa: DTZ001


# --- the validator can fail ----------------------------------------------------------------


def _break(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `payload` with `path` (dot-separated, ints index lists) set, or deleted when
    `value` is the `DELETE` sentinel."""
    broken = copy.deepcopy(payload)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = broken
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return broken


DELETE = object()
BROKEN = [
    ("run.runId", DELETE, "runId"),
    ("run.runId", "not-a-uuid", "uuid"),
    ("eventTime", "2026-11-27", "date-time"),
    ("eventTime", "2026-11-27T08:00:00", "date-time"),
    ("eventType", "FINISHED", "FINISHED"),
    ("job.name", DELETE, "name"),
    ("producer", "not a uri", "'uri'"),
    ("run.facets.parent.run.runId", "x", "uuid"),
    ("run.facets.parent.job", DELETE, "job"),
    ("run.facets.processing_engine._producer", DELETE, "_producer"),
    ("run.facets.processing_engine.version", DELETE, "version"),
    ("run.facets.errorMessage.programmingLanguage", DELETE, "programmingLanguage"),
    ("run.facets.govex_resource.code", DELETE, "code"),
    ("run.facets.govex_resource.code", "psb res", "does not match"),
    ("run.facets.govex_resource.sharing", "sometimes", "sometimes"),
    ("run.facets.govex_runCounts.read", -1, "minimum"),
    ("run.facets.govex_runCounts.delivered", "many", "integer"),
    ("run.facets.govex_resource._schemaURL",
     "https://github.com/govex/govex/blob/main/lineage/schemas/9-9-9/X.json#/$defs/X",
     "known offline"),
    ("inputs.0.facets.schema.fields.0.name", DELETE, "name"),
    ("inputs.0.inputFacets.dataQualityAssertions.assertions.0.success", "no", "boolean"),
    ("inputs.0.inputFacets.dataQualityMetrics.columnMetrics", DELETE, "columnMetrics"),
    ("outputs.0.facets.columnLineage.fields.name.inputFields.0.field", DELETE, "field"),
    ("outputs.0.facets.columnLineage.fields.name.inputFields.0.transformations.0.masking",
     "yes", "boolean"),
    ("outputs.0.outputFacets.outputStatistics.rowCount", 1.5, "integer"),
    ("outputs.0.facets.ownership.owners.0", {"type": "CONSUMER"}, "name"),
]


@pytest.fixture
def failed_event(exchange_run: lineage.ResourceRun, validate_event: Validate) -> dict[str, Any]:
    return validate_event(lineage.run_failed(
        exchange_run, "boom", counts=lineage.RunCounts(1, 1, 0, 1),
        delivered={"SUB-GSC-001": 1}, assertions=ASSERTIONS, metrics=METRICS,
    ))


@pytest.mark.parametrize(("path", "value", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_event_is_rejected(
    failed_event: dict[str, Any],
    spec_validator: SpecValidator,
    path: str,
    value: Any,
    expected: str,
) -> None:
    broken = _break(failed_event, path, value)
    problems = spec_validator.errors(broken)
    assert problems, f"breaking {path} went unnoticed"
    assert any(expected in p for p in problems), problems
    with pytest.raises(AssertionError, match="not valid"):
        spec_validator.validate(broken)


def test_a_facet_in_the_wrong_place_or_under_the_wrong_key_is_rejected(
    failed_event: dict[str, Any], spec_validator: SpecValidator
) -> None:
    moved = copy.deepcopy(failed_event)
    moved["run"]["facets"]["columnLineage"] = moved["outputs"][0]["facets"]["columnLineage"]
    assert any("a RunFacet is expected" in p for p in spec_validator.errors(moved))

    renamed = copy.deepcopy(failed_event)
    renamed["run"]["facets"]["resource"] = renamed["run"]["facets"].pop("govex_resource")
    problems = spec_validator.errors(renamed)
    assert any("names this facet govex_resource" in p for p in problems), problems
    assert any("<prefix>_<name>" in p for p in problems), problems

    unprefixed = copy.deepcopy(failed_event)
    unprefixed["run"]["facets"]["ours_resource"] = unprefixed["run"]["facets"]["govex_resource"]
    assert any("prefixed govex_" in p for p in spec_validator.errors(unprefixed))


def test_a_facet_without_a_known_schema_is_rejected(
    failed_event: dict[str, Any], spec_validator: SpecValidator
) -> None:
    """Validation is offline: a facet whose schema is not in the registry is an error, not a
    download, and not silently skipped."""
    event = copy.deepcopy(failed_event)
    event["run"]["facets"]["acme_thing"] = {
        "_producer": "https://acme.example", "_schemaURL": "https://acme.example/Thing.json",
    }
    problems = spec_validator.errors(event)
    assert any("acme_thing" in p and "known offline" in p for p in problems), problems


# --- govex's facet schemas -------------------------------------------------------------------


def test_govex_facet_schemas_are_where_their_urls_say(
    spec_validator: SpecValidator, exchange_run: lineage.ResourceRun
) -> None:
    files = sorted(GOVEX_SCHEMAS.rglob("*.json"))
    assert {f.stem for f in files} == {
        "GovexResourceRunFacet", "GovexSubscriptionRunFacet", "GovexRunCountsRunFacet"
    }
    for file in files:
        schema = json.loads(file.read_text(encoding="utf-8"))
        relative = file.relative_to(GOVEX_SCHEMAS).as_posix()
        assert schema["$id"] == f"{lineage.SCHEMA_BASE_URL}/{relative}"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        definition = schema["$defs"][file.stem]
        assert definition["allOf"][0] == {
            "$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"
        }
        (key,) = schema["properties"]
        assert key.startswith("govex_")
        assert schema["properties"][key] == {"$ref": f"#/$defs/{file.stem}"}
    built = lineage.delivery_failed(exchange_run, exchange_run.subscriptions[0], "boom")
    built_facets = {
        **built["run"]["facets"],
        **lineage.run_completed(exchange_run, counts=lineage.RunCounts())["run"]["facets"],
    }
    assert {f.stem for f in files} == set(lineage.GOVEX_FACETS.values())
    for key, facet_class in lineage.GOVEX_FACETS.items():
        url = built_facets[key]["_schemaURL"]
        assert url == lineage.schema_url(facet_class)
        base = url.partition("#")[0]
        assert base in spec_validator.schemas
        assert (GOVEX_SCHEMAS / base.removeprefix(lineage.SCHEMA_BASE_URL + "/")).is_file()


def test_govex_facet_schemas_ship_with_the_package() -> None:
    """pyproject's package data takes `*.json` of every package directory."""
    assert Path(lineage.__file__).parent / "schemas" == lineage.SCHEMA_DIR
    assert (lineage.SCHEMA_DIR / "1-0-0" / "GovexResourceRunFacet.json").is_file()


def test_the_copy_of_the_official_schemas_matches_shared() -> None:
    """Events are validated against `shared/openlineage-spec` when it sits beside the
    repository, else against the copy in tests/lineage: the copy must not drift."""
    from tests.lineage.spec_validation import SHARED_SPEC, VENDORED_SPEC

    if not (SHARED_SPEC / "OpenLineage.json").is_file():
        pytest.skip(f"no {SHARED_SPEC} to compare the copy with")

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert files(VENDORED_SPEC) == files(SHARED_SPEC)
