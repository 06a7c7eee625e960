"""Reading a declaration file (workspace YAML, contract JSON) that may be hostile: only a
regular file, never more than a bound, and UTF-8, each refusal one sentence naming the file."""

from __future__ import annotations

from pathlib import Path

from govex.errors import DeclarationError

MAX_DECLARATION_BYTES = 1 << 20  # 1 MiB: a contract of a hundred fields is a few tens of KiB


def read_declaration(path: Path, name: str, kind: str) -> str:
    """The text of `path` (shown as `name`); `kind` says what it is in messages ("a contract")."""
    if not path.is_file():  # a FIFO or a device would block or never end
        msg = "is not a regular file"
        raise DeclarationError(msg, file=name)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DECLARATION_BYTES + 1)  # never more, whatever the file claims
    except OSError as error:
        msg = f"cannot be read ({error.strerror})"
        raise DeclarationError(msg, file=name) from error
    if len(data) > MAX_DECLARATION_BYTES:
        msg = f"is larger than {MAX_DECLARATION_BYTES >> 20} MiB; {kind} is never that big"
        raise DeclarationError(msg, file=name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"is not UTF-8 text (byte {error.start}); save {kind} as UTF-8"
        raise DeclarationError(msg, file=name) from error
