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
A run that failed or was blocked is not announced again: the next landing (or the resource's
retries, or an operator) starts the run that delivers what waits.

The triggerer needs the same GOVEX_DB_URL as the workers (docker-compose.yml shares it); the
embedded default, a SQLite file relative to the working directory, only suits one machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)

DEFAULT_POKE_INTERVAL = 5.0


def _engine(store_url: str | None) -> Any:
    from exchange.store import create_store_engine
    from govex.settings import load_settings

    return create_store_engine(store_url or load_settings().db_url)


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
        from exchange.run import landing_progress

        announced = 0
        engine = _engine(self.store_url)  # one pool for the watcher's life, not one per poll
        try:
            while True:
                try:
                    landed, delivered = await asyncio.to_thread(
                        landing_progress, engine, self.resource
                    )
                except Exception as error:  # noqa: BLE001 - a store hiccup must not stop it
                    log.warning("landing watcher of %s cannot read the store: %s",
                                self.resource, error)
                else:
                    if landed > max(announced, delivered):
                        announced = landed
                        payload = {"resource": self.resource, "landed_through": landed,
                                   "delivered_through": delivered}
                        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                await asyncio.sleep(self.poke_interval)
        finally:
            engine.dispose()
