"""The workspace declarations, exactly as INTERFACES.md shows them, as pydantic models.

`extra="forbid"` everywhere: an unknown key is a typo until proven otherwise. Closed vocabularies
are Literals, and the runtime lists (`SHARING_TYPES`, …) derive from them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from govex.durations import duration_parts

Sharing = Literal["unconditional", "conditional", "none"]
Classification = Literal["L1", "L2", "L3", "L4"]
DeliveryMode = Literal["upsert", "append", "snapshot"]
Delivery = Literal["bulk", "verify"]
MaskingFunction = Literal[
    "mask_name", "mask_id_number", "mask_phone", "mask_address", "hash", "none"
]
FileFormat = Literal["csv", "jsonl"]

SHARING_TYPES: tuple[str, ...] = get_args(Sharing)
CLASSIFICATIONS: tuple[str, ...] = get_args(Classification)
DELIVERY_MODES: tuple[str, ...] = get_args(DeliveryMode)
MASKING_FUNCTIONS: tuple[str, ...] = get_args(MaskingFunction)

RESOURCE_CODE = r"^[A-Z0-9-]+$"
SUBSCRIPTION_ID = r"^[A-Z0-9-]+$"
DEPARTMENT_CODE = r"^[a-z0-9_-]+$"
CONTRACT_REF = r"^[a-z0-9_][a-z0-9_.-]*@\d+\.\d+\.\d+$"
REQUEST_ID = r"^REQ-\d{8}-\d{4,}$"

NonEmpty = Annotated[str, Field(min_length=1)]


class _Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# A model's validator is built with its class. A run validates none of these (departments and
# the files' shapes are what `govex apply` reads), so theirs wait for their first use.
_BUILT_ON_FIRST_USE = ConfigDict(defer_build=True)


class Notify(_Declaration):
    """Where govex POSTs the department's signed events (requests, disputes, overdue items)."""

    model_config = _BUILT_ON_FIRST_USE

    webhook: str = Field(description="an http(s) URL that receives the events")

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = f"webhook '{value}' is not an http:// or https:// URL with a host"
            raise ValueError(msg)
        return value


class Department(_Declaration):
    model_config = _BUILT_ON_FIRST_USE

    code: Annotated[str, Field(pattern=DEPARTMENT_CODE, description="short lowercase code")]
    name: NonEmpty = Field(description="the department's official name")
    contact: str | None = Field(default=None, description="where data questions go")
    notify: Notify | None = Field(
        default=None, description="optional: {webhook: URL} for signed event notifications")

    @model_serializer(mode="wrap")
    def _without_notify(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave `notify` out when not declared, so stores applied before it existed see no
        change in every department."""
        out: dict[str, Any] = handler(self)
        if out.get("notify") is None:
            out.pop("notify", None)
        return out


class DepartmentsFile(_Declaration):
    model_config = _BUILT_ON_FIRST_USE

    departments: list[Department] = Field(default_factory=list)


class Connection(_Declaration):
    """One of: a SQLAlchemy `url`, a `kafka` bootstrap list, or a directory `path` of files."""

    url: str | None = Field(default=None, description="SQLAlchemy URL; ${VAR} allowed")
    kafka: str | None = Field(default=None, description="Kafka bootstrap servers; ${VAR} allowed")
    path: str | None = Field(default=None, description="directory of CSV/JSON Lines files")
    format: FileFormat | None = Field(default=None, description="file format of a path connection")
    owner: Annotated[str | None, Field(pattern=DEPARTMENT_CODE)] = Field(
        default=None,
        description="the department the connection belongs to: a sharing request may deliver "
        "only to a connection of the requesting department",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Connection:
        given = [k for k in ("url", "kafka", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            msg = f"a connection needs exactly one of url, kafka or path (got {given or 'none'})"
            raise ValueError(msg)
        if self.format is not None and self.path is None:
            msg = "format applies only to a path connection"
            raise ValueError(msg)
        return self

    @property
    def kind(self) -> Literal["url", "kafka", "path"]:
        if self.url is not None:
            return "url"
        if self.kafka is not None:
            return "kafka"
        return "path"


class ConnectionsFile(_Declaration):
    model_config = _BUILT_ON_FIRST_USE

    connections: dict[str, Connection] = Field(default_factory=dict)


class KafkaSource(_Declaration):
    topic: str | None = Field(default=None, description="default govex.ingest.<RESOURCE_CODE>")


class Source(_Declaration):
    connection: NonEmpty = Field(description="name of a connection in connections.yaml")
    table: str | None = Field(default=None, description="table (or file name) to read")
    query: str | None = Field(default=None, description="SELECT to read instead of a table")
    kafka: KafkaSource | None = Field(default=None, description="records pushed over Kafka")
    watermark: str | None = Field(default=None, description="column for incremental extraction")
    deleted: str | None = Field(
        default=None,
        description="soft-delete column: a row read with it true (or set, for a timestamp) is "
        "delivered as a delete",
    )
    reconcile: str | None = Field(
        default=None,
        description="ISO-8601 duration: how often the keys delivered are checked against the "
        "source's keys and the ones gone are deleted (`govex run CODE --reconcile`)",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        given = [k for k in ("table", "query", "kafka") if getattr(self, k) is not None]
        if len(given) != 1:
            msg = f"a source needs exactly one of table, query or kafka (got {given or 'none'})"
            raise ValueError(msg)
        # Kafka-fed resources carry their deletes in the envelope (`op: delete`).
        for name in ("deleted", "reconcile"):
            if self.kafka is not None and getattr(self, name) is not None:
                msg = f"'{name}' is for a table or query source; a Kafka source pushes deletes"
                raise ValueError(msg)
        return self

    @field_validator("reconcile")
    @classmethod
    def _reconcile_duration(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = duration_parts(value)
        if parts is None or not any(parts.values()):
            msg = f"'{value}' is not a positive ISO-8601 duration such as P7D or PT12H"
            raise ValueError(msg)
        return value

    @property
    def kind(self) -> Literal["table", "query", "kafka"]:
        if self.table is not None:
            return "table"
        if self.query is not None:
            return "query"
        return "kafka"


class Expectation(_Declaration):
    type: Annotated[str, Field(pattern=r"^Expect[A-Za-z0-9]+$")] = Field(
        description="Great Expectations 1.x expectation class name"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)


class Quality(_Declaration):
    max_error_rate: float = Field(
        default=0.02, ge=0.0, le=1.0, description="a batch with a higher failing share is blocked"
    )
    expectations: list[Expectation] = Field(default_factory=list)


class Resource(_Declaration):
    """A catalog entry (政务数据资源目录条目)."""

    code: Annotated[str, Field(pattern=RESOURCE_CODE)]
    name: NonEmpty
    description: str | None = None
    provider: NonEmpty = Field(description="the department that is the one authoritative source")
    contract: Annotated[str, Field(pattern=CONTRACT_REF, description="contract name @ version")]
    key: list[NonEmpty] = Field(min_length=1, description="record key fields")
    elements: dict[str, NonEmpty] = Field(
        default_factory=dict, description="field -> data element this resource is THE source of"
    )
    source: Source
    sharing: Sharing
    classification: Classification
    update_frequency: str = Field(description="ISO-8601 duration the provider promises")
    quality: Quality = Field(default_factory=Quality)

    @field_validator("update_frequency")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        if duration_parts(value) is None:
            msg = f"'{value}' is not an ISO-8601 duration such as P1D or PT6H"
            raise ValueError(msg)
        return value

    @field_validator("key")
    @classmethod
    def _distinct_key(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            msg = "key fields repeat"
            raise ValueError(msg)
        return value

    @property
    def contract_name(self) -> str:
        return self.contract.split("@", 1)[0]

    @property
    def contract_version(self) -> str:
        return self.contract.split("@", 1)[1]


class Target(_Declaration):
    connection: NonEmpty
    table: NonEmpty


class Subscription(_Declaration):
    """One line of the shared-responsibility checklist (共享责任清单)."""

    id: Annotated[str, Field(pattern=SUBSCRIPTION_ID)]
    resource: NonEmpty
    consumer: NonEmpty = Field(description="the consuming department")
    purpose: NonEmpty = Field(description="why the consumer needs the data")
    fields: list[NonEmpty] = Field(min_length=1, description="approved fields")
    masking: dict[str, str] = Field(default_factory=dict, description="field -> masking function")
    delivery: Delivery = Field(
        default="bulk",
        description="bulk: records delivered to `target`; verify: no copy, the consumer asks "
        "whether values it holds match (POST /api/v1/verify/{code})",
    )
    target: Target | None = Field(default=None, description="where bulk delivery writes")
    mode: DeliveryMode = "upsert"
    schedule: str | None = Field(default=None, description="Airflow schedule")
    valid_from: dt.date
    valid_until: dt.date | None = None
    approved_by: str | None = Field(
        default=None,
        description="no longer enough for conditional data (name the approved request instead); "
        "when given with `request`, the provider",
    )
    request: Annotated[str | None, Field(pattern=REQUEST_ID)] = Field(
        default=None,
        description="the approved sharing request this subscription comes from (REQ-…); "
        "required for a conditional resource",
    )
    contract: Annotated[str | None, Field(pattern=CONTRACT_REF)] = Field(
        default=None,
        description="contract version the consumer built against; pins its major version",
    )
    # None, not False, when absent: stored declarations from before the key stay unchanged.
    retain_after_end: bool | None = Field(
        default=None,
        description="true: keep what was delivered in the target when the subscription ends "
        "(revoked or expired); otherwise the next run purges it",
    )

    @field_validator("fields")
    @classmethod
    def _distinct_fields(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        repeated = [f for f in value if f in seen or seen.add(f)]  # type: ignore[func-returns-value]
        if repeated:
            msg = f"fields repeat: {', '.join(repeated)}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _window(self) -> Subscription:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            msg = f"valid_until {self.valid_until} is before valid_from {self.valid_from}"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _bulk_or_verify(self) -> Subscription:
        """A subscription is bulk or verify, never both: verify gets no copy, so nothing that
        shapes a copy (target, mode, masking, retention) may be declared with it."""
        if self.delivery == "bulk" and self.target is None:
            msg = "a bulk subscription needs a target: {connection, table}"
            raise ValueError(msg)
        if self.delivery == "verify":
            # By value, not by `model_fields_set`: the store keeps declarations dumped with
            # their defaults (masking {}, mode upsert), which must load back.
            defaults: dict[str, Any] = {"target": None, "masking": {}, "mode": "upsert",
                                        "retain_after_end": None}
            given = [name for name, default in defaults.items()
                     if getattr(self, name) != default]
            if given:
                msg = (f"a verify subscription receives no copy, so it cannot declare "
                       f"{', '.join(given)}")
                raise ValueError(msg)
        return self

    @property
    def sink(self) -> Target:
        """The bulk target; asking a verify subscription for one is a programming error."""
        if self.target is None:
            msg = f"subscription {self.id} is a verify subscription: it has no target"
            raise TypeError(msg)
        return self.target
