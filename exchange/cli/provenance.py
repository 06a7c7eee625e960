"""`govex provenance maintain [--retention DURATION] [--dry-run] [--json]`: keep provenance's
monthly partitions created ahead, sealed once their month ended, and within retention, and the
verification records within the same retention (`records.maintain_provenance`; run it daily,
e.g. from cron or an Airflow DAG)."""

from __future__ import annotations

import argparse

from exchange.cli.output import print_json, table
from govex.durations import duration_parts


def _retention(text: str) -> str:
    parts = duration_parts(text)
    if parts is None or not any(parts.values()):
        msg = f"must be an ISO-8601 duration longer than zero, such as P3Y or P18M, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "provenance", help="provenance storage: monthly partitions and retention")
    sub = p.add_subparsers(dest="provenance_command", required=True, metavar="COMMAND")
    m = sub.add_parser(
        "maintain",
        help="create next month's partition, seal ended months, drop months past retention",
        description="On a PostgreSQL store: create this month's and next month's provenance "
        "partitions when missing, seal the partitions whose month has ended (index which "
        "records each holds, so that a trace reads only the partitions of its record), and "
        "drop every month that ended longer ago than the retention, after folding the last "
        "delivery of each record and subscription in it into the kept table; each drop is "
        "an audit entry of kind `retention`. On SQLite only retention applies, deleting a "
        "month of rows at a time. The same retention then deletes the verification records "
        "(verify_records) older than it, with one audit entry per run. Without a retention "
        "nothing is dropped.",
    )
    m.add_argument("--retention", type=_retention, metavar="DURATION",
                   help="history to keep, an ISO-8601 duration such as P3Y "
                   "(default: GOVEX_PROVENANCE_RETENTION; unset: keep everything)")
    m.add_argument("--dry-run", action="store_true",
                   help="print what would be created, sealed and dropped; change nothing")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(handler=run_maintain)


def run_maintain(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.store import open_store
    from govex.settings import load_settings

    settings = load_settings()
    retention = args.retention or settings.provenance_retention
    engine = open_store(settings)
    try:
        done = records.maintain_provenance(engine, retention=retention, dry_run=args.dry_run)
    finally:
        engine.dispose()
    if args.json:
        print_json(done.to_json())
        return 0
    would = "would be " if done.dry_run else ""
    print(f"retention: {done.retention or 'none (keep everything)'}"
          + (f", horizon {done.horizon.isoformat()}" if done.horizon else ""))
    if not done.partitioned:
        print("provenance is one table here (SQLite): nothing to create or seal")
    else:
        print(f"partitions {would}created: {', '.join(done.created) or 'none'}")
        print(f"partitions {would}sealed: "
              + (", ".join(n if k is None else f"{n} ({k:,} records)" for n, k in done.sealed)
                 or "none"))
    if not done.dropped:
        print(f"{would}dropped: none")
    else:
        print(f"{would}dropped:")
        table(
            [("  " + d.name, d.starts.isoformat() if d.starts else "-", d.ends.isoformat(),
              "-" if d.rows is None else f"{d.rows:,}",
              "-" if d.kept is None else f"{d.kept:,}")
             for d in done.dropped],
            ["  PARTITION", "FROM", "TO", "DELIVERIES", "LAST KEPT"],
        )
    if done.verifications is not None:
        print(f"verification records {would}removed: {done.verifications.rows:,} "
              f"(verified before {done.verifications.before.isoformat()})")
    return 0
