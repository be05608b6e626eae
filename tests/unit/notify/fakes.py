"""A fake clock and a fake Twilio for campaign tests: no real waiting, no network.

The clock jumps at each sleep (the campaign has one sleeper). The fake Twilio places calls
that ring for a few polls and then end as scripted per number and attempt, and keeps what
a test asserts on: when each call started and how many were in flight then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from ivr.notify.campaign import CallState, Outbound, Placed


class FakeClock:
    def __init__(self, now: float) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds
        await asyncio.sleep(0)


@dataclass
class FakeCall:
    outbound: Outbound
    started: float
    ending: str  # a final status, or "machine" (completed, AnsweredBy machine_end_beep)
    polls_left: int
    ended: bool = False


@dataclass
class FakeTwilio:
    clock: FakeClock
    script: dict[str, Sequence[str]] = field(default_factory=dict)  # number -> per attempt
    rings: int = 2  # polls a call stays ringing before it ends
    calls: dict[str, FakeCall] = field(default_factory=dict)
    most_in_flight: int = 0
    fail_dials: set[str] = field(default_factory=set)  # numbers the API refuses

    def in_flight(self) -> int:
        return sum(not c.ended for c in self.calls.values())

    async def dial(self, outbound: Outbound) -> Placed:
        if outbound.to in self.fail_dials:
            raise RuntimeError("HTTP 400: The 'To' number is not a valid phone number.")
        endings = self.script.get(outbound.to, ["completed"])
        ending = endings[min(outbound.attempt, len(endings)) - 1]
        sid = f"CA{len(self.calls):032d}"
        self.calls[sid] = FakeCall(outbound, self.clock.now(), ending, self.rings)
        self.most_in_flight = max(self.most_in_flight, self.in_flight())
        return Placed(sid, "queued")

    async def status(self, sid: str) -> CallState:
        call = self.calls[sid]
        if call.polls_left > 0:
            call.polls_left -= 1
            return CallState("ringing")
        call.ended = True
        if call.ending == "machine":
            return CallState("completed", "machine_end_beep")
        return CallState(call.ending, "human" if call.ending == "completed" else None)

    def starts(self, number: str | None = None) -> list[float]:
        return [c.started for c in self.calls.values() if number in (None, c.outbound.to)]

    def lines(self) -> list[int]:
        return [c.outbound.line for c in self.calls.values()]
