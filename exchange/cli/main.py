"""The `govex` command line: parse, dispatch to a command module, map errors to exit codes.

Exit codes: 0 success, 1 failed run, 2 bad input. Every error is one sentence on stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from exchange.cli import (
    apply,
    audit,
    bench,
    broker,
    catalog,
    check,
    contract,
    dags,
    db,
    demo,
    disclosure,
    dispute,
    heap,
    ingest,
    init,
    leak,
    lineage,
    notify,
    openapi,
    provenance,
    quality,
    reference,
    request,
    run,
    serve,
    subscription,
    token,
    trace,
    usage,
)
from govex.errors import DeclarationErrors, GovexError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govex",
        description="govex: government data sharing exchange (catalog, contracts, exchange runs, "
        "quality gates, lineage).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        db, apply, catalog, run, ingest, quality, trace, lineage, audit, dispute, serve, openapi,
        token, broker, demo, bench, init, contract, reference, check, request, subscription,
        notify, usage, disclosure, leak, dags, provenance,
    ):
        module.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `docker stop`) unwinds the command like Ctrl-C: children such as the
    embedded broker are stopped and open transactions rolled back, instead of the process
    vanishing with its broker left running on the port."""


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise Terminated


def _reader_went_away() -> int:
    """`govex … | head`: the reader closed the pipe. Stop quietly with the shell's SIGPIPE
    status (128 + 13) instead of a traceback, and point stdout at /dev/null so that the
    interpreter's final flush has nowhere to fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. `argv` None: this process's own command line (`govex …`, `python -m
    exchange.cli …`), which ends when `main` returns; callers in a process that goes on (the
    tests) pass `argv`."""
    with heap.command(ends_process=argv is None):
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not in the interpreter's last flush
    except BrokenPipeError:
        return _reader_went_away()
    except DeclarationErrors as errors:
        for error in errors.errors:
            print(f"error: {error.render()}", file=sys.stderr)
        return errors.exit_code
    except GovexError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return code

