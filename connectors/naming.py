"""Identifier checks shared by every connector: the rule itself is `govex.identifiers`.

It lives there, below the catalog as well, so that `govex apply` refuses the names a run would
refuse with the very same functions and limits. Names reach SQL text and file paths, so they are
validated once instead of escaped in many places.
"""

from __future__ import annotations

from govex.identifiers import (
    FILE_IDENTIFIER_LENGTH,
    SQL_IDENTIFIER_LENGTH,
    check_name,
    check_table,
)

__all__ = ["FILE_IDENTIFIER_LENGTH", "SQL_IDENTIFIER_LENGTH", "check_name", "check_table"]
