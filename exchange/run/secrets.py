"""The master secret behind keyed masking (`hash`).

GOVEX_SECRET_KEY wins when set (production: one value shared by every worker). Otherwise a
random key is generated once and kept in the metadata store, which every worker already shares;
it never appears in a target system.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from exchange.run.bookkeeping import secrets as secrets_table
from govex.settings import Settings, load_settings

_NAME = "masking_master_key"


_SELECT = sa.select(secrets_table.c.value).where(secrets_table.c.name == _NAME)


def configured_master_key(settings: Settings | None = None) -> bytes | None:
    """GOVEX_SECRET_KEY as the master key (its SHA-256), or None when it is not set."""
    configured = (settings or load_settings()).secret_key
    if configured is None:
        return None
    return hashlib.sha256(configured.get_secret_value().encode()).digest()


def find_master_key(store: sa.Engine) -> bytes | None:
    """The master key if there is one yet, creating nothing (for commands that change nothing,
    such as `govex apply --dry-run`)."""
    configured = configured_master_key()
    if configured is not None:
        return configured
    with store.connect() as conn:
        value = conn.execute(_SELECT).scalar_one_or_none()
    return None if value is None else bytes.fromhex(value)


def master_key(store: sa.Engine) -> bytes:
    """The master key, generated and stored by the first run that needs it. Runs starting at
    once on a new store (several workers) may each generate one: the first stored wins and
    the others read it back, so that every worker masks with the same key."""
    found = find_master_key(store)
    if found is not None:
        return found
    try:
        with store.begin() as conn:
            conn.execute(sa.insert(secrets_table), {
                "name": _NAME, "value": secrets.token_hex(32),
                "created_at": dt.datetime.now(dt.UTC)})
    except sa.exc.IntegrityError:
        pass  # another run stored its key first: that one is the key
    with store.connect() as conn:
        return bytes.fromhex(conn.execute(_SELECT).scalar_one())
