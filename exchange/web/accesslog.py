"""Access-log lines without record keys.

A record key is often a citizen ID number. The API and the pages take it in POST bodies
(`POST /api/v1/trace`, `POST /trace`), but the older GET forms (`/api/v1/trace/{code}/{key}`,
`/trace/{code}/{key}`, `/trace?resource=…&key=…`, `/api/v1/disclosure/{code}/{key}`) still
carry it in the URL, and a server's access log writes URLs down. `RedactKeys` rewrites every
such URL in an access-log record before any handler sees it: whatever follows
`/trace/{code}/` or `/disclosure/{code}/` becomes `[redacted]`, and so does
the value of a `key` query parameter (`/api/v1/trace/PSB-RES-001/[redacted]`).

`install()` puts the filter on uvicorn's and gunicorn's access loggers. `create_app` calls it,
so it holds for `govex serve` and for the app mounted in Airflow's API server alike (the same
process, the same loggers). Logging configuration applied later (uvicorn's own `dictConfig`)
replaces handlers but keeps logger filters.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote, unquote_plus

#: The loggers that write one line per request: uvicorn's, and gunicorn's (Airflow may run its
#: API server under gunicorn).
ACCESS_LOGGERS = ("uvicorn.access", "gunicorn.access")
REDACTED = "[redacted]"
# In the percent-decoded path: `/trace/` (or `/disclosure/`), then the resource code if another
# segment follows.
_TRACE = re.compile(r"/(?:trace|disclosure)/(?:([^/]+)/)?")
_TOKEN = re.compile(r"\S+")


def redact_target(target: str) -> str:
    """`target` (a path with an optional query, as sent) with record keys replaced."""
    path, question, query = target.partition("?")
    decoded = unquote(path)  # `/api/v1/trace%2FCODE%2FKEY` reaches the same route
    found = _TRACE.search(decoded)
    if found is not None:
        path = quote(decoded[: found.end()], safe="/:@") + REDACTED
    if question:
        pairs = query.split("&")
        for i, pair in enumerate(pairs):
            name, equals, _value = pair.partition("=")
            if equals and unquote_plus(name).strip().lower() == "key":
                pairs[i] = f"{name}={REDACTED}"
        query = "&".join(pairs)
    return path + question + query


def _has_key(token: str) -> bool:
    return "/" in token or "?" in token


def redact_text(text: str) -> str:
    """Every URL-looking word of `text` (a request line, a path) with record keys replaced."""
    decoded = unquote(text).lower()
    if "trace" not in decoded and "disclosure" not in decoded and (
            "key" not in unquote_plus(text).lower()):
        return text
    return _TOKEN.sub(
        lambda m: redact_target(m.group()) if _has_key(m.group()) else m.group(), text
    )


class RedactKeys(logging.Filter):
    """Rewrites an access-log record's arguments (uvicorn: a tuple whose third item is the
    path with its query; gunicorn: a dict of atoms such as `r`, `U`, `q`, `f`) so that no record
    key is formatted into the line. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, dict):
            # In place: gunicorn's atoms are a dict subclass answering '-' for missing keys.
            for name, value in list(args.items()):
                if isinstance(value, str):
                    args[name] = redact_text(value)
        if isinstance(record.msg, str) and not args:
            record.msg = redact_text(record.msg)
        return True


def install() -> None:
    """Put `RedactKeys` on the access loggers, once."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())
