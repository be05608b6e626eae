"""A campaign run: each callee of a file called once (or texted), paced, retried, in their
calling window, never when they opted out, resumable after an interruption.

The dialer is injected (`Dial` places a call or sends a message, `Status` tells where it
stands), and so is the clock, so tests run a whole campaign in no real time. One loop does
everything (polls the calls in flight, starts the next ones, sleeps until something is
due): there is one sleeper, so a fake clock that jumps at each sleep is exact.

Pacing: at most `rate` calls started in any minute, spaced 60/rate seconds apart, and at
most `concurrency` in flight (placed, no final status yet). Every attempt is written
before its call is placed, so a run that is killed and started again with the same
campaign id polls what was in flight, and never places a call it may have placed.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ivr.keys import Keys
from ivr.notify.attempts import (
    DECIDED,
    DIALING,
    INTERRUPTED,
    INVALID,
    OPTED_OUT,
    OUTSIDE,
    Attempt,
    latest,
)
from ivr.notify.callees import Callee, Rejected
from ivr.notify.windows import CallingWindow, next_opening
from ivr.store.campaigns import CampaignStore

log = logging.getLogger("ivr.notify")
MINUTE = 60.0
IDLE = 3600.0  # the longest single sleep: a campaign waiting for a window wakes to check
# Twilio ends a call after 4 hours at most: one with no final status well after that
# (a status that cannot be read, a SID Twilio lost) is given up as failed, not polled forever
LONGEST_CALL = 4 * 3600 + 600.0


@dataclass(frozen=True)
class Outbound:
    """What the dialer is asked to place: a call (or a text) to `to` that runs `flow`
    with `vars`; campaign, line and attempt say which, for its logs and idempotency."""

    to: str
    flow: str
    channel: str = "voice"  # voice | sms | whatsapp
    vars: Mapping[str, str] = field(default_factory=dict)
    campaign: str = ""
    line: int = 0
    attempt: int = 1


@dataclass(frozen=True)
class Placed:
    """What the dialer answers: the call's (or message's) SID and first status."""

    sid: str
    status: str = "queued"


@dataclass(frozen=True)
class CallState:
    """Where a placed call stands: Twilio's status (and AnsweredBy, with answering-machine
    detection)."""

    status: str
    answered_by: str | None = None


Dial = Callable[[Outbound], Awaitable[Placed]]
Status = Callable[[str], Awaitable[CallState]]


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Plan:
    """How a campaign calls: from `ivr notify --csv`'s flags."""

    campaign: str
    flow: str
    channel: str = "voice"
    rate: int = 30  # calls started per minute, at most
    concurrency: int = 5  # calls in flight, at most
    retries: int = 2  # more attempts after the first, for busy, no answer, failed
    retry_after: float = 600.0
    retry_machine: bool = False
    window: CallingWindow = CallingWindow()
    until: float | None = None  # the campaign stops then; what is left stays pending
    poll: float = 5.0  # seconds between status polls of a call in flight


@dataclass
class _Row:
    """A callee as the loop sees it: their last attempt and when they are due."""

    index: int
    callee: Callee
    customer: str | None
    last: Attempt | None = None
    next_poll: float = 0.0


class Campaign:
    """One run of a campaign; `run()` returns when every row is final or `until` came."""

    def __init__(
        self,
        plan: Plan,
        callees: Sequence[Callee],
        store: CampaignStore,
        keys: Keys,
        dial: Dial,
        status: Status,
        clock: Clock | None = None,
        on_final: Callable[[Attempt], None] = lambda a: None,
    ) -> None:
        self.plan, self.store, self.dial, self.status = plan, store, dial, status
        self.clock = clock or SystemClock()
        self.on_final = on_final  # told of each attempt that reaches a final status
        self.rows = [_Row(i, c, keys.customer_id(c.number)) for i, c in enumerate(callees)]
        self.started: deque[float] = deque()  # when calls were started, the last minute's
        # rows waiting for their time (first call, retry, window) as (due, line, index), and
        # rows in flight by index: a pass of the loop costs O(concurrency + log rows)
        self.waiting: list[tuple[float, int, int]] = []
        self.flying: dict[int, _Row] = {}

    async def reject(self, rejected: Iterable[Rejected]) -> None:
        """Keep the file's bad rows as `invalid` (once), so the report counts them."""
        known = {a.line for a in await self.store.attempts(self.plan.campaign)}
        now = self.clock.now()
        for row in rejected:
            if row.line not in known:
                invalid = Attempt(self.plan.campaign, row.line, 0, INVALID, reason=row.reason)
                await self.store.save(replace(invalid, at=now, updated_at=now))

    async def run(self) -> None:
        await self._resume()
        while True:
            now = self.clock.now()
            if self.plan.until is not None and now >= self.plan.until:
                log.info("campaign %s: --until reached", self.plan.campaign)
                return
            await self._poll(now)
            await self._start(now)
            wake = self._next_wake(self.clock.now())
            if wake is None:
                return
            await self.clock.sleep(max(0.0, wake - self.clock.now()))

    # -- resuming ------------------------------------------------------------------------------

    async def _resume(self) -> None:
        attempts = await self.store.attempts(self.plan.campaign)
        last = latest(attempts)
        now = self.clock.now()
        # the calls the last run started within the minute count against the rate
        recent = [a.at for a in attempts if a.at > now - MINUTE and a.status not in DECIDED]
        self.started.extend(sorted(recent))
        for row in self.rows:
            row.last = last.get(row.customer or f"line:{row.callee.line}")
            if row.last is None:
                self._wait(row, now)
            elif row.last.status == DIALING:  # died while placing it: it may have gone out
                why = "the run was interrupted while placing it; not placed again"
                await self._final(row, row.last.moved(INTERRUPTED, now, reason=why))
            elif not row.last.final:
                row.next_poll = now  # in flight when the last run stopped
                self.flying[row.index] = row
            else:
                self._after(row)

    def _wait(self, row: _Row, due: float) -> None:
        heapq.heappush(self.waiting, (due, row.callee.line, row.index))

    def _after(self, row: _Row) -> None:
        """A row whose last attempt is final: due again after `retry_after`, or done."""
        self.flying.pop(row.index, None)
        last = row.last
        assert last is not None
        more = last.attempt and last.attempt <= self.plan.retries
        if more and last.retryable(self.plan.retry_machine):
            self._wait(row, last.updated_at + self.plan.retry_after)

    # -- the loop's steps ------------------------------------------------------------------------

    async def _poll(self, now: float) -> None:
        due = [r for r in self.flying.values() if r.next_poll <= now]
        states = await asyncio.gather(*(self._state(r) for r in due))
        for row, state in zip(due, states, strict=True):
            row.next_poll = now + self.plan.poll
            last = row.last
            assert last is not None
            reason = None
            stuck = state is None or state.status == last.status
            if stuck and now - last.at > LONGEST_CALL:
                state, reason = CallState("failed"), "no final status came: given up"
            if state is None or state.status == last.status:
                continue
            moved = last.moved(
                state.status, self.clock.now(), answered_by=state.answered_by, reason=reason
            )
            if moved.final:
                await self._final(row, moved)
            else:
                row.last = moved
                await self.store.save(moved)

    async def _state(self, row: _Row) -> CallState | None:
        assert row.last is not None and row.last.call_sid
        try:
            return await self.status(row.last.call_sid)
        except Exception as e:  # asked again at the next poll
            log.warning(
                "campaign %s line %d: status not read: %s", self.plan.campaign, row.callee.line, e
            )
            return None

    async def _start(self, now: float) -> None:
        while self.waiting and self.waiting[0][0] <= now:
            if len(self.flying) >= self.plan.concurrency or self._next_slot(now) > now:
                return
            row = self.rows[heapq.heappop(self.waiting)[2]]
            opening = next_opening(self.plan.window, row.callee.zones, now)
            number = (row.last.attempt if row.last else 0) + 1
            if opening is None:
                zones = ", ".join(row.callee.zones)
                reason = f"{self.plan.window.describe()} never opens in {zones}"
                await self._final(row, self._attempt(row, number, OUTSIDE, now, reason))
            elif opening[0] > now:
                self._wait(row, opening[0])  # waits for its window to open
            elif row.customer and await self.store.opted_out(row.customer):
                await self._final(row, self._attempt(row, number, OPTED_OUT, now))
            else:
                await self._place(row, number, now)

    def _attempt(
        self, row: _Row, number: int, status: str, now: float, reason: str | None = None
    ) -> Attempt:
        campaign, line = self.plan.campaign, row.callee.line
        return Attempt(campaign, line, number, status, row.customer, None, None, reason, now, now)

    async def _place(self, row: _Row, number: int, now: float) -> None:
        attempt = self._attempt(row, number, DIALING, now)
        await self.store.save(attempt)  # before the call: a re-run knows it may have gone out
        row.last, row.next_poll = attempt, now + self.plan.poll
        self.flying[row.index] = row
        self.started.append(now)
        plan, callee = self.plan, row.callee
        outbound = Outbound(
            callee.number, plan.flow, plan.channel, callee.vars, plan.campaign, callee.line, number
        )
        try:
            placed = await self.dial(outbound)
        except Exception as e:  # Twilio refused it, or did not answer: a failed attempt
            log.warning("campaign %s line %d: not placed: %s", plan.campaign, callee.line, e)
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            failed = attempt.moved("failed", self.clock.now(), reason=f"not placed: {reason}")
            await self._final(row, failed)
            return
        moved = attempt.moved(placed.status, self.clock.now(), call_sid=placed.sid)
        if moved.final:
            await self._final(row, moved)
        else:
            row.last = moved
            await self.store.save(moved)

    async def _final(self, row: _Row, attempt: Attempt) -> None:
        row.last = attempt
        await self.store.save(attempt)
        self._after(row)
        self.on_final(attempt)

    # -- pacing --------------------------------------------------------------------------------

    def _next_slot(self, now: float) -> float:
        """The first time another call may start: 60/rate after the last one, and never
        a rate+1st call within a minute."""
        while self.started and self.started[0] <= now - MINUTE:
            self.started.popleft()
        if not self.started:
            return now
        slot = self.started[-1] + MINUTE / self.plan.rate
        if len(self.started) >= self.plan.rate:
            slot = max(slot, self.started[-self.plan.rate] + MINUTE)
        return slot

    def _next_wake(self, now: float) -> float | None:
        """When the loop has something to do next; None when every row is done."""
        if not self.flying and not self.waiting:
            return None
        times = [r.next_poll for r in self.flying.values()]
        if self.waiting and len(self.flying) < self.plan.concurrency:
            times.append(max(self.waiting[0][0], self._next_slot(now)))
        wake = min(min(times), now + IDLE)
        return wake if self.plan.until is None else min(wake, self.plan.until)
