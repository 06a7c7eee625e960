"""Airflow schedules from catalog declarations.

A resource DAG runs on, in this order of precedence:

1. an Airflow asset, ``Asset("govex://landing/<CODE>")``, when the resource is fed over Kafka
   (``source.kafka``): its watcher (`landing_trigger.LandingTrigger`) raises the asset event
   when `govex ingest` has landed new records, so the run follows the data instead of a clock;
2. the schedule of one of its subscriptions, when any active subscription declares one: the
   *most frequent* of them (ties broken by the lowest subscription id), because one run of the
   resource delivers to every subscription and the most demanding consumer must be served;
3. the provider's promised ``update_frequency`` (ISO-8601 duration) as a timedelta — or a
   `dateutil.relativedelta` when it counts months or years (P1M is not 30 days).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from dateutil.relativedelta import relativedelta

from govex.durations import duration_parts
from govex.workdays import local_date

# Seconds between runs of Airflow's cron presets; "@once" and friends never repeat.
_PRESETS: dict[str, float] = {
    "@hourly": 3600.0,
    "@daily": 86_400.0,
    "@midnight": 86_400.0,
    "@weekly": 7 * 86_400.0,
    "@monthly": 28 * 86_400.0,  # the shortest month: a lower bound is all ranking needs
    "@quarterly": 90 * 86_400.0,
    "@yearly": 365 * 86_400.0,
    "@annually": 365 * 86_400.0,
    "@once": math.inf,
    "@continuous": 0.0,
}

Schedule = str | dt.timedelta | relativedelta


def parse_duration(text: str) -> dt.timedelta | relativedelta:
    """An ISO-8601 duration (P1D, PT6H, P1M, P1Y2M, P1W) as a timedelta, or a relativedelta
    when it has calendar parts (years, months). Raises ValueError naming the text otherwise."""
    parts = duration_parts(text.strip().upper())
    if parts is None:
        msg = f"'{text}' is not an ISO-8601 duration such as P1D, PT6H or P1M"
        raise ValueError(msg)
    years, months = int(parts.pop("years")), int(parts.pop("months"))
    delta = dt.timedelta(**parts)
    if years or months:
        return relativedelta(years=years, months=months, seconds=delta.total_seconds())
    if delta <= dt.timedelta(0):
        msg = f"'{text}' is a zero duration: a schedule needs a positive interval"
        raise ValueError(msg)
    return delta


def interval_seconds(schedule: str) -> float:
    """Approximate seconds between two runs of an Airflow schedule string (a preset or a cron
    expression), used only to rank schedules by frequency. Unknown text ranks last."""
    text = schedule.strip()
    if text in _PRESETS:
        return _PRESETS[text]
    from croniter import croniter  # Airflow's own cron dependency; only when a cron is declared

    try:
        # The shortest gap over a few fires, from a fixed instant so the ranking is stable.
        it = croniter(text, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        fires = [it.get_next(dt.datetime) for _ in range(4)]
    except (ValueError, KeyError):
        return math.inf
    return float(min((b - a).total_seconds() for a, b in zip(fires, fires[1:], strict=False)))


def _active(declaration: Mapping[str, Any], today: dt.date) -> bool:
    def day(value: Any) -> dt.date | None:
        if value is None or isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value))

    start, end = day(declaration.get("valid_from")), day(declaration.get("valid_until"))
    return (start is None or start <= today) and (end is None or today <= end)


def subscription_schedule(
    subscriptions: Iterable[Mapping[str, Any]], today: dt.date
) -> tuple[str, str] | None:
    """(subscription id, schedule) of the most frequent schedule declared by an active
    subscription (ties: lowest id), or None when no active subscription declares one."""
    declared = sorted(
        (str(s["id"]), str(s["schedule"]))
        for s in subscriptions
        if s.get("schedule") and _active(s, today)
    )
    if not declared:
        return None
    return min(declared, key=lambda item: (interval_seconds(item[1]), item[0]))


def landing_asset_uri(code: str) -> str:
    """The asset a Kafka-fed resource's landing table raises events on."""
    return f"govex://landing/{code}"


def landing_asset(code: str) -> Any:
    """The landing asset of a Kafka-fed resource, watched by a `LandingTrigger` so that the
    triggerer raises its events when records land."""
    from airflow.sdk import Asset, AssetWatcher

    from exchange.airflow.landing_trigger import LandingTrigger

    watcher = AssetWatcher(name=f"govex_landing_{code}", trigger=LandingTrigger(code))
    return Asset(landing_asset_uri(code), watchers=[watcher])


def resource_schedule(
    resource: Mapping[str, Any],
    subscriptions: Iterable[Mapping[str, Any]],
    today: dt.date | None = None,
) -> Any:
    """The `schedule=` value for the resource's DAG (see the module docstring)."""
    source = resource.get("source") or {}
    if source.get("kafka"):
        return landing_asset(str(resource["code"]))
    chosen = subscription_schedule(subscriptions, today or local_date())
    if chosen is not None:
        return chosen[1]
    return parse_duration(str(resource["update_frequency"]))
