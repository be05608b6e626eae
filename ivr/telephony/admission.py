"""Which new calls a process takes.

- At most `per_minute` new calls from one caller number in any 60 s. A number that calls
  more often than a person would (a dialler, a flood that runs up backend calls and
  records) is answered with a short apology and hung up on; its calls in progress go on.
  Withheld numbers are not limited (they all look alike).
- At most `max_calls` calls in progress in this process at once (`InProgress`), so a
  process past what it can serve (CPU, descriptors, backend calls) keeps serving the calls
  it has rather than failing all of them slowly: a new call past it hears that all lines
  are busy.
In memory, per process: behind a load balancer each limit is per process, which bounds a
flood all the same."""

from __future__ import annotations

from collections import OrderedDict, deque

from ivr.keys import WITHHELD

WINDOW = 60.0  # seconds
PER_MINUTE = 20  # new calls from one number in WINDOW (IVR_CALLER_LIMIT; 0: no limit)
REMEMBERED = 10_000  # numbers kept at most: the ones heard from longest ago go first
MAX_CALLS = 500  # calls in progress in one process (IVR_MAX_CALLS; 0: no limit)


class Admission:
    """Made by the server with the limits; asked by the voice webhook for each new call."""

    def __init__(self, per_minute: int = PER_MINUTE, max_calls: int = MAX_CALLS) -> None:
        self.per_minute, self.max_calls = per_minute, max_calls
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()

    def room(self, in_progress: int) -> bool:
        """Whether a new call is taken with `in_progress` calls under way here."""
        return not self.max_calls or in_progress < self.max_calls

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


class InProgress:
    """The calls in progress in this process: started here (by the voice webhook, or by a
    Media Stream's `start`) and not ended, that this process served a turn of within the
    last `window` seconds (the reaper's IVR_REAP_AFTER). A call leaves when it ends here
    (its flow ended it, its status callback, the reaper) or, failing that, `window`
    seconds after its last turn here: a call whose end another process saw, or whose
    status callback never came, cannot hold a place for ever. Made and fed by `Calls`."""

    def __init__(self, window: float = 7200.0) -> None:
        self.window = window
        self._seen: OrderedDict[str, float] = OrderedDict()  # call -> its last turn here

    def started(self, call: str, now: float) -> None:
        """`call` started here at `now` (monotonic seconds)."""
        self._seen.pop(call, None)
        self._seen[call] = now  # the most recent last

    def turned(self, call: str, now: float) -> None:
        """A turn of `call` here at `now`: a call started here stays for another window."""
        if call in self._seen:
            self.started(call, now)

    def ended(self, call: str) -> None:
        self._seen.pop(call, None)

    def calls(self) -> list[str]:
        return list(self._seen)

    def count(self, now: float) -> int:
        """How many calls are in progress at `now`; those silent past the window leave."""
        seen = self._seen
        while seen and next(iter(seen.values())) <= now - self.window:
            seen.popitem(last=False)
        return len(seen)
