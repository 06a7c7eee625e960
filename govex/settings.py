"""One typed settings object read from `GOVEX_*` environment variables.

Precedence: an explicit command-line option beats the environment, which beats the defaults
below. Loaded once per command, then read-only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DB_URL = "sqlite:///.govex/govex.db"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True)
class Settings:
    """`db_url`: metadata store (GOVEX_DB_URL, default SQLite under the working directory).
    `workspace`: workspace used when a command needs one and none is given (GOVEX_WORKSPACE).
    `kafka_bootstrap`: GOVEX_KAFKA_BOOTSTRAP, else the `kafka` connection, else 127.0.0.1:9092.
    `lineage_url`: where OpenLineage events also go (GOVEX_LINEAGE_URL), none by default."""

    db_url: str = DEFAULT_DB_URL
    workspace: str | None = None
    kafka_bootstrap: str | None = None
    lineage_url: str | None = None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    return Settings(
        db_url=env.get("GOVEX_DB_URL") or DEFAULT_DB_URL,
        workspace=env.get("GOVEX_WORKSPACE") or None,
        kafka_bootstrap=env.get("GOVEX_KAFKA_BOOTSTRAP") or None,
        lineage_url=env.get("GOVEX_LINEAGE_URL") or None,
    )
