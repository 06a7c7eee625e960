"""One root exception, branched by what the caller should do about it.

- `DeclarationError`: the user's input is wrong (a workspace file, a flag): fix it. Exit code 2.
- `DataQualityError`: the quality gate stopped the data. Exit code 1, no retry.
- `TransientError`: a dependency hiccuped (network, lock): retrying may help. Exit code 1.
- `Forbidden`: the acting role or department may not take this step. Exit code 2.
- `FatalError`: anything else we understand but cannot recover from. Exit code 1.
  `SchemaError` (a table that no longer fits its contract) is one.
"""

from __future__ import annotations

from typing import Any

# Control characters a hostile name or value may carry into a message: shown escaped, so an
# error stays one line (a log line, a terminal line, a JSON `detail`) and cannot forge another.
_CONTROL = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def one_line(text: str) -> str:
    """`text` with every control character escaped (a newline reads as `\\n`)."""
    return text.translate(_CONTROL)


class GovexError(Exception):
    """Root of every error govex raises on purpose."""

    exit_code: int = 1


class DeclarationError(GovexError):
    """Bad input: names the file, the field and the value at fault when they are known."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        self.message = message
        self.file = file
        self.field = field
        self.value = value
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.field:
            where.append(f"field '{self.field}'")
        prefix = ": ".join(where)
        return one_line(f"{prefix}: {self.message}" if prefix else self.message)


class DeclarationErrors(DeclarationError):
    """Several independent declaration errors found in one pass, reported together."""

    def __init__(self, errors: list[DeclarationError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.render() for e in errors))

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class Forbidden(GovexError):  # noqa: N818 - named for the HTTP answer it becomes
    """The acting token's role or department may not take this step (HTTP 403, exit code 2):
    nothing was changed. Use a token of the department and role the step belongs to."""

    exit_code = 2


class DataQualityError(GovexError):
    """The quality gate refused a batch."""


class TransientError(GovexError):
    """A dependency failed in a way that a retry may fix."""


class FatalError(GovexError):
    """An unrecoverable failure that is not the user's input."""


class SchemaError(FatalError):
    """A source or target table no longer fits the contract (a dropped column, a type that
    cannot hold the values): not a quality problem of the records, so the run fails at once,
    before anything is judged, quarantined or delivered. Exit code 1, no retry: fix the table
    or the contract."""
