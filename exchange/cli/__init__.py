"""The `govex` command line: `main` parses and dispatches; one module per command group, each
calling the same functions the web app and the Airflow operators call.

`main` and `build_parser` load on first use, so that importing one command module (the tests,
`exchange.cli.output`) does not import every other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exchange.cli.main import build_parser, main

__all__ = ["build_parser", "main"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        msg = f"module 'exchange.cli' has no attribute {name!r}"
        raise AttributeError(msg)
    from exchange.cli.main import build_parser, main

    # The submodule import bound `main` here to the module: the names are the functions.
    globals().update(build_parser=build_parser, main=main)
    return globals()[name]
