"""A token bucket: how fast a WebSocket peer may send messages. Pure: the caller tells the
time. `rate` messages a second on average, bursts of up to `rate` at once (a second's
worth: a peer that fell behind and catches up is not cut off)."""

from __future__ import annotations


class TokenBucket:
    """Made per WebSocket by the stream handler; `take` for every message received."""

    __slots__ = ("rate", "tokens", "at")

    def __init__(self, rate: float, now: float) -> None:
        """`rate` 0: no limit."""
        self.rate, self.tokens, self.at = rate, float(rate), now

    def take(self, now: float) -> bool:
        """Whether one more message at `now` (monotonic seconds) is within the rate."""
        if not self.rate:
            return True
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
