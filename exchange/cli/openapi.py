"""`govex openapi [--output FILE]`: the REST API's OpenAPI document, as the app builds it.

The app is built on a throwaway in-memory SQLite store: the document depends only on the
routes and their models, never on what a store holds, so no `GOVEX_DB_URL` is read and nothing
is written anywhere but FILE. Keys are sorted and the indent is 2, so the output is stable and
`docs/openapi.json` diffs cleanly in review.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from govex.errors import DeclarationError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "openapi",
        help="print or write the REST API's OpenAPI document",
        description="Print the OpenAPI document of the REST API (the one `govex serve` "
        "answers at /openapi.json) as JSON with sorted keys, or write it to FILE. "
        "No metadata store is opened.",
    )
    p.add_argument("--output", metavar="FILE", help="write the document to FILE, not stdout")
    p.set_defaults(handler=run)


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built on a throwaway in-memory store."""
    # fastapi and the web app load here only: keeps `govex --help` fast.
    from exchange.store import create_store_engine
    from exchange.web import create_app

    engine = create_store_engine("sqlite://")
    try:
        with tempfile.TemporaryDirectory(prefix="govex-openapi-") as docs:
            document: dict[str, Any] = create_app(engine, docs_dir=Path(docs)).openapi()
    finally:
        engine.dispose()
    return document


def render(document: dict[str, Any]) -> str:
    """The document as text: sorted keys, indent 2, UTF-8 characters kept, trailing newline."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def run(args: argparse.Namespace) -> int:
    text = render(openapi_document())
    if args.output is None:
        sys.stdout.write(text)
        return 0
    output = Path(args.output)
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        msg = f"cannot write the OpenAPI document ({error.strerror})"
        raise DeclarationError(msg, file=str(output), field="--output") from error
    print(f"wrote the OpenAPI document to {output}", file=sys.stderr)
    return 0
