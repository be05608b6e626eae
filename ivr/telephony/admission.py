"""Which new calls a process takes: at most `per_minute` new calls from one caller number
in any 60 s. A number that calls more often than a person would (a dialler, a flood that
runs up backend calls and records) is answered with a short apology and hung up on; its
calls in progress go on. In memory, per process: behind a load balancer the limit is per
process, which bounds a flood all the same. Withheld numbers are not limited (they all
look alike)."""

from __future__ import annotations

from collections import OrderedDict, deque

from ivr.keys import WITHHELD

WINDOW = 60.0  # seconds
PER_MINUTE = 20  # new calls from one number in WINDOW (IVR_CALLER_LIMIT; 0: no limit)
REMEMBERED = 10_000  # numbers kept at most: the ones heard from longest ago go first


class Admission:
    def __init__(self, per_minute: int = PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()

    def admit(self, caller: str, now: float) -> bool:
        """Whether a new call from `caller` at `now` (seconds) is taken; it counts if so."""
        number = caller.strip()
        if not self.per_minute or number.lower() in WITHHELD:
            return True
        times = self._calls.pop(number, None) or deque()
        while times and times[0] <= now - WINDOW:
            times.popleft()
        self._calls[number] = times  # the most recent last
        if len(self._calls) > REMEMBERED:
            self._calls.popitem(last=False)
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True
