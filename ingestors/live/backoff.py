"""Reconnect pacing for live feeds: exponential backoff with full jitter, and a circuit breaker per exchange.

Full jitter (delay uniform in [0, min(cap, base * 2**attempt)]) spreads the
reconnects of many clients after an exchange outage instead of letting them
arrive in waves (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
The breaker stops hammering an exchange that keeps refusing us: after
`failure_threshold` consecutive failed connects it opens for `cooldown_s`, then
lets one probe through (half-open); a success closes it, a failure reopens it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["Backoff", "BreakerState", "CircuitBreaker"]


class Backoff:
    """Delays for successive reconnect attempts; reset() after a connection that stayed healthy."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base_s} cap={cap_s}")
        self.base_s, self.cap_s = base_s, cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap_s, self.base_s * 2**self.attempt)

    def next_delay(self) -> float:
        delay = self._rng.uniform(0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class BreakerState(StrEnum):
    CLOSED = "closed"  # connecting normally
    OPEN = "open"  # refusing to connect until the cool-down has passed
    HALF_OPEN = "half_open"  # one probe connect allowed


class CircuitBreaker:
    """Per exchange: opens after repeated connect failures, probes again after a cool-down."""

    def __init__(self, failure_threshold: int = 5, cooldown_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.failure_threshold, self.cooldown_s = failure_threshold, cooldown_s
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self.opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def wait_s(self) -> float:
        """How long until a connect may be tried (0 when closed or half-open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown_s - self._clock())

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            if self.opened_at is None or self.state == BreakerState.HALF_OPEN:
                self.times_opened += 1
            self.opened_at = self._clock()
