"""OpenLineage RunEvents for a govex exchange run, built as the JSON the spec defines.

The events are plain dicts (what the lineage store keeps and a transport sends), built without
openlineage-python: its client package loads every transport (HTTP, Kafka, files, …) when
imported, a fixed cost that every run of the command line paid for four events (issue #16).
The dicts are what openlineage-python's classes serialize to (`Serde.to_dict`): no null values,
each facet with its `_producer` and the `_schemaURL` of the spec version it follows.

Jobs (namespace `govex`):

- `exchange.<RESOURCE_CODE>`: the resource run (extract once, gate). When Airflow drives it,
  its `parent` facet names the Airflow task run.
- `exchange.<RESOURCE_CODE>.deliver.<SUBSCRIPTION_ID>`: one child run per delivery, whose
  `parent` facet names the resource run and whose `root` names the top of the hierarchy.

Facets, and where they go:

| facet                              | on                                                   |
|------------------------------------|------------------------------------------------------|
| run `parent`                       | resource run (Airflow task), delivery (resource run) |
| run `processing_engine`            | every event (govex and its version)                  |
| run `govex_resource`               | every event                                          |
| run `govex_subscription`           | delivery events                                      |
| run `govex_runCounts`              | resource COMPLETE / FAIL                             |
| run `errorMessage`                 | FAIL                                                 |
| job `jobType`, `documentation`     | every event                                          |
| input `schema`, `ownership`, `documentation` | the source, every event                    |
| input `dataQualityAssertions`, `dataQualityMetrics` | the source, resource COMPLETE / FAIL  |
| output `schema`, `ownership`, `columnLineage` | each subscription target                  |
| output `outputStatistics`          | each target, resource COMPLETE / FAIL, delivery COMPLETE |

Inputs are plain data (`ResourceInfo`, `SubscriptionInfo`, quality results as dicts), so the
builder does not depend on the catalog's or the quality package's internals; `from_catalog`
constructors do the mapping for the engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, Literal, Protocol

from lineage.datasets import DatasetName
from lineage.facets import schema_url

if TYPE_CHECKING:
    import catalog

__all__ = [
    "JOB_NAMESPACE",
    "Parent",
    "ParentLike",
    "ResourceInfo",
    "ResourceRun",
    "RunCounts",
    "RunEvent",
    "SchemaField",
    "SubscriptionInfo",
    "delivery_completed",
    "delivery_failed",
    "delivery_job_name",
    "delivery_run_id",
    "delivery_started",
    "govex_version",
    "producer",
    "resource_job_name",
    "run_completed",
    "run_failed",
    "run_started",
    "schema_from_arrow",
    "schema_from_json_schema",
]

JOB_NAMESPACE = "govex"
#: The keyed hash of the record key that stands in for a key the consumer may not see.
GOVEX_KEY_COLUMN = "_govex_key"
#: An OpenLineage RunEvent as JSON.
RunEvent = dict[str, Any]
RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#: The spec version of each official facet the events carry (the `_schemaURL`s of the
#: openlineage-python classes they were first built with).
FACET_VERSIONS = {
    "ProcessingEngineRunFacet": "1-1-1",
    "ParentRunFacet": "1-2-0",
    "ErrorMessageRunFacet": "1-0-1",
    "JobTypeJobFacet": "2-0-4",
    "DocumentationJobFacet": "1-1-0",
    "SchemaDatasetFacet": "1-2-0",
    "OwnershipDatasetFacet": "1-0-1",
    "DocumentationDatasetFacet": "1-1-0",
    "DataQualityAssertionsDatasetFacet": "1-1-0",
    "DataQualityMetricsInputDatasetFacet": "1-0-3",
    "ColumnLineageDatasetFacet": "1-2-0",
    "OutputStatisticsOutputDatasetFacet": "1-0-2",
}

RunStatus = Literal["running", "success", "failed", "blocked"]


@cache
def govex_version() -> str:
    try:
        return importlib_metadata.version("govex")
    except importlib_metadata.PackageNotFoundError:
        return "0.0.0"


@cache
def producer() -> str:
    """The `producer` URI of every govex event and facet: the source tree of this version."""
    return f"https://github.com/govex/govex/tree/v{govex_version()}/lineage"


# --- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaField:
    """One column as the `schema` facet shows it; `type` is the Arrow or JSON type name."""

    name: str
    type: str | None = None
    description: str | None = None


_JSON_FORMATS = {"date": "date", "date-time": "timestamp"}


def schema_from_json_schema(schema: Mapping[str, Any]) -> tuple[SchemaField, ...]:
    """Fields of a contract's JSON Schema in declaration order, typed by JSON type (`date` and
    `timestamp` for the string formats the contracts map to Arrow dates and timestamps)."""
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        declared = prop.get("type")
        types = [declared] if isinstance(declared, str) else list(declared or [])
        concrete = sorted(str(t) for t in types if t != "null")
        type_name: str | None = "|".join(concrete) or (None if not types else "null")
        if concrete == ["string"] and prop.get("format") in _JSON_FORMATS:
            type_name = _JSON_FORMATS[prop["format"]]
        description = prop.get("description")
        fields.append(SchemaField(str(name), type_name, str(description) if description else None))
    return tuple(fields)


def schema_from_arrow(schema: Iterable[Any]) -> tuple[SchemaField, ...]:
    """Fields of a `pyarrow.Schema` (or any iterable of Arrow fields), typed by Arrow type name;
    a field's `description` metadata becomes its description."""
    fields = []
    for arrow_field in schema:
        meta = arrow_field.metadata or {}
        description = meta.get(b"description", meta.get("description"))
        if isinstance(description, bytes):
            description = description.decode("utf-8")
        fields.append(SchemaField(str(arrow_field.name), str(arrow_field.type), description))
    return tuple(fields)


@dataclass(frozen=True)
class ResourceInfo:
    """What the events say about a catalog resource. `fields` is the contract's schema."""

    code: str
    name: str
    provider: str
    contract: str
    sharing: str
    classification: str
    description: str | None = None
    key: tuple[str, ...] = ()
    fields: tuple[SchemaField, ...] = ()
    watermark: str | None = None

    @classmethod
    def from_catalog(
        cls, resource: catalog.Resource, contract_schema: Mapping[str, Any] | None = None
    ) -> ResourceInfo:
        """From a catalog resource and (optionally) its contract's JSON Schema."""
        return cls(
            code=resource.code,
            name=resource.name,
            provider=resource.provider,
            contract=resource.contract,
            sharing=resource.sharing,
            classification=resource.classification,
            description=resource.description,
            key=tuple(resource.key),
            fields=schema_from_json_schema(contract_schema) if contract_schema else (),
            watermark=resource.source.watermark,
        )


@dataclass(frozen=True)
class SubscriptionInfo:
    """What the events say about a subscription and its target.

    `masking` maps a field to its masking function (absent or `none`: delivered as is).
    `schema` is the target table's columns when known (e.g. `schema_from_arrow` of the target
    spec); by default it is the approved fields typed from the resource's contract, masked
    fields as strings, plus the `_govex_*` columns.
    """

    id: str
    resource: str
    consumer: str
    purpose: str
    mode: str
    fields: tuple[str, ...]
    target: DatasetName
    masking: Mapping[str, str] = field(default_factory=dict)
    schema: tuple[SchemaField, ...] | None = None

    @classmethod
    def from_catalog(
        cls,
        subscription: catalog.Subscription,
        target: DatasetName,
        schema: tuple[SchemaField, ...] | None = None,
    ) -> SubscriptionInfo:
        return cls(
            id=subscription.id,
            resource=subscription.resource,
            consumer=subscription.consumer,
            purpose=subscription.purpose,
            mode=subscription.mode,
            fields=tuple(subscription.fields),
            target=target,
            masking=dict(subscription.masking),
            schema=schema,
        )

    def masking_of(self, name: str) -> str:
        return self.masking.get(name) or "none"


class _ParentRunLike(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def job_name(self) -> str: ...
    @property
    def run_id(self) -> str: ...


@dataclass(frozen=True)
class Parent:
    """A run this one was spawned by: `(namespace, job_name, run_id)`, and optionally the root
    of the hierarchy (the Airflow DAG run when the parent is one of its task runs)."""

    namespace: str
    job_name: str
    run_id: str
    root: Parent | None = None

    @classmethod
    def of(cls, value: ParentLike) -> Parent:
        if isinstance(value, Parent):
            return value
        if isinstance(value, tuple):
            namespace, job_name, run_id = value
            return cls(namespace, job_name, run_id)
        return cls(value.namespace, value.job_name, value.run_id)


#: A parent as a `Parent`, a `(namespace, job_name, run_id)` tuple, or any object with those
#: attributes (e.g. `exchange.run.steps.ParentRun`).
ParentLike = Parent | tuple[str, str, str] | _ParentRunLike


@dataclass(frozen=True)
class RunCounts:
    read: int = 0
    passed: int = 0
    quarantined: int = 0
    delivered: int = 0


@dataclass(frozen=True)
class ResourceRun:
    """One exchange run of a resource: everything every event of the run repeats.

    `subscriptions` are the deliveries the run makes (its outputs); `parent` is the Airflow
    task run when inside Airflow.
    """

    run_id: str
    resource: ResourceInfo
    source: DatasetName
    subscriptions: tuple[SubscriptionInfo, ...] = ()
    parent: ParentLike | None = None


# --- names ---------------------------------------------------------------------------------


def resource_job_name(code: str) -> str:
    return f"exchange.{code}"


def delivery_job_name(code: str, subscription_id: str) -> str:
    return f"exchange.{code}.deliver.{subscription_id}"


def delivery_run_id(run_id: str, subscription_id: str) -> str:
    """The run id of a delivery: derived, not stored, so every step (maybe in another process)
    names the same child run. A UUIDv7 with the resource run's timestamp when the resource run
    id is a UUIDv7 (govex's are), so runs sort by time; otherwise a UUIDv5."""
    parent = uuid.UUID(run_id)
    if parent.version == 7:
        instant = dt.datetime.fromtimestamp((parent.int >> 80) / 1000, tz=dt.UTC)
        return str(_static_uuid7(instant, f"{run_id}/deliver/{subscription_id}".encode()))
    return str(uuid.uuid5(parent, f"deliver/{subscription_id}"))


def _static_uuid7(instant: dt.datetime, data: bytes) -> uuid.UUID:
    """openlineage-python's `generate_static_uuid`: a UUIDv7 of `instant` whose random bits are
    the first 76 bits of SHA-1(instant in ISO form + data), so the same input names the same
    run in every process (delivery run ids of runs already stored depend on it)."""
    instant_utc = instant.astimezone(dt.UTC)
    timestamp_ms = int(instant_utc.timestamp() * 1000)
    digest = hashlib.sha1(instant_utc.isoformat().encode() + data).digest()  # noqa: S324
    node = int.from_bytes(digest) >> 84
    value = (timestamp_ms & 0xFFFF_FFFF_FFFF) << 80 | node & 0xFFFF_FFFF_FFFF_FFFF_FFFF
    value = value & ~(0xF000 << 64) | 7 << 76  # version 7
    value = value & ~(0xC000 << 48) | 0x8000 << 48  # RFC 4122 variant
    return uuid.UUID(int=value)


# --- builders ------------------------------------------------------------------------------


def run_started(run: ResourceRun, *, event_time: dt.datetime | None = None) -> RunEvent:
    """START of the resource run."""
    return _resource_event(run, "START", event_time)


def run_completed(
    run: ResourceRun,
    *,
    counts: RunCounts,
    delivered: Mapping[str, int] | None = None,
    assertions: Sequence[Mapping[str, Any]] = (),
    metrics: Mapping[str, Any] | None = None,
    event_time: dt.datetime | None = None,
) -> RunEvent:
    """COMPLETE of the resource run.

    `delivered`: rows per subscription id (→ each target's `outputStatistics`).
    `assertions`: `[{"assertion": "cn_resident_id", "success": False, "column": "id_no"}, …]`
    (also `name`, `severity`, `description`, `expected`, `actual` when known).
    `metrics`: `{"rowCount": 1000, "columnMetrics": {"id_no": {"nullCount": 0, …}}}`.
    """
    return _resource_event(
        run, "COMPLETE", event_time, counts=counts, status="success",
        delivered=delivered, assertions=assertions, metrics=metrics,
    )


def run_failed(
    run: ResourceRun,
    error: BaseException | str,
    *,
    counts: RunCounts | None = None,
    blocked: bool = False,
    delivered: Mapping[str, int] | None = None,
    assertions: Sequence[Mapping[str, Any]] = (),
    metrics: Mapping[str, Any] | None = None,
    event_time: dt.datetime | None = None,
) -> RunEvent:
    """FAIL of the resource run; `blocked=True` when the quality gate stopped delivery."""
    return _resource_event(
        run, "FAIL", event_time, counts=counts or RunCounts(),
        status="blocked" if blocked else "failed", delivered=delivered,
        assertions=assertions, metrics=metrics, error=error,
    )


def delivery_started(
    run: ResourceRun, subscription: SubscriptionInfo, *, event_time: dt.datetime | None = None
) -> RunEvent:
    """START of the delivery of `run` to `subscription` (a child run of the resource run)."""
    return _delivery_event(run, subscription, "START", event_time)


def delivery_completed(
    run: ResourceRun,
    subscription: SubscriptionInfo,
    delivered: int,
    *,
    event_time: dt.datetime | None = None,
) -> RunEvent:
    """COMPLETE of a delivery; `delivered` rows were written to the target."""
    return _delivery_event(run, subscription, "COMPLETE", event_time, delivered=delivered)


def delivery_failed(
    run: ResourceRun,
    subscription: SubscriptionInfo,
    error: BaseException | str,
    *,
    event_time: dt.datetime | None = None,
) -> RunEvent:
    """FAIL of a delivery."""
    return _delivery_event(run, subscription, "FAIL", event_time, error=error)


# --- internals -----------------------------------------------------------------------------

EventType = Literal["START", "COMPLETE", "FAIL"]


def _event_time(when: dt.datetime | None) -> str:
    if when is None:
        return dt.datetime.now(dt.UTC).isoformat()
    if when.tzinfo is None:
        msg = f"event_time {when.isoformat()} has no time zone; govex events use aware times"
        raise ValueError(msg)
    return when.isoformat()


def _without_nulls(value: Any) -> Any:
    """The event as the spec's JSON: no null values (and no null or empty-object list items),
    as openlineage-python serializes its classes."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        items = [_without_nulls(v) for v in value if v is not None]
        return [v for v in items if v != {}]
    return value


def _official(facet_class: str, **fields: Any) -> dict[str, Any]:
    """An official OpenLineage facet: its fields after `_producer` and `_schemaURL`."""
    version = FACET_VERSIONS[facet_class]
    url = f"https://openlineage.io/spec/facets/{version}/{facet_class}.json#/$defs/{facet_class}"
    return {"_producer": producer(), "_schemaURL": url, **fields}


def _govex(facet_class: str, **fields: Any) -> dict[str, Any]:
    """One of govex's own facets (`lineage/schemas`)."""
    return {"_producer": producer(), "_schemaURL": schema_url(facet_class), **fields}


def _event(
    event_type: EventType, event_time: dt.datetime | None, run: dict[str, Any],
    job: dict[str, Any], inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
) -> RunEvent:
    event = {
        "eventTime": _event_time(event_time), "producer": producer(),
        "schemaURL": RUN_EVENT_SCHEMA, "run": run, "job": job, "eventType": event_type,
        "inputs": inputs, "outputs": outputs,
    }
    cleaned: RunEvent = _without_nulls(event)
    return cleaned


def _resource_event(
    run: ResourceRun,
    event_type: EventType,
    event_time: dt.datetime | None,
    *,
    counts: RunCounts | None = None,
    status: RunStatus | None = None,
    delivered: Mapping[str, int] | None = None,
    assertions: Sequence[Mapping[str, Any]] = (),
    metrics: Mapping[str, Any] | None = None,
    error: BaseException | str | None = None,
) -> RunEvent:
    resource = run.resource
    facets = _common_run_facets(resource)
    if run.parent is not None:
        facets["parent"] = _parent_facet(Parent.of(run.parent))
    if counts is not None:
        facets["govex_runCounts"] = _govex(
            "GovexRunCountsRunFacet", read=counts.read, passed=counts.passed,
            quarantined=counts.quarantined, delivered=counts.delivered, status=status,
        )
    if error is not None:
        facets["errorMessage"] = _error_facet(error)
    outputs = [
        _output(resource, run.source, sub, None if delivered is None else delivered.get(sub.id))
        for sub in run.subscriptions
    ]
    return _event(
        event_type, event_time,
        run={"runId": run.run_id, "facets": facets},
        job=_job(
            resource_job_name(resource.code), "EXCHANGE",
            f"Exchange run of {resource.code} ({resource.name}): extract once from the "
            f"provider {resource.provider}, check, deliver to every active subscription.",
        ),
        inputs=[_input(resource, run.source, assertions=assertions, metrics=metrics)],
        outputs=outputs,
    )


def _delivery_event(
    run: ResourceRun,
    subscription: SubscriptionInfo,
    event_type: EventType,
    event_time: dt.datetime | None,
    *,
    delivered: int | None = None,
    error: BaseException | str | None = None,
) -> RunEvent:
    resource = run.resource
    resource_parent = Parent.of(run.parent) if run.parent is not None else None
    # The root of the hierarchy: the top we know of (Airflow DAG run, Airflow task run, or the
    # resource run itself when govex runs on its own).
    root = (
        resource_parent.root or resource_parent
        if resource_parent is not None
        else Parent(JOB_NAMESPACE, resource_job_name(resource.code), run.run_id)
    )
    parent = Parent(JOB_NAMESPACE, resource_job_name(resource.code), run.run_id, root=root)
    facets = _common_run_facets(resource)
    facets["parent"] = _parent_facet(parent)
    facets["govex_subscription"] = _govex(
        "GovexSubscriptionRunFacet",
        id=subscription.id,
        resource=subscription.resource,
        consumer=subscription.consumer,
        purpose=subscription.purpose,
        mode=subscription.mode,
        fields=list(subscription.fields),
        masking={name: subscription.masking_of(name) for name in subscription.fields},
    )
    if error is not None:
        facets["errorMessage"] = _error_facet(error)
    return _event(
        event_type, event_time,
        run={"runId": delivery_run_id(run.run_id, subscription.id), "facets": facets},
        job=_job(
            delivery_job_name(resource.code, subscription.id), "DELIVERY",
            f"Delivery of {resource.code} to {subscription.consumer} for subscription "
            f"{subscription.id}: project the approved fields, mask, load ({subscription.mode}).",
        ),
        inputs=[_input(resource, run.source)],
        outputs=[_output(resource, run.source, subscription, delivered)],
    )


def _common_run_facets(resource: ResourceInfo) -> dict[str, Any]:
    return {
        "processing_engine": _official(
            "ProcessingEngineRunFacet",
            version=govex_version(), name="govex",
            openlineageAdapterVersion=_openlineage_version(),
        ),
        "govex_resource": _govex(
            "GovexResourceRunFacet",
            code=resource.code,
            provider=resource.provider,
            contract=resource.contract,
            sharing=resource.sharing,
            classification=resource.classification,
            name=resource.name,
        ),
    }


@cache
def _openlineage_version() -> str:
    try:
        return importlib_metadata.version("openlineage-python")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _parent_facet(parent: Parent) -> dict[str, Any]:
    root = None
    if parent.root is not None:
        root = {
            "run": {"runId": parent.root.run_id},
            "job": {"namespace": parent.root.namespace, "name": parent.root.job_name},
        }
    return _official(
        "ParentRunFacet",
        run={"runId": parent.run_id},
        job={"namespace": parent.namespace, "name": parent.job_name},
        root=root,
    )


def _error_facet(error: BaseException | str) -> dict[str, Any]:
    stack = None
    if isinstance(error, BaseException):
        message = str(error) or error.__class__.__name__
        if error.__traceback__ is not None:
            stack = "".join(traceback.format_exception(error))
    else:
        message = error
    return _official(
        "ErrorMessageRunFacet", message=message, programmingLanguage="python", stackTrace=stack
    )


def _job(name: str, job_type: str, description: str) -> dict[str, Any]:
    facets = {
        "jobType": _official(
            "JobTypeJobFacet", processingType="BATCH", integration="GOVEX", jobType=job_type
        ),
        "documentation": _official(
            "DocumentationJobFacet", description=description, contentType="text/plain"
        ),
    }
    return {"namespace": JOB_NAMESPACE, "name": name, "facets": facets}


def _schema_facet(fields: Sequence[SchemaField]) -> dict[str, Any]:
    return _official(
        "SchemaDatasetFacet",
        fields=[
            {"name": f.name, "type": f.type, "description": f.description, "ordinal_position": i}
            for i, f in enumerate(fields, start=1)
        ],
    )


def _owner(department: str, role: str) -> dict[str, Any]:
    return _official(
        "OwnershipDatasetFacet", owners=[{"name": f"department:{department}", "type": role}]
    )


def _input(
    resource: ResourceInfo,
    source: DatasetName,
    *,
    assertions: Sequence[Mapping[str, Any]] = (),
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if resource.fields:
        facets["schema"] = _schema_facet(resource.fields)
    # The provider is the one authoritative source (一数一源): it owns the source dataset.
    facets["ownership"] = _owner(resource.provider, "PROVIDER")
    facets["documentation"] = _official(
        "DocumentationDatasetFacet",
        description=f"{resource.code} {resource.name}"
        + (f": {resource.description}" if resource.description else ""),
        contentType="text/plain",
    )
    input_facets: dict[str, Any] = {}
    if assertions:
        input_facets["dataQualityAssertions"] = _assertions_facet(assertions)
    if metrics is not None:
        input_facets["dataQualityMetrics"] = _metrics_facet(metrics)
    return {
        "namespace": source.namespace, "name": source.name, "facets": facets,
        "inputFacets": input_facets,
    }


def _assertions_facet(assertions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return _official(
        "DataQualityAssertionsDatasetFacet",
        assertions=[
            {
                "assertion": str(a["assertion"]),
                "success": bool(a["success"]),
                "column": text(a.get("column")) or None,
                "severity": text(a.get("severity")),
                "name": text(a.get("name")),
                "description": text(a.get("description")),
                "expected": text(a.get("expected")),
                "actual": text(a.get("actual")),
            }
            for a in assertions
        ],
    )


def _metrics_facet(metrics: Mapping[str, Any]) -> dict[str, Any]:
    columns = {}
    for column, values in (metrics.get("columnMetrics") or {}).items():
        columns[str(column)] = {
            "nullCount": _int_or_none(values.get("nullCount")),
            "distinctCount": _int_or_none(values.get("distinctCount")),
            "sum": _float_or_none(values.get("sum")),
            "count": _float_or_none(values.get("count")),
            "min": _float_or_none(values.get("min")),
            "max": _float_or_none(values.get("max")),
            "quantiles": {str(q): float(v) for q, v in values["quantiles"].items()}
            if values.get("quantiles")
            else None,
        }
    return _official(
        "DataQualityMetricsInputDatasetFacet",
        columnMetrics=columns,
        rowCount=_int_or_none(metrics.get("rowCount")),
        bytes=_int_or_none(metrics.get("bytes")),
        fileCount=_int_or_none(metrics.get("fileCount")),
        lastUpdated=metrics.get("lastUpdated"),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _target_schema(resource: ResourceInfo, sub: SubscriptionInfo) -> tuple[SchemaField, ...]:
    if sub.schema is not None:
        return sub.schema
    by_name = {f.name: f for f in resource.fields}
    fields = []
    for name in sub.fields:
        known = by_name.get(name, SchemaField(name))
        masked = sub.masking_of(name) != "none"
        # Masking turns any value into text (see exchange.run.masking.output_type).
        fields.append(SchemaField(name, "string" if masked else known.type, known.description))
    fields += [
        SchemaField("_govex_resource", "string", "code of the resource the row came from"),
        SchemaField("_govex_run_id", "string", "the exchange run that delivered the row"),
        SchemaField("_govex_delivered_at", "timestamp", "when the row was delivered (UTC)"),
    ]
    return tuple(fields)


def _column_lineage(
    resource: ResourceInfo,
    source: DatasetName,
    sub: SubscriptionInfo,
    columns: Sequence[str],
) -> dict[str, Any]:
    def transformation(function: str) -> dict[str, Any]:
        if function == "none":
            return {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
        return {
            "type": "DIRECT", "subtype": "TRANSFORMATION", "description": function,
            "masking": True,
        }

    def source_field(name: str, function: str) -> dict[str, Any]:
        return {
            "namespace": source.namespace, "name": source.name, "field": name,
            "transformations": [transformation(function)],
        }

    lineage: dict[str, Any] = {
        name: {"inputFields": [source_field(name, sub.masking_of(name))]}
        for name in sub.fields
        if name in columns
    }
    if GOVEX_KEY_COLUMN in columns and resource.key:
        # The consumer may not see the key: a keyed hash of all key fields identifies the row.
        lineage[GOVEX_KEY_COLUMN] = {
            "inputFields": [source_field(k, "hash") for k in resource.key]
        }
    dataset = []
    if resource.watermark:
        # Incremental runs pick rows by the watermark column: it shapes the whole output.
        dataset.append({
            "namespace": source.namespace, "name": source.name, "field": resource.watermark,
            "transformations": [{
                "type": "INDIRECT", "subtype": "FILTER",
                "description": "incremental extraction by watermark",
            }],
        })
    return _official("ColumnLineageDatasetFacet", fields=lineage, dataset=dataset)


def _output(
    resource: ResourceInfo,
    source: DatasetName,
    sub: SubscriptionInfo,
    delivered: int | None,
) -> dict[str, Any]:
    schema = _target_schema(resource, sub)
    facets = {
        "schema": _schema_facet(schema),
        # After delivery the receiver is responsible (谁经手谁使用谁管理谁负责).
        "ownership": _owner(sub.consumer, "CONSUMER"),
        "columnLineage": _column_lineage(resource, source, sub, [f.name for f in schema]),
    }
    output_facets: dict[str, Any] = {}
    if delivered is not None:
        output_facets["outputStatistics"] = _official(
            "OutputStatisticsOutputDatasetFacet", rowCount=delivered
        )
    return {
        "namespace": sub.target.namespace, "name": sub.target.name, "facets": facets,
        "outputFacets": output_facets,
    }
