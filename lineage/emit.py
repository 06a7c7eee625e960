"""Emitting OpenLineage events: into the lineage store, and over HTTP when configured.

Lineage is a side channel (STYLE.md 11): `emit` never raises. Whatever fails — serializing the
event, storing it, sending it — is logged, counted in process (`emission_failures()`) and
recorded in `lineage_emission_failures` when the store can still take a row; the exchange run
goes on either way.

Settings, read at each call (environment only, so Airflow workers and tests can flip them):

| env var                        | meaning                                               | default |
|--------------------------------|-------------------------------------------------------|---------|
| `OPENLINEAGE_DISABLED`, `GOVEX_LINEAGE_DISABLED` | `true`: emit nothing (kill switch) | off |
| `GOVEX_LINEAGE_URL`            | also send each event over HTTP (Marquez, DataHub, …)  | none    |
| `GOVEX_LINEAGE_API_KEY`        | sent as `Authorization: Bearer <key>`                 | none    |
| `GOVEX_LINEAGE_TIMEOUT`        | seconds per HTTP attempt                              | 5       |
| `GOVEX_LINEAGE_RETRIES`        | HTTP retries after the first attempt                  | 2       |

A bare base URL of `GOVEX_LINEAGE_URL` gets the standard endpoint `api/v1/lineage` appended.
Another govex is no destination: its `POST /api/v1/lineage` refuses events in govex's own
namespace, as forgeries of its runs.
Any other transport (Kafka, composite to Marquez and DataHub, …) is an openlineage-python
`Transport` passed as `transport=`; it is used instead of the HTTP one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from govex.settings import LINEAGE_KILL_SWITCHES, load_settings
from lineage import tables

if TYPE_CHECKING:
    # openlineage-python loads every transport it has when imported: only to send an event on.
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport import Transport

__all__ = [
    "KILL_SWITCHES",
    "LineageSettings",
    "emission_failures",
    "emit",
    "lineage_disabled",
]

log = logging.getLogger(__name__)

KILL_SWITCHES = LINEAGE_KILL_SWITCHES
ENDPOINT = "api/v1/lineage"

# Failures per stage in this process: the count that survives even a store that is down.
_failures: Counter[str] = Counter()


@dataclass(frozen=True)
class LineageSettings:
    disabled: bool = False
    url: str | None = None
    api_key: str | None = None
    timeout: float = 5.0
    retries: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LineageSettings:
        settings = load_settings(env)
        api_key = settings.lineage_api_key
        return cls(
            disabled=settings.lineage_disabled,
            url=settings.lineage_url,
            api_key=api_key.get_secret_value() if api_key else None,
            timeout=float(settings.lineage_timeout_text or 5.0),
            retries=int(settings.lineage_retries_text or 2),
        )


def lineage_disabled(env: Mapping[str, str] | None = None) -> bool:
    """True when a kill switch (`OPENLINEAGE_DISABLED` or `GOVEX_LINEAGE_DISABLED`) is on."""
    return load_settings(env).lineage_disabled


def emission_failures() -> dict[str, int]:
    """Failed emissions in this process, per stage (`serialize`, `store`, `transport`)."""
    return dict(_failures)


def emit(
    store: sa.Engine | sa.Connection,
    event: Mapping[str, Any] | Any,
    *,
    transport: Transport | None = None,
) -> int | None:
    """Store `event` in the lineage store and send it on (see the module docstring).

    With an `Engine` the event is committed in its own transaction. With a `Connection` it is
    written in the caller's transaction, guarded so that a failure cannot spoil the caller's
    work (a SAVEPOINT where the database needs one), and commits with it. Returns the stored
    event's id, or None when disabled or when storing failed. Never raises. `event` is JSON
    (what `lineage.events` builds) or an openlineage-python `RunEvent`.
    """
    try:
        settings = LineageSettings.from_env()
    except ValueError as error:
        _count(store, "settings", error, None)
        settings = LineageSettings(disabled=lineage_disabled())
    if settings.disabled:
        log.debug("OpenLineage emission is disabled by a kill switch")
        return None
    try:
        payload = dict(event) if isinstance(event, Mapping) else _serialized(event)
    except Exception as error:  # noqa: BLE001 - side channel: counted, never raised
        _count(store, "serialize", error, None)
        return None
    stored = _store(store, payload)
    try:
        client = _client(settings, transport)
    except Exception as error:  # noqa: BLE001 - e.g. a malformed GOVEX_LINEAGE_URL
        _count(store, "transport", error, payload)
        client = None
    if client is not None:
        _send(store, client, event, payload)
    return stored


def _serialized(event: Any) -> dict[str, Any]:
    """An openlineage-python event as JSON."""
    from openlineage.client.serde import Serde

    return Serde.to_dict(event)


def _store(store: sa.Engine | sa.Connection, payload: dict[str, Any]) -> int | None:
    try:
        with _writing(store) as conn:
            return tables.store_event(conn, payload)
    except Exception as error:  # noqa: BLE001 - side channel: counted, never raised
        _count(store, "store", error, payload)
        return None


@contextmanager
def _writing(store: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """A connection for one lineage write: with an Engine its own transaction, with a
    Connection the caller's, guarded."""
    if isinstance(store, sa.Engine):
        with store.begin() as conn:
            yield conn
    else:
        with _guarded(store):
            yield store


@contextmanager
def _guarded(conn: sa.Connection) -> Iterator[None]:
    """Run a lineage write inside the caller's transaction without being able to spoil it.

    PostgreSQL and MySQL abort (or may abort) a transaction on a failed statement: the write
    goes in a SAVEPOINT, rolled back alone on failure. SQLite undoes only the failed statement,
    and pysqlite does not open a transaction before a SAVEPOINT (its RELEASE would commit on
    the caller's behalf), so there the write runs directly.
    """
    if conn.dialect.name == "sqlite":
        yield
        return
    with conn.begin_nested():
        yield


def _send(
    store: sa.Engine | sa.Connection,
    client: OpenLineageClient,
    event: Mapping[str, Any] | Any,
    payload: dict[str, Any],
) -> None:
    try:
        if isinstance(event, Mapping):
            # JSON (govex's own events, or one received from another producer): the transports
            # serialize with Serde, which passes a dict through unchanged.
            client.transport.emit(cast(Any, payload))
        else:
            client.emit(event)
    except Exception as error:  # noqa: BLE001 - side channel: counted, never raised
        _count(store, "transport", error, payload)


@lru_cache(maxsize=8)
def _cached_http_client(
    url: str, api_key: str | None, timeout: float, retries: int
) -> OpenLineageClient:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import (
        ApiKeyTokenProvider,
        HttpConfig,
        HttpTransport,
        TokenProvider,
    )

    base, endpoint = _split_endpoint(url)
    auth = ApiKeyTokenProvider({"api_key": api_key}) if api_key else TokenProvider({})
    # Few, quick retries: a lineage backend that is down must not stall a transfer for long.
    retry = {
        "total": retries, "connect": retries, "read": retries, "backoff_factor": 0.2,
        "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["HEAD", "POST"],
    }
    config = HttpConfig(url=base, endpoint=endpoint, timeout=timeout, auth=auth, retry=retry)
    return OpenLineageClient(transport=HttpTransport(config))


def _client(settings: LineageSettings, transport: Transport | None) -> OpenLineageClient | None:
    """The client for an explicit transport, else the (cached) HTTP one, else None."""
    if transport is not None:
        from openlineage.client import OpenLineageClient

        return OpenLineageClient(transport=transport)
    if settings.url is None:
        return None
    return _cached_http_client(settings.url, settings.api_key, settings.timeout, settings.retries)


def _split_endpoint(url: str) -> tuple[str, str]:
    """`http://h:5000` → (`http://h:5000/`, `api/v1/lineage`); a URL that already ends with the
    endpoint is split there, and a path prefix (`http://h/marquez`) is kept."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/" + ENDPOINT):
        path = path[: -len(ENDPOINT)]
    else:
        path += "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), ENDPOINT


def _count(
    store: sa.Engine | sa.Connection,
    stage: str,
    error: BaseException,
    payload: Mapping[str, Any] | None,
) -> None:
    _failures[stage] += 1
    run = payload.get("run") if payload else None
    run_id = run.get("runId") if isinstance(run, Mapping) else None
    log.warning(
        "OpenLineage emission failed at %s for run %s (the transfer goes on): %s",
        stage, run_id, error,
    )
    message = f"{error.__class__.__name__}: {error}"
    try:
        with _writing(store) as conn:
            tables.record_failure(conn, stage, message, payload)
    except Exception as second:  # noqa: BLE001 - side channel: counted, never raised
        log.warning("could not record the lineage emission failure in the store: %s", second)
