"""A token bucket: at most `rate_per_s` starts per second on average, bursts up to `burst`.

Plain Python, so it is testable alone; jobs/ wraps one instance in a Ray actor that every
download worker of the cluster asks, which makes the limit cluster-wide, or gives each of n
workers its own `share(n)`, which keeps them under the limit together without an actor. The download stage
only sees a callable that blocks until it may start (`sleeping_acquire`).
"""

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Reservations of start times; `reserve()` says how long the caller must wait."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def share(self, parts: int) -> "TokenBucket":
        """A bucket with 1/`parts` of this one's rate and burst: `parts` workers that each hold
        one stay within this bucket's rate together, asking nobody (each keeps a burst of at
        least 1, so together they burst max(burst, parts))."""
        if parts < 1:
            raise ValueError(f"parts must be >= 1, got {parts}")
        return TokenBucket(self.rate_per_s / parts, max(1, self.burst // parts), self._clock)

    def reserve(self) -> float:
        """Take one token; the seconds to wait before using it (0 when one is free now)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_s)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s


def sleeping_acquire(reserve: Callable[[], float]) -> Callable[[], None]:
    """A blocking acquire from a `reserve` function (local or a Ray actor call)."""

    def acquire() -> None:
        wait = reserve()
        if wait > 0:
            time.sleep(wait)

    return acquire
