"""`govex bench NAME [ARGS…]`: run the benchmark module `benchmarks.bench_NAME`, installed with
govex, in its own Python process."""

from __future__ import annotations

import argparse
import importlib.util
import pkgutil
import subprocess
import sys

from govex.errors import DeclarationError

PACKAGE = "benchmarks"
PREFIX = "bench_"


def names() -> list[str]:
    """The installed benchmarks' names (`bench_gate` → `gate`), found without importing them."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return []
    return sorted(
        module.name.removeprefix(PREFIX)
        for module in pkgutil.iter_modules(spec.submodule_search_locations)
        if module.name.startswith(PREFIX) and not module.ispkg
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "bench",
        help="run a benchmark (each prints our figure beside a baseline from the same run)",
        description="Run the benchmark NAME (the module benchmarks.bench_NAME) with the "
        "remaining arguments, e.g. `govex bench exchange --rows 1000000`.",
    )
    p.add_argument("name", help="benchmark name: " + ", ".join(names()))
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    known = names()
    if args.name not in known:
        msg = (f"no benchmark named '{args.name}': choose one of "
               f"{', '.join(known) or '(none installed)'}")
        raise DeclarationError(msg, value=args.name)
    # The module name is one of the installed benchmarks, never free text; -P keeps the current
    # directory off sys.path, so a `benchmarks/` folder where govex is called cannot stand in.
    command = [sys.executable, "-P", "-m", f"{PACKAGE}.{PREFIX}{args.name}", *args.args]
    return subprocess.run(command, check=False).returncode  # noqa: S603
