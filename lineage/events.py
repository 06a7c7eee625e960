"""OpenLineage RunEvents for a govex exchange run, built with openlineage-python's classes.

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
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, Literal, Protocol

from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    DatasetFacet,
    InputDatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    ownership_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.uuid import generate_static_uuid

from lineage.datasets import DatasetName
from lineage.facets import GovexResourceRunFacet, GovexRunCountsRunFacet, GovexSubscriptionRunFacet

if TYPE_CHECKING:
    import catalog

__all__ = [
    "JOB_NAMESPACE",
    "Parent",
    "ParentLike",
    "ResourceInfo",
    "ResourceRun",
    "RunCounts",
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
        return str(generate_static_uuid(instant, f"{run_id}/deliver/{subscription_id}".encode()))
    return str(uuid.uuid5(parent, f"deliver/{subscription_id}"))


# --- builders ------------------------------------------------------------------------------


def run_started(run: ResourceRun, *, event_time: dt.datetime | None = None) -> RunEvent:
    """START of the resource run."""
    return _resource_event(run, RunState.START, event_time)


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
        run, RunState.COMPLETE, event_time, counts=counts, status="success",
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
        run, RunState.FAIL, event_time, counts=counts or RunCounts(),
        status="blocked" if blocked else "failed", delivered=delivered,
        assertions=assertions, metrics=metrics, error=error,
    )


def delivery_started(
    run: ResourceRun, subscription: SubscriptionInfo, *, event_time: dt.datetime | None = None
) -> RunEvent:
    """START of the delivery of `run` to `subscription` (a child run of the resource run)."""
    return _delivery_event(run, subscription, RunState.START, event_time)


def delivery_completed(
    run: ResourceRun,
    subscription: SubscriptionInfo,
    delivered: int,
    *,
    event_time: dt.datetime | None = None,
) -> RunEvent:
    """COMPLETE of a delivery; `delivered` rows were written to the target."""
    return _delivery_event(run, subscription, RunState.COMPLETE, event_time, delivered=delivered)


def delivery_failed(
    run: ResourceRun,
    subscription: SubscriptionInfo,
    error: BaseException | str,
    *,
    event_time: dt.datetime | None = None,
) -> RunEvent:
    """FAIL of a delivery."""
    return _delivery_event(run, subscription, RunState.FAIL, event_time, error=error)


# --- internals -----------------------------------------------------------------------------


def _event_time(when: dt.datetime | None) -> str:
    if when is None:
        return dt.datetime.now(dt.UTC).isoformat()
    if when.tzinfo is None:
        msg = f"event_time {when.isoformat()} has no time zone; govex events use aware times"
        raise ValueError(msg)
    return when.isoformat()


def _resource_event(
    run: ResourceRun,
    event_type: RunState,
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
    facets: dict[str, RunFacet] = _common_run_facets(resource)
    if run.parent is not None:
        facets["parent"] = _parent_facet(Parent.of(run.parent))
    if counts is not None:
        facets["govex_runCounts"] = GovexRunCountsRunFacet(
            read=counts.read, passed=counts.passed, quarantined=counts.quarantined,
            delivered=counts.delivered, status=status, producer=producer(),
        )
    if error is not None:
        facets["errorMessage"] = _error_facet(error)
    outputs = [
        _output(resource, run.source, sub, None if delivered is None else delivered.get(sub.id))
        for sub in run.subscriptions
    ]
    return RunEvent(
        eventType=event_type,
        eventTime=_event_time(event_time),
        run=Run(runId=run.run_id, facets=facets),
        job=_job(
            resource_job_name(resource.code), "EXCHANGE",
            f"Exchange run of {resource.code} ({resource.name}): extract once from the "
            f"provider {resource.provider}, check, deliver to every active subscription.",
        ),
        inputs=[_input(resource, run.source, assertions=assertions, metrics=metrics)],
        outputs=outputs,
        producer=producer(),
    )


def _delivery_event(
    run: ResourceRun,
    subscription: SubscriptionInfo,
    event_type: RunState,
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
    facets["govex_subscription"] = GovexSubscriptionRunFacet(
        id=subscription.id,
        resource=subscription.resource,
        consumer=subscription.consumer,
        purpose=subscription.purpose,
        mode=subscription.mode,
        fields=list(subscription.fields),
        masking={name: subscription.masking_of(name) for name in subscription.fields},
        producer=producer(),
    )
    if error is not None:
        facets["errorMessage"] = _error_facet(error)
    return RunEvent(
        eventType=event_type,
        eventTime=_event_time(event_time),
        run=Run(runId=delivery_run_id(run.run_id, subscription.id), facets=facets),
        job=_job(
            delivery_job_name(resource.code, subscription.id), "DELIVERY",
            f"Delivery of {resource.code} to {subscription.consumer} for subscription "
            f"{subscription.id}: project the approved fields, mask, load ({subscription.mode}).",
        ),
        inputs=[_input(resource, run.source)],
        outputs=[_output(resource, run.source, subscription, delivered)],
        producer=producer(),
    )


def _common_run_facets(resource: ResourceInfo) -> dict[str, RunFacet]:
    return {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=govex_version(),
            name="govex",
            openlineageAdapterVersion=_openlineage_version(),
            producer=producer(),
        ),
        "govex_resource": GovexResourceRunFacet(
            code=resource.code,
            name=resource.name,
            provider=resource.provider,
            contract=resource.contract,
            sharing=resource.sharing,
            classification=resource.classification,
            producer=producer(),
        ),
    }


@cache
def _openlineage_version() -> str:
    try:
        return importlib_metadata.version("openlineage-python")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _parent_facet(parent: Parent) -> parent_run.ParentRunFacet:
    root = None
    if parent.root is not None:
        root = parent_run.Root(
            run=parent_run.RootRun(runId=parent.root.run_id, facets=None),
            job=parent_run.RootJob(
                namespace=parent.root.namespace, name=parent.root.job_name, facets=None
            ),
        )
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent.run_id, facets=None),
        job=parent_run.Job(namespace=parent.namespace, name=parent.job_name, facets=None),
        root=root,
        producer=producer(),
    )


def _error_facet(error: BaseException | str) -> error_message_run.ErrorMessageRunFacet:
    stack = None
    if isinstance(error, BaseException):
        message = str(error) or error.__class__.__name__
        if error.__traceback__ is not None:
            stack = "".join(traceback.format_exception(error))
    else:
        message = error
    return error_message_run.ErrorMessageRunFacet(
        message=message, programmingLanguage="python", stackTrace=stack, producer=producer()
    )


def _job(name: str, job_type: str, description: str) -> Job:
    facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="GOVEX", jobType=job_type, producer=producer()
        ),
        "documentation": documentation_job.DocumentationJobFacet(
            description=description, contentType="text/plain", producer=producer()
        ),
    }
    return Job(namespace=JOB_NAMESPACE, name=name, facets=facets)


def _schema_facet(fields: Sequence[SchemaField]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=f.name, type=f.type, description=f.description, ordinal_position=i,
                fields=None,
            )
            for i, f in enumerate(fields, start=1)
        ],
        producer=producer(),
    )


def _owner(department: str, role: str) -> ownership_dataset.OwnershipDatasetFacet:
    return ownership_dataset.OwnershipDatasetFacet(
        owners=[ownership_dataset.Owner(name=f"department:{department}", type=role)],
        producer=producer(),
    )


def _input(
    resource: ResourceInfo,
    source: DatasetName,
    *,
    assertions: Sequence[Mapping[str, Any]] = (),
    metrics: Mapping[str, Any] | None = None,
) -> InputDataset:
    facets: dict[str, DatasetFacet] = {}
    if resource.fields:
        facets["schema"] = _schema_facet(resource.fields)
    # The provider is the one authoritative source (一数一源): it owns the source dataset.
    facets["ownership"] = _owner(resource.provider, "PROVIDER")
    facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
        description=f"{resource.code} {resource.name}"
        + (f": {resource.description}" if resource.description else ""),
        contentType="text/plain",
        producer=producer(),
    )
    input_facets: dict[str, InputDatasetFacet] = {}
    if assertions:
        input_facets["dataQualityAssertions"] = _assertions_facet(assertions)
    if metrics is not None:
        input_facets["dataQualityMetrics"] = _metrics_facet(metrics)
    return InputDataset(
        namespace=source.namespace, name=source.name, facets=facets, inputFacets=input_facets
    )


def _assertions_facet(
    assertions: Sequence[Mapping[str, Any]],
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=str(a["assertion"]),
                success=bool(a["success"]),
                column=text(a.get("column")) or None,
                severity=text(a.get("severity")),
                name=text(a.get("name")),
                description=text(a.get("description")),
                expected=text(a.get("expected")),
                actual=text(a.get("actual")),
                params=None,
            )
            for a in assertions
        ],
        producer=producer(),
    )


def _metrics_facet(
    metrics: Mapping[str, Any],
) -> data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet:
    module = data_quality_metrics_input_dataset
    columns = {}
    for column, values in (metrics.get("columnMetrics") or {}).items():
        columns[str(column)] = module.ColumnMetrics(
            nullCount=_int_or_none(values.get("nullCount")),
            distinctCount=_int_or_none(values.get("distinctCount")),
            sum=_float_or_none(values.get("sum")),
            count=_float_or_none(values.get("count")),
            min=_float_or_none(values.get("min")),
            max=_float_or_none(values.get("max")),
            quantiles={str(q): float(v) for q, v in values["quantiles"].items()}
            if values.get("quantiles")
            else None,
        )
    return module.DataQualityMetricsInputDatasetFacet(
        columnMetrics=columns,
        rowCount=_int_or_none(metrics.get("rowCount")),
        bytes=_int_or_none(metrics.get("bytes")),
        fileCount=_int_or_none(metrics.get("fileCount")),
        lastUpdated=metrics.get("lastUpdated"),
        producer=producer(),
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
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    module = column_lineage_dataset

    def transformation(function: str) -> module.Transformation:
        if function == "none":
            return module.Transformation(type="DIRECT", subtype="IDENTITY", masking=False)
        return module.Transformation(
            type="DIRECT", subtype="TRANSFORMATION", description=function, masking=True
        )

    def source_field(name: str, function: str) -> module.InputField:
        return module.InputField(
            namespace=source.namespace, name=source.name, field=name,
            transformations=[transformation(function)],
        )

    lineage: dict[str, module.Fields] = {
        name: module.Fields(inputFields=[source_field(name, sub.masking_of(name))])
        for name in sub.fields
        if name in columns
    }
    if GOVEX_KEY_COLUMN in columns and resource.key:
        # The consumer may not see the key: a keyed hash of all key fields identifies the row.
        lineage[GOVEX_KEY_COLUMN] = module.Fields(
            inputFields=[source_field(k, "hash") for k in resource.key]
        )
    dataset = []
    if resource.watermark:
        # Incremental runs pick rows by the watermark column: it shapes the whole output.
        dataset.append(
            module.InputField(
                namespace=source.namespace, name=source.name, field=resource.watermark,
                transformations=[
                    module.Transformation(
                        type="INDIRECT", subtype="FILTER",
                        description="incremental extraction by watermark",
                    )
                ],
            )
        )
    return module.ColumnLineageDatasetFacet(fields=lineage, dataset=dataset, producer=producer())


def _output(
    resource: ResourceInfo,
    source: DatasetName,
    sub: SubscriptionInfo,
    delivered: int | None,
) -> OutputDataset:
    schema = _target_schema(resource, sub)
    facets: dict[str, DatasetFacet] = {
        "schema": _schema_facet(schema),
        # After delivery the receiver is responsible (谁经手谁使用谁管理谁负责).
        "ownership": _owner(sub.consumer, "CONSUMER"),
        "columnLineage": _column_lineage(resource, source, sub, [f.name for f in schema]),
    }
    output_facets: dict[str, OutputDatasetFacet] = {}
    if delivered is not None:
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=delivered, producer=producer()
            )
        )
    return OutputDataset(
        namespace=sub.target.namespace,
        name=sub.target.name,
        facets=facets,
        outputFacets=output_facets,
    )
