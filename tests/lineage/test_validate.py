"""Events from other producers are held to the OpenLineage spec before they are stored, and an
event that speaks for govex's own runs is recognised as such."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openlineage.client.serde import Serde

import lineage
from govex.errors import DeclarationError
from lineage.validate import CORE_SCHEMA, MAX_DEPTH
from tests.lineage.samples import new_run_id, sample_run
from tests.lineage.spec_validation import VENDORED_SPEC

AIRFLOW = "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0"


def foreign_event(run_id: str | None = None) -> dict[str, Any]:
    """A RunEvent as Airflow's OpenLineage provider sends it (facets included)."""
    return {
        "eventType": "START",
        "eventTime": "2026-11-27T08:00:00.123456Z",
        "producer": AIRFLOW,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {
            "runId": run_id or new_run_id(),
            "facets": {
                "nominalTime": {
                    "_producer": AIRFLOW,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/"
                                  "NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
                    "nominalStartTime": "2026-11-27T08:00:00Z",
                },
            },
        },
        "job": {"namespace": "airflow", "name": "govex__PSB-RES-001.extract", "facets": {}},
        "inputs": [{"namespace": "postgres://db:5432", "name": "psb.public.residents",
                    "facets": {}, "inputFacets": {}}],
        "outputs": [],
    }


def test_every_event_govex_builds_passes() -> None:
    """The check is the spec, not stricter: govex's own events (all facets) pass it."""
    run = sample_run()
    sub = run.subscriptions[0]
    for event in (
        lineage.run_started(run), lineage.delivery_started(run, sub),
        lineage.delivery_completed(run, sub, 3),
        lineage.run_completed(run, counts=lineage.RunCounts(3, 3, 0, 3)),
        lineage.run_failed(run, ValueError("boom")),
    ):
        payload = Serde.to_dict(event)
        assert lineage.validate_run_event(payload) == payload


def test_a_foreign_event_passes_and_is_not_a_claim() -> None:
    event = foreign_event()
    assert lineage.validate_run_event(event) == event
    assert lineage.govex_claims(event) is None
    # A namespace that merely starts like govex's is someone else's.
    assert lineage.govex_claims({**event, "job": {"namespace": "govex-test-airflow",
                                                  "name": "x"}}) is None


def _set(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    node: Any = changed
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return changed


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("eventType", "DONE", "eventType"),
        ("eventTime", "yesterday", "eventTime"),
        ("eventTime", "2026-11-27T08:00:00", "eventTime"),  # no time zone
        ("eventTime", "2026-13-27T08:00:00Z", "eventTime"),
        ("eventTime", _DELETE, "eventTime"),
        ("run.runId", "run-42", "run.runId"),
        ("run.runId", 42, "run.runId"),
        ("producer", "not a uri", "producer"),
        ("producer", _DELETE, "producer"),
        ("schemaURL", _DELETE, "schemaURL"),
        ("job.namespace", "", "job.namespace"),
        ("job.name", "   ", "job.name"),
        ("job.name", ["x"], "job.name"),
        ("job", _DELETE, "job"),
        ("run.facets", [], "run.facets"),
        ("run.facets.nominalTime", "soon", "run.facets.nominalTime"),
        ("run.facets.nominalTime._producer", _DELETE, "run.facets.nominalTime"),
        ("job.facets", {"sql": {"query": "select 1"}}, "job.facets.sql"),
        ("inputs", "psb.public.residents", "inputs"),
        ("inputs.0.name", _DELETE, "inputs[0]"),
        ("run.facets.nominalTime.nominalStartTime", math.nan, "nominalStartTime"),
        ("run.facets.nominalTime.rows", math.inf, "rows"),
        ("run.facets.nominalTime.rows", -math.inf, "rows"),
    ],
)
def test_an_event_off_the_spec_is_refused(path: str, value: Any, named: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        lineage.validate_run_event(_set(foreign_event(), path, value))
    message = str(caught.value)
    assert named in message
    assert "\n" not in message
    assert len(message) < 400


def test_nan_is_named_as_not_json() -> None:
    event = _set(foreign_event(), "run.facets.nominalTime.rows", math.nan)
    with pytest.raises(DeclarationError, match="NaN") as caught:
        lineage.validate_run_event(event)
    assert caught.value.field == "run.facets.nominalTime.rows"


def test_only_run_events_and_objects_are_accepted() -> None:
    with pytest.raises(DeclarationError, match="JSON object"):
        lineage.validate_run_event(["not", "an", "event"])
    dataset_event = {"eventTime": "2026-11-27T08:00:00Z", "producer": AIRFLOW,
                     "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
                     "dataset": {"namespace": "x", "name": "y"}}
    with pytest.raises(DeclarationError, match="only OpenLineage RunEvents"):
        lineage.validate_run_event(dataset_event)


def test_deep_nesting_is_refused_without_recursing() -> None:
    deep: Any = "bottom"
    for _ in range(50_000):  # far past Python's recursion limit
        deep = {"d": deep}
    event = _set(foreign_event(), "run.facets.nominalTime.deep", deep)
    with pytest.raises(DeclarationError, match=f"deeper than {MAX_DEPTH}"):
        lineage.validate_run_event(event)


def test_claims_on_govex_are_found() -> None:
    event = foreign_event()
    assert lineage.govex_claims({**event, "job": {"namespace": "govex", "name": "x"}})
    assert lineage.govex_claims({**event, "job": {"namespace": " GOVEX ", "name": "x"}})
    parent = {"_producer": AIRFLOW, "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/"
              "ParentRunFacet.json#/$defs/ParentRunFacet",
              "run": {"runId": new_run_id()}, "job": {"namespace": "govex", "name": "x"}}
    claimed = _set(event, "run.facets.parent", parent)
    assert lineage.govex_claims(claimed) == "run.facets.parent.job.namespace 'govex'"
    assert "producer" in str(lineage.govex_claims({**event, "producer": lineage.producer()}))


def test_run_ids_name_run_parent_and_root_in_stored_form() -> None:
    run_id, parent_id, root_id = new_run_id(), new_run_id(), new_run_id()
    event = foreign_event(run_id.upper())
    event["run"]["facets"]["parent"] = {
        "run": {"runId": parent_id}, "job": {"namespace": "airflow", "name": "dag"},
        "root": {"run": {"runId": root_id}, "job": {"namespace": "airflow", "name": "dag"}},
    }
    assert lineage.run_ids(event) == {run_id.upper(), run_id, parent_id, root_id}


def test_the_product_copy_of_the_spec_is_the_official_one() -> None:
    """The validator ships `lineage/spec/OpenLineage.json` (package data, the product may not
    read tests/); it must be the file the tests validate against."""
    assert CORE_SCHEMA.parent == Path(lineage.__file__).parent / "spec"
    assert CORE_SCHEMA.read_bytes() == (VENDORED_SPEC / "OpenLineage.json").read_bytes()
    assert (CORE_SCHEMA.parent / "LICENSE.txt").read_bytes() == (
        VENDORED_SPEC / "LICENSE").read_bytes()
    assert json.loads(CORE_SCHEMA.read_text(encoding="utf-8"))["$id"].endswith(
        "/2-0-2/OpenLineage.json")


# --- the store's own checks, and reading what older versions stored ---------------------------


def test_the_store_refuses_values_longer_than_its_columns(sqlite_store: sa.Engine) -> None:
    event = _set(foreign_event(), "job.name", "x" * 501)
    with sqlite_store.begin() as conn, pytest.raises(DeclarationError, match="job.name"):
        lineage.store_event(conn, event)
    with sqlite_store.connect() as conn:
        assert lineage.list_events(conn) == []


def test_a_stored_row_that_is_not_an_object_is_left_out(sqlite_store: sa.Engine) -> None:
    run_id = new_run_id()
    with sqlite_store.begin() as conn:
        lineage.store_event(conn, foreign_event(run_id))
        for payload in (["not", "an", "event"], "text", 7):
            conn.execute(sa.insert(lineage.tables.events).values(
                run_id=run_id, job_namespace="airflow", job_name="x", event_type="START",
                event_time=sa.func.current_timestamp(), payload=payload,
                received_at=sa.func.current_timestamp(),
            ))
    with sqlite_store.connect() as conn:
        (kept,) = lineage.list_events(conn, run_id)
    assert kept["run"]["runId"] == run_id


def test_govex_run_ids_are_those_with_events_in_its_namespace(sqlite_store: sa.Engine) -> None:
    run = sample_run()
    sub = run.subscriptions[0]
    delivery = lineage.delivery_run_id(run.run_id, sub.id)
    with sqlite_store.begin() as conn:
        lineage.store_event(conn, Serde.to_dict(lineage.delivery_started(run, sub)))
        foreign = new_run_id()
        lineage.store_event(conn, foreign_event(foreign))
        assert lineage.govex_run_ids(conn, [delivery, foreign, new_run_id()]) == {delivery}
        assert lineage.govex_run_ids(conn, []) == set()
