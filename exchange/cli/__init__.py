"""The `govex` command line: `main` parses and dispatches; one module per command group, each
calling the same functions the web app and the Airflow operators call."""

from exchange.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
