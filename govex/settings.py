"""One typed settings object for every `GOVEX_*` environment variable.

Precedence: an explicit command-line option (or function argument) beats the environment, which
beats the defaults below. `load_settings()` reads the environment once and returns the same
frozen object until a `GOVEX_*` variable changes (tests change them; a deployment does not), so
every module reads the same values the same way.

Values that can be malformed are kept as the text the operator wrote and checked where they are
used, by the properties below: a bad `GOVEX_DISPUTE_DAYS` fails the dispute commands with one
sentence naming the variable, not every command; lineage settings stay lenient because lineage
is a side channel (a malformed timeout is counted by the emitter, never fails a transfer).

| variable | meaning | default |
|---|---|---|
| GOVEX_DB_URL | metadata store, a SQLAlchemy URL | sqlite:///.govex/govex.db |
| GOVEX_WORKSPACE | workspace used when a command needs one and none is given | none |
| GOVEX_KAFKA_BOOTSTRAP | Kafka bootstrap servers | the `kafka` connection, else 127.0.0.1:9092 |
| GOVEX_STAGING_URL | where a run's batches wait between steps: path or fsspec URL | the next |
| GOVEX_STAGING_DIR | alias of GOVEX_STAGING_URL, which wins when both are set | .govex/staging |
| GOVEX_STAGING_KMS_KEY | KMS key of staged objects on S3 (SSE aws:kms, not AES256) | none |
| GOVEX_BATCH_ROWS | rows per staged batch | 50000 |
| GOVEX_LEASE_SECONDS | how often a run renews its lease on its resource; it expires after 3 | 60 |
| GOVEX_DATA_DOCS_DIR | where GE Data Docs go (path or URL) | beside the staging URL |
| GOVEX_SECRET_KEY | master secret of keyed masking and `_govex_key` | generated into the store |
| GOVEX_DISPUTE_DAYS | working days a provider has to handle a dispute | 5 |
| GOVEX_REVIEW_DAYS | working days the authority has to review a sharing request | 2 |
| GOVEX_ANSWER_DAYS | working days a provider has to answer a reviewed request | 5 |
| GOVEX_TOKEN | the API token a command acts with when `--token` is not given | none |
| GOVEX_LOOKUP_RATE | record lookups per token a minute (trace, disclosure, dispute) | 60 |
| GOVEX_PROVENANCE_RETENTION | provenance kept, e.g. P3Y (older months dropped) | forever |
| GOVEX_VERIFY_RATE | verification calls per second per subscription (each server process) | 200 |
| GOVEX_VERIFY_KEY_DAILY | answers per key per verify subscription per day (all processes) | 10 |
| GOVEX_LINEAGE_URL | where OpenLineage events also go (HTTP transport) | none: stored only |
| GOVEX_LINEAGE_API_KEY | bearer key for GOVEX_LINEAGE_URL | none |
| GOVEX_LINEAGE_TIMEOUT | seconds per lineage HTTP request | 5 |
| GOVEX_LINEAGE_RETRIES | retries per lineage HTTP request | 2 |
| GOVEX_LINEAGE_DISABLED (or OPENLINEAGE_DISABLED) | lineage kill switch | off |
| GOVEX_NOTIFY_TIMEOUT | seconds per webhook POST | 5 |
| GOVEX_NOTIFY_ATTEMPTS | POSTs of one event to one department before it is marked failed | 8 |
| GOVEX_NOTIFY_BACKOFF | seconds before the first retry; doubled after each failure | 30 |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from govex.durations import duration_parts
from govex.errors import DeclarationError

if TYPE_CHECKING:  # pydantic loads when a secret is read, so `govex --help` never pays for it
    from pydantic import SecretStr

DEFAULT_DB_URL = "sqlite:///.govex/govex.db"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
# `govex ingest --group` and `--session-timeout` (why 10 s: exchange/ingest/group.py).
DEFAULT_INGEST_GROUP = "govex-ingest"
DEFAULT_INGEST_SESSION_TIMEOUT = 10.0
DEFAULT_STAGING_DIR = ".govex/staging"
DEFAULT_DATA_DOCS_DIR = ".govex/data_docs"
DEFAULT_BATCH_ROWS = 50_000
DEFAULT_LEASE_SECONDS = 60
DEFAULT_DISPUTE_DAYS = 5
DEFAULT_REVIEW_DAYS = 2
DEFAULT_ANSWER_DAYS = 5
DEFAULT_LOOKUP_RATE = 60
DEFAULT_VERIFY_RATE = 200
DEFAULT_VERIFY_KEY_DAILY = 10
DEFAULT_VERIFY_NOT_FOUND_DAILY = 1000
DEFAULT_NOTIFY_TIMEOUT = 5
DEFAULT_NOTIFY_ATTEMPTS = 8
DEFAULT_NOTIFY_BACKOFF = 30
LINEAGE_KILL_SWITCHES = ("OPENLINEAGE_DISABLED", "GOVEX_LINEAGE_DISABLED")
_TRUE = {"true", "1", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """The `GOVEX_*` variables (see the module docstring for each one and its default)."""

    db_url: str = DEFAULT_DB_URL
    workspace: str | None = None
    kafka_bootstrap: str | None = None
    staging_dir: str = DEFAULT_STAGING_DIR
    staging_url_text: str | None = None
    staging_kms_key: str | None = None
    batch_rows_text: str | None = None
    lease_seconds_text: str | None = None
    data_docs_dir: str = DEFAULT_DATA_DOCS_DIR
    data_docs_dir_set: bool = False
    secret_key: SecretStr | None = None
    dispute_days_text: str | None = None
    review_days_text: str | None = None
    answer_days_text: str | None = None
    token: SecretStr | None = None
    lookup_rate_text: str | None = None
    provenance_retention_text: str | None = None
    verify_rate_text: str | None = None
    verify_key_daily_text: str | None = None
    verify_not_found_daily_text: str | None = None
    lineage_url: str | None = None
    lineage_api_key: SecretStr | None = None
    lineage_timeout_text: str | None = None
    lineage_retries_text: str | None = None
    lineage_disabled: bool = False
    notify_timeout_text: str | None = None
    notify_attempts_text: str | None = None
    notify_backoff_text: str | None = None

    @property
    def staging_root(self) -> Path:
        """GOVEX_STAGING_DIR as an absolute path (ignores GOVEX_STAGING_URL: see `staging_url`)."""
        return Path(self.staging_dir).resolve()

    @property
    def staging_url(self) -> str:
        """Where staged batches go: GOVEX_STAGING_URL when set (it wins), else
        GOVEX_STAGING_DIR, else `.govex/staging`; a local one as an absolute path, so that every
        step of a run started in another directory means the same place."""
        url = self.staging_url_text or self.staging_dir
        if "://" in url and not url.startswith("file://"):
            return url.rstrip("/")
        return str(Path(url.removeprefix("file://")).resolve())

    @property
    def data_docs_location(self) -> str:
        """Where Data Docs go: GOVEX_DATA_DOCS_DIR when set; else, with staging on object
        storage, the `data_docs` folder beside the staging folder (`s3://b/govex/staging` →
        `s3://b/govex/data_docs`), so that no worker's local disk holds them; else
        `.govex/data_docs`."""
        if self.data_docs_dir_set or "://" not in self.staging_url:
            return self.data_docs_dir
        scheme, _, path = self.staging_url.partition("://")
        parent = path.rpartition("/")[0] or path  # a bucket's root: inside it, not beside
        return f"{scheme}://{parent}/data_docs"

    @property
    def data_docs_cache(self) -> Path:
        """The local folder the web app renders and serves Data Docs from: the Data Docs
        location itself when it is local, else GOVEX_DATA_DOCS_DIR when that is local, else
        `.govex/data_docs` (its cache of the pages of an object-storage location)."""
        for candidate in (self.data_docs_location, self.data_docs_dir):
            if "://" not in candidate:
                return Path(candidate)
        return Path(DEFAULT_DATA_DOCS_DIR)

    @property
    def batch_rows(self) -> int:
        return _positive_int(self.batch_rows_text, DEFAULT_BATCH_ROWS, "GOVEX_BATCH_ROWS", "rows")

    @property
    def lease_seconds(self) -> int:
        return _positive_int(
            self.lease_seconds_text, DEFAULT_LEASE_SECONDS, "GOVEX_LEASE_SECONDS", "seconds"
        )

    @property
    def dispute_days(self) -> int:
        return _positive_int(
            self.dispute_days_text, DEFAULT_DISPUTE_DAYS, "GOVEX_DISPUTE_DAYS", "working days"
        )

    @property
    def review_days(self) -> int:
        return _positive_int(
            self.review_days_text, DEFAULT_REVIEW_DAYS, "GOVEX_REVIEW_DAYS", "working days"
        )

    @property
    def answer_days(self) -> int:
        return _positive_int(
            self.answer_days_text, DEFAULT_ANSWER_DAYS, "GOVEX_ANSWER_DAYS", "working days"
        )

    @property
    def lookup_rate(self) -> int:
        return _positive_int(
            self.lookup_rate_text, DEFAULT_LOOKUP_RATE, "GOVEX_LOOKUP_RATE",
            "requests per minute",
        )

    @property
    def provenance_retention(self) -> str | None:
        """GOVEX_PROVENANCE_RETENTION as written, or None: provenance is kept forever.
        `govex provenance maintain` drops the months that ended longer ago than this."""
        raw = self.provenance_retention_text
        if raw is None:
            return None
        parts = duration_parts(raw)
        if parts is None or not any(parts.values()):
            msg = (
                "must be an ISO-8601 duration longer than zero, such as P3Y or P18M "
                f"(got {raw!r})"
            )
            raise DeclarationError(msg, field="GOVEX_PROVENANCE_RETENTION", value=raw)
        return raw

    @property
    def verify_rate(self) -> int:
        return _positive_int(
            self.verify_rate_text, DEFAULT_VERIFY_RATE, "GOVEX_VERIFY_RATE", "calls per second"
        )

    @property
    def verify_key_daily(self) -> int:
        return _positive_int(
            self.verify_key_daily_text, DEFAULT_VERIFY_KEY_DAILY, "GOVEX_VERIFY_KEY_DAILY",
            "answers per key and day",
        )

    @property
    def verify_not_found_daily(self) -> int:
        return _positive_int(
            self.verify_not_found_daily_text, DEFAULT_VERIFY_NOT_FOUND_DAILY,
            "GOVEX_VERIFY_NOT_FOUND_DAILY", "not-found answers per subscription and day",
        )

    @property
    def notify_timeout(self) -> int:
        return _positive_int(
            self.notify_timeout_text, DEFAULT_NOTIFY_TIMEOUT, "GOVEX_NOTIFY_TIMEOUT", "seconds"
        )

    @property
    def notify_attempts(self) -> int:
        return _positive_int(
            self.notify_attempts_text, DEFAULT_NOTIFY_ATTEMPTS, "GOVEX_NOTIFY_ATTEMPTS",
            "attempts",
        )

    @property
    def notify_backoff(self) -> int:
        """Seconds before the first retry; 0 retries at once (tests)."""
        raw = self.notify_backoff_text
        if raw is None:
            return DEFAULT_NOTIFY_BACKOFF
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0:
            msg = f"must be a whole number of seconds, at least 0 (got {raw!r})"
            raise DeclarationError(msg, field="GOVEX_NOTIFY_BACKOFF", value=raw)
        return value


def _positive_int(raw: str | None, default: int, name: str, unit: str) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a whole number of {unit}, at least 1 (got {raw!r})"
        raise DeclarationError(msg, field=name, value=raw)
    return value


def _secret(raw: str | None) -> SecretStr | None:
    if not raw:
        return None
    from pydantic import SecretStr

    return SecretStr(raw)


def _read(env: Mapping[str, str]) -> Settings:
    def text(name: str) -> str | None:
        return (env.get(name) or "").strip() or None

    return Settings(
        db_url=env.get("GOVEX_DB_URL") or DEFAULT_DB_URL,
        workspace=env.get("GOVEX_WORKSPACE") or None,
        kafka_bootstrap=env.get("GOVEX_KAFKA_BOOTSTRAP") or None,
        staging_dir=env.get("GOVEX_STAGING_DIR") or DEFAULT_STAGING_DIR,
        staging_url_text=text("GOVEX_STAGING_URL"),
        staging_kms_key=text("GOVEX_STAGING_KMS_KEY"),
        batch_rows_text=text("GOVEX_BATCH_ROWS"),
        lease_seconds_text=text("GOVEX_LEASE_SECONDS"),
        data_docs_dir=env.get("GOVEX_DATA_DOCS_DIR") or DEFAULT_DATA_DOCS_DIR,
        data_docs_dir_set=bool(env.get("GOVEX_DATA_DOCS_DIR")),
        secret_key=_secret(env.get("GOVEX_SECRET_KEY")),
        dispute_days_text=env.get("GOVEX_DISPUTE_DAYS"),
        review_days_text=text("GOVEX_REVIEW_DAYS"),
        answer_days_text=text("GOVEX_ANSWER_DAYS"),
        token=_secret(text("GOVEX_TOKEN")),
        lookup_rate_text=text("GOVEX_LOOKUP_RATE"),
        provenance_retention_text=text("GOVEX_PROVENANCE_RETENTION"),
        verify_rate_text=text("GOVEX_VERIFY_RATE"),
        verify_key_daily_text=text("GOVEX_VERIFY_KEY_DAILY"),
        verify_not_found_daily_text=text("GOVEX_VERIFY_NOT_FOUND_DAILY"),
        lineage_url=text("GOVEX_LINEAGE_URL"),
        lineage_api_key=_secret(env.get("GOVEX_LINEAGE_API_KEY")),
        lineage_timeout_text=text("GOVEX_LINEAGE_TIMEOUT"),
        lineage_retries_text=text("GOVEX_LINEAGE_RETRIES"),
        lineage_disabled=any(
            (env.get(name) or "").strip().lower() in _TRUE for name in LINEAGE_KILL_SWITCHES
        ),
        notify_timeout_text=text("GOVEX_NOTIFY_TIMEOUT"),
        notify_attempts_text=text("GOVEX_NOTIFY_ATTEMPTS"),
        notify_backoff_text=text("GOVEX_NOTIFY_BACKOFF"),
    )


_cache: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of `env` (default: this process's environment, read once per change)."""
    global _cache
    if env is not None:
        return _read(env)
    snapshot = tuple(sorted(
        (k, v) for k, v in os.environ.items()
        if k.startswith("GOVEX_") or k in LINEAGE_KILL_SWITCHES
    ))
    if _cache is None or _cache[0] != snapshot:
        _cache = (snapshot, _read(os.environ))
    return _cache[1]
