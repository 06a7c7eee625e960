"""Schedules from declarations and the error policy, without a store or an Airflow database."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from dateutil.relativedelta import relativedelta

from exchange.airflow.operators import airflow_errors
from exchange.airflow.schedules import (
    interval_seconds,
    parse_duration,
    resource_schedule,
    subscription_schedule,
)
from govex.errors import DataQualityError, DeclarationError, FatalError, TransientError

TODAY = dt.date(2026, 11, 27)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P1D", dt.timedelta(days=1)),
        ("PT6H", dt.timedelta(hours=6)),
        ("PT30M", dt.timedelta(minutes=30)),
        ("P1W", dt.timedelta(weeks=1)),
        ("P1DT12H", dt.timedelta(days=1, hours=12)),
        ("P1M", relativedelta(months=1)),
        ("P1Y", relativedelta(years=1)),
        ("P3M", relativedelta(months=3)),
    ],
)
def test_parse_duration(text: str, expected: object) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "1D", "daily", "P0D", "PT-1H"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_interval_ranking() -> None:
    assert interval_seconds("@hourly") < interval_seconds("0 */6 * * *") < interval_seconds(
        "@daily"
    ) < interval_seconds("@weekly") < interval_seconds("@monthly") < interval_seconds("@once")
    assert interval_seconds("*/15 * * * *") == 900
    assert interval_seconds("not a cron") == float("inf")


def _sub(sub_id: str, schedule: str | None, **extra: object) -> dict:
    return {"id": sub_id, "schedule": schedule, "valid_from": "2026-01-01",
            "valid_until": "2028-12-31", **extra}


def test_most_frequent_subscription_schedule_wins() -> None:
    subs = [_sub("SUB-B", "@weekly"), _sub("SUB-C", "@hourly"), _sub("SUB-A", None)]
    assert subscription_schedule(subs, TODAY) == ("SUB-C", "@hourly")


def test_ties_go_to_the_lowest_id() -> None:
    subs = [_sub("SUB-B", "@daily"), _sub("SUB-A", "0 0 * * *")]
    assert subscription_schedule(subs, TODAY) == ("SUB-A", "0 0 * * *")


def test_inactive_subscriptions_do_not_schedule() -> None:
    subs = [_sub("SUB-OLD", "@hourly", valid_until="2026-06-30"),
            _sub("SUB-LATER", "@hourly", valid_from="2027-01-01")]
    assert subscription_schedule(subs, TODAY) is None
    resource = {"code": "X-RES-1", "source": {"table": "t"}, "update_frequency": "PT6H"}
    assert resource_schedule(resource, subs, TODAY) == dt.timedelta(hours=6)


def test_kafka_resources_follow_their_landing_asset() -> None:
    resource = {"code": "TAX-RES-001", "source": {"kafka": {"topic": "t"}},
                "update_frequency": "P1D"}
    schedule = resource_schedule(resource, [_sub("SUB-A", "@hourly")], TODAY)
    assert isinstance(schedule, Asset)
    assert schedule.uri == "govex://landing/TAX-RES-001"
    [watcher] = schedule.watchers
    assert watcher.trigger.serialize() == (
        "exchange.airflow.landing_trigger.LandingTrigger",
        {"resource": "TAX-RES-001", "poke_interval": 5.0},
    )


@pytest.mark.parametrize(
    "error",
    [DataQualityError("blocked"), DeclarationError("bad", field="f"), FatalError("x"),
     KeyError("unknown")],
)
def test_errors_that_must_not_retry(error: Exception) -> None:
    with pytest.raises(AirflowFailException) as caught, airflow_errors():
        raise error
    assert caught.value.__cause__ is error


@pytest.mark.parametrize("error", [TransientError("lock"), AirflowException("airflow's own")])
def test_errors_that_keep_airflow_semantics(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, airflow_errors():
        raise error
    assert caught.value is error
