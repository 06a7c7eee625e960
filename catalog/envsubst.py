"""`${VAR}` and `${VAR:-default}` substitution in connection declarations.

This is plain text substitution; a database URL goes through `catalog.urls.substitute_url`,
which encodes each value for the part of the URL it lands in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from govex.errors import DeclarationError

# `${NAME}` or `${NAME:-default}`; group 1 is the name, group 2 the default (None if absent).
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(text: str, env: Mapping[str, str], *, file: str, field: str) -> str:
    """Replace every `${VAR}` from `env`; an unset variable without a default is an error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is not None and value != "":
            return value
        if default is not None:
            return default
        if value is not None:
            return value
        msg = (
            f"environment variable {name} is not set and '${{{name}}}' has no default "
            f"(write '${{{name}:-default}}' or export {name})"
        )
        raise DeclarationError(
            msg,
            file=file,
            field=field,
            value=text,
        )

    return REFERENCE.sub(replace, text)


def variables(text: str) -> list[str]:
    """Names of the variables a template refers to."""
    return [m.group(1) for m in REFERENCE.finditer(text)]
