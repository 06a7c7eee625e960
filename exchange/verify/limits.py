"""The call rate of each verify subscription: a token bucket per subscription, per process.

A subscription may make GOVEX_VERIFY_RATE calls a second, in bursts of as many (the bucket
holds one second's worth). Kept in the server process, not the store: checking it costs no
round trip on a path that answers within milliseconds, so with several server processes a
subscription may make that many calls in each. What cannot be multiplied that way, the
answers per record key and day, is counted in the store (`tables.verify_answers`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["CallRate"]


class CallRate:
    """Token buckets keyed by subscription: `take` a call or learn how long to wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, at)

    def take(self, subscription: str, rate: int) -> int:
        """0 when `subscription` may make a call now (counted), else the whole seconds to
        wait before it may (at least 1): the Retry-After of a 429."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(subscription, (float(rate), now))
            tokens = min(float(rate), tokens + (now - at) * rate)
            if tokens >= 1:
                self._buckets[subscription] = (tokens - 1, now)
                return 0
            self._buckets[subscription] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / rate))
