"""An iterator run one item ahead of its consumer, in a thread of its own.

A delivery shapes a batch (Arrow compute, hashing) and then waits while the target database
takes it (a COPY); a run in one process reads the source's next batch while the gate judges
this one. Both sides wait outside the GIL much of the time, so the database and the run use
the two cores at once instead of taking turns.

`ahead` is a context manager: leaving it (at the end, or early on an error) stops the
producer at its next item and waits for it, so nothing keeps running behind a failed
delivery. Interrupted (Ctrl-C, SIGTERM, an exit), it does not wait: the item being made may
be a long read, and the producer, a daemon thread, stops at its next item by itself. An
error raised by the producer is raised to the consumer where it would have come had the
items been produced in line.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["ahead"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_END = object()  # the producer ran out
_POLL = 0.05  # seconds a producer waiting for room waits before looking whether to stop


class _Failed:
    """The producer's error, carried across the queue."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


@contextmanager
def ahead(items: Iterable[T], *, name: str, depth: int = 1) -> Iterator[Iterator[T]]:
    """`items`, produced in a thread (named `name`) at most `depth` items ahead of use. The
    thread runs in a copy of the caller's context (`contextvars`: a progress meter, say)."""
    handoff: queue.SimpleQueue[Any] = queue.SimpleQueue()
    room = threading.Semaphore(depth)  # taken before an item is made, given back when used
    stop = threading.Event()

    def wait_for_room() -> bool:
        while not stop.is_set():
            if room.acquire(timeout=_POLL):
                return True
        return False

    def produce() -> None:
        source = iter(items)
        try:
            while wait_for_room():
                try:
                    item = next(source)
                except StopIteration:
                    handoff.put(_END)
                    return
                handoff.put(item)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            handoff.put(_Failed(error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:  # a generator's own clean-up, in this thread
                try:
                    close()
                except Exception:  # the consumer has gone (it raised, or stopped early)
                    log.exception("%s: cleaning up after the consumer left failed", name)

    def consume() -> Iterator[T]:
        while True:
            item = handoff.get()
            room.release()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    producer = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                                name=name, daemon=True)
    producer.start()
    interrupted = False
    try:
        yield consume()
    except BaseException as error:
        # Ctrl-C, SIGTERM (as KeyboardInterrupt) or an exit: the process is going, and the
        # producer may be inside a long read; it stops at its next item on its own.
        interrupted = not isinstance(error, Exception)
        raise
    finally:
        stop.set()
        if not interrupted:
            producer.join()
