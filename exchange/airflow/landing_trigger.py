"""The asset watcher that starts a Kafka-fed resource's DAG when records land.

`govex ingest` lands pushed records in `landing_<code>`; the resource's DAG is scheduled on the
asset `govex://landing/<CODE>`, and this trigger (an Airflow `BaseEventTrigger`, run by the
triggerer as the asset's `AssetWatcher`) raises an asset event whenever the landing table holds
records beyond what the DAG has delivered. So the run follows the data, not a clock, and the
ingest worker needs no Airflow credentials.

Why poll the store: the landing table and the resource watermark live there already, so one
cheap `max(_govex_seq)` query per interval says whether there is work. The trigger keeps
running and fires once per new high-water mark; after a triggerer restart it fires at once if
landed records still wait (nothing is missed). Asset events that pile up before the scheduler
starts a run collapse into that one run, which reads everything landed since its watermark.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)

DEFAULT_POKE_INTERVAL = 5.0


def _progress(code: str, store_url: str | None) -> tuple[int, int]:
    from exchange.landing import landing_progress
    from exchange.settings import load_settings
    from exchange.store import create_store_engine

    engine = create_store_engine(store_url or load_settings().db_url)
    try:
        return landing_progress(engine, code)
    finally:
        engine.dispose()


class LandingTrigger(BaseEventTrigger):
    """Fires when records of resource `resource` land beyond its delivered watermark.

    `store_url` is for tests; in a deployment it stays None and the triggerer's own
    GOVEX_DB_URL is used, which keeps credentials out of the serialized DAG.
    """

    def __init__(
        self,
        resource: str,
        poke_interval: float = DEFAULT_POKE_INTERVAL,
        store_url: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.resource = resource
        self.poke_interval = poke_interval
        self.store_url = store_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"resource": self.resource, "poke_interval": self.poke_interval}
        if self.store_url is not None:
            kwargs["store_url"] = self.store_url
        return f"{__name__}.LandingTrigger", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        announced = 0
        while True:
            try:
                landed, delivered = await asyncio.to_thread(
                    _progress, self.resource, self.store_url
                )
            except Exception as error:  # noqa: BLE001 - a store hiccup must not stop watching
                log.warning("landing watcher of %s cannot read the store: %s", self.resource,
                            error)
            else:
                if landed > max(announced, delivered):
                    announced = landed
                    payload = {"resource": self.resource, "landed_through": landed,
                               "delivered_through": delivered}
                    yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
            await asyncio.sleep(self.poke_interval)
