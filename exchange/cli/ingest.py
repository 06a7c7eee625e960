"""`govex ingest [--resource CODE] [--group NAME] [--session-timeout SECONDS]
[--max-messages N] [--idle-timeout SECONDS] [--from-beginning]`: the Kafka ingestion worker
(see exchange.ingest.worker)."""

from __future__ import annotations

import argparse
import logging
import sys

from exchange.cli.meter import showing_progress
from exchange.cli.output import print_json, table
from govex.errors import DeclarationError
from govex.settings import DEFAULT_INGEST_GROUP, DEFAULT_INGEST_SESSION_TIMEOUT


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="Kafka ingestion worker: land records pushed by vertical systems",
        description="Consume govex.ingest.<CODE> (or the resource's source.kafka.topic) of "
        "every Kafka-fed resource in micro-batches, check envelope, contract and quality gate, "
        "land accepted records in the resource's landing table and send rejected ones to "
        "govex.dlq.<CODE> and quarantine. Consumed offsets are stored in the metadata store "
        "with the landed records, so a restart continues exactly where the last commit ended. "
        "Workers of the same --group split the topics' partitions between them; a worker that "
        "dies hands its partitions to the others. "
        "Bootstrap: GOVEX_KAFKA_BOOTSTRAP, else the resource's kafka connection, else "
        "127.0.0.1:9092.",
    )
    p.add_argument("--resource", metavar="CODE", help="ingest this resource only")
    p.add_argument("--group", metavar="NAME", default=DEFAULT_INGEST_GROUP,
                   help="the Kafka consumer group of this worker: workers of one group split "
                   "the partitions of their topics (default: %(default)s)")
    p.add_argument("--session-timeout", type=float, metavar="SECONDS",
                   default=DEFAULT_INGEST_SESSION_TIMEOUT,
                   help="how long the group waits for a worker that stopped answering before "
                   "its partitions go to the others (default: %(default)g; Kafka brokers "
                   "accept 6 to 1800 unless configured otherwise)")
    p.add_argument("--max-messages", type=int, metavar="N",
                   help="stop after consuming N messages")
    p.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                   help="stop when no message arrived for SECONDS while the worker held its "
                   "partitions (also bounds the retries while the broker or the metadata "
                   "store is unreachable; without it, a minute)")
    p.add_argument("--from-beginning", action="store_true",
                   help="forget the stored offsets and read the topics from the beginning "
                   "(after the broker lost its log, e.g. the embedded broker restarted; "
                   "stop the other workers of the group first); message ids already landed "
                   "are skipped, so nothing lands twice")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.store import open_store
    from govex.settings import load_settings

    if args.max_messages is not None and args.max_messages < 1:
        msg = "must be a positive number of messages"
        raise DeclarationError(msg, field="--max-messages", value=args.max_messages)
    if args.idle_timeout is not None and not args.idle_timeout > 0:
        msg = "must be a positive number of seconds"
        raise DeclarationError(msg, field="--idle-timeout", value=args.idle_timeout)
    if not args.group.strip():
        msg = "must name a consumer group"
        raise DeclarationError(msg, field="--group", value=args.group)
    if not args.session_timeout > 0:
        msg = "must be a positive number of seconds"
        raise DeclarationError(msg, field="--session-timeout", value=args.session_timeout)
    from exchange.ingest import run_ingest  # loaded only when used: keeps `govex --help` fast

    store = open_store(load_settings())
    # kafka-python logs every refused connection at ERROR; the worker reports what matters
    # (an unreachable broker, its retries) in its own words.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with showing_progress():
        stats = run_ingest(
            store, resource=args.resource, max_messages=args.max_messages,
            idle_timeout=args.idle_timeout, progress=progress,
            from_beginning=args.from_beginning, group=args.group,
            session_timeout=args.session_timeout,
        )
    if args.json:
        print_json([s.to_json() for s in stats])
    elif stats:
        table(
            [(s.resource, s.consumed, s.landed, s.rejected, s.duplicates) for s in stats],
            ["RESOURCE", "CONSUMED", "LANDED", "REJECTED", "DUPLICATES"],
        )
    return 0
