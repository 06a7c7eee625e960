"""Identifier checks shared by every connector.

Names reach SQL text and file paths, so they are validated once here instead of escaped in many
places: letters, digits and `_` only (optionally one `schema.` prefix for SQL tables), within the
dialect's identifier length. Anything else is a declaration error the user fixes in YAML.
"""

from __future__ import annotations

import re

from govex.errors import DeclarationError

_NAME = re.compile(r"[A-Za-z0-9_]+")


def check_name(name: str, what: str, max_length: int) -> str:
    """`name` itself when it is a plain identifier no longer than `max_length`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        msg = f"{what} name {name!r} is not allowed: use letters, digits and '_' only"
        raise DeclarationError(
            msg,
            value=name,
        )
    if len(name) > max_length:
        msg = (
            f"{what} name {name!r} is {len(name)} characters long; this system allows "
            f"at most {max_length}"
        )
        raise DeclarationError(
            msg,
            value=name,
        )
    return name


def check_table(name: str, max_length: int) -> tuple[str, ...]:
    """The parts of a table name: `table` or `schema.table`."""
    parts = tuple(name.split(".")) if isinstance(name, str) else (name,)
    if len(parts) > 2:
        msg = f"table name {name!r} has more than one '.'"
        raise DeclarationError(msg, value=name)
    return tuple(check_name(p, "table", max_length) for p in parts)
