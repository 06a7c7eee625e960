"""An iterator run one item ahead of its consumer, in a thread of its own.

A delivery shapes a batch (Arrow compute, hashing) and then waits while the target database
takes it (a COPY). Both wait outside the GIL, so producing the next batch while this one is
written lets the database and the run use the two cores at once instead of taking turns.

`ahead` is a context manager: leaving it (at the end, or early on an error) stops the
producer at its next item and waits for it, so nothing keeps running behind a failed
delivery. An error raised by the producer is raised to the consumer where it would have come
had the items been produced in line.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["ahead"]

T = TypeVar("T")

_END = object()  # the producer ran out
_POLL = 0.05  # seconds a blocked producer waits before looking whether it should stop


class _Failed:
    """The producer's error, carried across the queue."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


@contextmanager
def ahead(items: Iterable[T], *, name: str, depth: int = 1) -> Iterator[Iterator[T]]:
    """`items`, produced in a thread (named `name`) at most `depth` items ahead of use."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            offer(_Failed(error))
            return
        offer(_END)

    def consume() -> Iterator[T]:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()
