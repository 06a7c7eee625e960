"""`govex db upgrade`: create or migrate the metadata store."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="manage the metadata store")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = db_sub.add_parser("upgrade", help="create or migrate the metadata store")
    up.set_defaults(handler=run_upgrade)


def run_upgrade(_args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import sqlalchemy as sa

    from exchange.store import create_store_engine, upgrade
    from govex.settings import load_settings

    settings = load_settings()
    engine = create_store_engine(settings.db_url)
    before, after = upgrade(engine)
    where = sa.make_url(settings.db_url).render_as_string(hide_password=True)
    if before == after:
        print(f"metadata store {where} is up to date (revision {after})")
    else:
        print(f"metadata store {where} upgraded from {before or 'empty'} to {after}")
    return 0
