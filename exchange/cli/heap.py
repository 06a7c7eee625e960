"""The garbage collector of a process that runs one `govex` command and ends (issue #16).

What a command's libraries load (SQLAlchemy, pyarrow, numpy, pandas: most of the heap) lives
as long as such a process, yet the collector walks it again each time it runs: while the heap
grows during the imports, and at the exit (together a fifth of a 10-row run). So the
collector is paused while a command's modules load and what they made is frozen
(`gc.freeze`), and the rest of the heap is frozen when the command is done. Objects still go
when their last reference does, so files and connections close as before; only cycles are
left to the end of the process. A caller whose process goes on (the tests, `main(argv)`) keeps
its collector as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["command", "loading"]

# Whether the command running now is its process's own command line, ending with it.
_ends_process = False


@contextmanager
def command(*, ends_process: bool) -> Iterator[None]:
    """Around one command; `ends_process`: the process ends when it returns."""
    global _ends_process
    _ends_process = ends_process
    try:
        yield
    finally:
        if ends_process:
            gc.freeze()


@contextmanager
def loading() -> Iterator[None]:
    """Around a command's imports: in a process the command ends, no collection while they
    load, and what they made frozen."""
    if not _ends_process:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
