"""`govex bench exchange|validate … `: run a benchmark script from benchmarks/."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from govex.errors import DeclarationError

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "bench",
        help="run a benchmark (each prints our figure beside a baseline from the same run)",
        description="Run benchmarks/bench_NAME.py with the remaining arguments, e.g. "
        "`govex bench exchange --rows 1000000`.",
    )
    p.add_argument("name", help="benchmark name: " + ", ".join(sorted(
        path.stem.removeprefix("bench_") for path in BENCHMARKS.glob("bench_*.py"))))
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    script = BENCHMARKS / f"bench_{args.name}.py"
    if not script.exists():
        msg = f"no benchmark named '{args.name}' (no {script})"
        raise DeclarationError(msg, value=args.name)
    # The script path comes from our own benchmarks/ folder, never from free text.
    command = [sys.executable, str(script), *args.args]
    return subprocess.run(command, check=False).returncode  # noqa: S603
