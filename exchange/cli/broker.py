"""`govex broker [--port 9092] [--host 127.0.0.1]`: the embedded Kafka-protocol broker.

Runs Tansu (in-memory storage) in the foreground until Ctrl-C, for development and demos.
"""

from __future__ import annotations

import argparse
import time

from govex.errors import DeclarationError, FatalError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "broker",
        help="run the embedded Kafka-protocol broker for development",
        description="Run an embedded Kafka-protocol broker (Tansu, in-memory storage: "
        "everything is lost when it stops) in the foreground until Ctrl-C. Point govex at it "
        "with GOVEX_KAFKA_BOOTSTRAP.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:  # noqa: PLR2004 - the TCP port range
        msg = f"--port {args.port} is not a TCP port (0-65535)"
        raise DeclarationError(msg, field="--port", value=args.port)
    from exchange.demo import broker as embedded  # loaded only when used: keeps --help fast

    with embedded.EmbeddedBroker(port=args.port or None, host=args.host) as broker:
        try:  # Ctrl-C or SIGTERM from here on is the normal way to stop
            print(f"govex broker: Kafka bootstrap {broker.bootstrap} "
                  f"(Tansu, in-memory storage, pid {broker.pid}; Ctrl-C to stop)", flush=True)
            print(f"export GOVEX_KAFKA_BOOTSTRAP={broker.bootstrap}", flush=True)
            while broker.running():
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("govex broker: stopping", flush=True)
            return 0
        msg = (f"the embedded Kafka broker on {broker.bootstrap} exited unexpectedly; "
               f"its output ends: {broker.log_tail() or '(nothing)'}")
    raise FatalError(msg)
