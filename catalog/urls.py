"""Database URLs of connection declarations: `${VAR}`s put into the right part, then checked.

A variable is substituted *by its position*: its value is the plain text of that part of the
URL (a password with `@` in it is a password with `@` in it), so it is percent-encoded for the
part it lands in. Substituting the raw text instead would let a password holding `@`, `/` or `?`
move the URL's boundaries, and part of the password would become the host or the database,
which govex then shows in run messages, lineage and the audit log.

| part of the URL           | a value there                                               |
|---------------------------|-------------------------------------------------------------|
| username, password        | percent-encoded entirely (SQLAlchemy decodes it back)       |
| database                  | percent-encoded except `/` (a SQLite path keeps its slashes) |
| query (keys and values)   | percent-encoded entirely                                    |
| host                      | letters, digits, `.`, `-`, `_` (IPv6 in `[...]`: hex, `:`, `.`) |
| port                      | digits                                                      |
| scheme                    | letters, digits, `_`, `+`                                   |

Host, port and scheme cannot be encoded (SQLAlchemy does not decode them), so a value there
holding anything else is refused. Text written literally in the template is left exactly as
written: a password already percent-encoded in connections.yaml keeps working. A template that
is not itself a URL (`${PSB_URL}`, `${BASE}/psb`) is substituted as written: its variables hold
URL text, encoded by whoever set them.

Error messages never repeat a resolved URL or a substituted value: either may hold a password.
For the same reason a password passed as a query option (`?password=…`) is refused: govex hides
the password part of a URL wherever it shows one, but shows the query.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from urllib.parse import quote

import sqlalchemy as sa

from govex.errors import DeclarationError
from govex.identifiers import SQL_IDENTIFIER_LENGTH

from .envsubst import REFERENCE, substitute

# SQLAlchemy's own URL grammar (`sqlalchemy.engine.url._parse_url`, 2.x), with the scheme
# named: a value must land in the part SQLAlchemy will read it from. A test pins the two
# together on every reserved character.
_URL = re.compile(
    r"""
        (?P<scheme>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)
_PARTS = ("scheme", "username", "password", "ipv6host", "ipv4host", "port", "database", "query")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Parts whose value is percent-encoded, and the characters each may keep as they are.
_ENCODED = {"username": "", "password": "", "database": "/", "query": ""}
# Parts SQLAlchemy does not decode: the value must already be plain.
_PLAIN = {
    "scheme": (re.compile(r"[A-Za-z0-9_+]+"), "letters, digits, '_' and '+'"),
    "ipv4host": (re.compile(r"[A-Za-z0-9._-]*"), "letters, digits, '.', '-' and '_'"),
    "ipv6host": (re.compile(r"[0-9A-Fa-f:.]*"), "hexadecimal digits, ':' and '.'"),
    "port": (re.compile(r"[0-9]*"), "digits"),
}
_NAMES = {"ipv4host": "host", "ipv6host": "host"}
MAX_PORT = 65535
# Query options that carry a secret. Only the password part of a URL is masked when govex
# renders a URL for a message (`render_as_string(hide_password=True)`); a query is shown as is.
_SECRET_OPTIONS = frozenset({"password", "passwd", "sslpassword"})


def substitute_url(template: str, env: Mapping[str, str], *, file: str, field: str) -> str:
    """The URL `template` with every `${VAR}` replaced by its value, encoded for its position."""
    if _CONTROL.search(template):
        msg = "the URL contains a control character (a line break or tab, say); remove it"
        raise DeclarationError(msg, file=file, field=field, value=template)
    references = list(REFERENCE.finditer(template))
    if not references:
        return template
    # Stand-ins made of word characters only, which every part of the grammar accepts, so the
    # template parses into the same parts it will have once the values are in.
    stem = "govexvar" + secrets.token_hex(8)
    while stem in template:  # pragma: no cover - 64 random bits
        stem = "govexvar" + secrets.token_hex(8)
    stand_ins = [f"{stem}{i}x" for i in range(len(references))]
    next_stand_in = iter(stand_ins)
    masked = REFERENCE.sub(lambda _: next(next_stand_in), template)
    parsed = _URL.match(masked)
    if parsed is None:
        # Not a URL by itself (`${PSB_URL}`): the variables hold URL text, substituted as is.
        return substitute(template, env, file=file, field=field)
    pieces: list[str] = []
    position = 0
    for ref, stand_in in zip(references, stand_ins, strict=True):
        start = masked.index(stand_in, position)
        part = next((p for p in _PARTS if parsed.start(p) <= start < parsed.end(p)), None)
        if part is None:  # pragma: no cover - stand-ins hold no delimiter, so cannot straddle
            msg = f"cannot tell which part of the URL '{ref.group(0)}' is in"
            raise DeclarationError(msg, file=file, field=field, value=template)
        value = substitute(ref.group(0), env, file=file, field=field)
        pieces.append(masked[position:start])
        pieces.append(_encode(value, part, ref.group(1), file=file, field=field, template=template))
        position = start + len(stand_in)
    pieces.append(masked[position:])
    return "".join(pieces)


def _encode(value: str, part: str, name: str, *, file: str, field: str, template: str) -> str:
    if part in _ENCODED:
        return quote(value, safe=_ENCODED[part])
    allowed, described = _PLAIN[part]
    if allowed.fullmatch(value):
        return value
    msg = (
        f"the value of ${{{name}}} goes into the {_NAMES.get(part, part)} of the URL, "
        f"which may hold only {described}"
    )
    raise DeclarationError(msg, file=file, field=field, value=template)


def check_url(url: str, *, file: str, field: str, template: str) -> sa.URL:
    """`url` parsed, when it is a database URL govex has a connector for.

    `template` (the URL as written, variables unresolved) is what the error keeps as its value;
    the resolved URL may hold a password and is never repeated.
    """

    def refuse(message: str) -> DeclarationError:
        return DeclarationError(message, file=file, field=field, value=template)

    if _CONTROL.search(url):
        msg = "the URL contains a control character (a line break or tab, say); remove it"
        raise refuse(msg)
    parts = _URL.match(url)
    if parts is None:
        msg = (
            "is not a database URL: expected dialect+driver://user:password@host:port/database, "
            "e.g. postgresql+psycopg://govex@db.example:5432/psb"
        )
        raise refuse(msg)
    port = parts.group("port")
    if port and not (
        port.isascii() and port.isdigit() and len(port) <= len(str(MAX_PORT))
        and 0 < int(port) <= MAX_PORT
    ):
        msg = f"the port of the URL is not a number from 1 to {MAX_PORT}"
        raise refuse(msg)
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as error:
        msg = "is not a valid database URL"
        raise refuse(msg) from error
    secret = sorted(k for k in parsed.query if k.lower() in _SECRET_OPTIONS)
    if secret:
        msg = (
            f"the URL passes the option '{secret[0]}' in its query, where govex would show "
            "it; put the password in the URL's password part (user:${VAR}@host), which is hidden"
        )
        raise refuse(msg)
    backend = parsed.get_backend_name()
    if backend not in SQL_IDENTIFIER_LENGTH:
        msg = (
            f"no connector for database '{backend}'; supported: "
            f"{', '.join(sorted(SQL_IDENTIFIER_LENGTH))}"
        )
        raise refuse(msg)
    return parsed
