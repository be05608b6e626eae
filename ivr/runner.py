"""The turn runner: the one loop that steps the engine, for every transport.

A turn starts with an event (a key, words, silence, a hang-up) and lasts until the
engine waits for the caller again or the call ends. In between, the runner performs
the engine's backend calls, retrying those that may be retried, caps the calls of
one turn, and keeps the turn inside its time budget: when a backend is slow and its
node has a hold prompt, the turn ends early with the prompt and the call still in
flight (`Turn.in_flight`), for the transport to pick its answer up later. A call
fails in one place, `Runner.fail`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ivr.backend import Backend
from ivr.engine import actions as act
from ivr.engine import step
from ivr.engine.engine import apology_of, call_language, fail
from ivr.engine.events import Event, FetchResult, MessageSent
from ivr.engine.session import Session
from ivr.flow.compiler import ANSWER_MARGIN
from ivr.flow.hours import Closure, with_closures
from ivr.flow.model import Flow
from ivr.telephony.rest import Sent

log = logging.getLogger("ivr.runner")

MAX_FETCHES = 10  # backend calls (and messages) in one turn before the flow counts as looping
MESSAGE_TIMEOUT = 5.0  # seconds a message node's send may take (within the turn's budget)
BACKOFF = 0.25  # seconds before the first retry, doubled before each next one
LAST_TRY = 0.2  # a retry needs at least this long left to be worth sending
# told of every attempt of a backend call: (flow id, the fetch, its result, seconds taken)
FetchObserver = Callable[[str, act.Fetch, FetchResult, float], None]
# told of every message a `message` node sent or could not: (flow id, the message, result)
MessageObserver = Callable[[str, act.Message, MessageSent], None]
# told of a turn's actions so far when its hold prompt is due (a stream plays them at once)
OnHold = Callable[[list[act.Action]], Awaitable[None]]
# the hours ops closed now (`ivr hours close`), as the process last read them: no I/O
Closures = Callable[[], Sequence[Closure]]


class Messenger(Protocol):
    """What sends a `message` node's message: `ivr.telephony.rest.TwilioRest`, or an
    `Outbox` that keeps them (the console, conversation tests)."""

    async def send_message(self, to: str, body: str, from_: str, channel: str = "sms") -> Sent:
        """Send `body` to `to`; what became of it (never an exception)."""
        ...


class Outbox:
    """Messages kept instead of sent: each one is `sent` unless `failing` says why not."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str]] = []  # (to, body, from, channel)
        self.failing: str | None = None

    async def send_message(self, to: str, body: str, from_: str, channel: str = "sms") -> Sent:
        if self.failing:
            return Sent(False, error=self.failing)
        self.sent.append((to, body, from_, channel))
        return Sent(True, f"SM{len(self.sent):032x}", "queued")


@dataclass
class InFlight:
    """A backend call the turn could not wait for: its attempts go on in `task`."""

    fetch: act.Fetch
    task: asyncio.Task[FetchResult]
    deadline: float  # Unix time by which its attempts are over


@dataclass
class Turn:
    """What one turn did: the session after it, and the actions for the transport, in
    order (Fetch actions included: transports that show them find their results in
    `fetched`, in the same order)."""

    session: Session
    actions: list[act.Action] = field(default_factory=list)
    fetched: list[FetchResult] = field(default_factory=list)
    in_flight: InFlight | None = None
    sent: list[MessageSent] = field(default_factory=list)  # of the Message actions, in order


class Runner:
    """Runs turns for one process: shares the backend client among all calls."""

    def __init__(
        self,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        max_fetches: int = MAX_FETCHES,
        observe: FetchObserver | None = None,
        closures: Closures | None = None,
        messenger: Messenger | None = None,
        senders: Mapping[str, str] | None = None,
        observe_message: MessageObserver | None = None,
    ) -> None:
        """`observe`, when given, is told of each backend attempt (the server's metrics):
        the runner stays free of what measures it. `closures` tells the hours ops closed,
        laid over each flow's hours for the engine (which reads no store). `messenger`
        sends `message` nodes' messages (None: they fail, as not configured), from the
        number `senders` gives for the channel (IVR_SMS_FROM, IVR_WHATSAPP_FROM), else
        the number the call came to; `observe_message` is told of each (metrics)."""
        self.backend, self.clock, self.max_fetches = backend, clock, max_fetches
        self.messenger, self.senders = messenger, dict(senders or {})
        self.observe_message = observe_message
        self.observe = observe
        self.closures = closures
        # flow -> (the closures it was made with, the flow with them): made again only
        # when the closures read change (a new object), not at every turn
        self._overlaid: dict[tuple[str, str], tuple[object, Flow]] = {}

    def overlaid(self, flow: Flow) -> Flow:
        """`flow` with the hours ops closed; itself when none of its hours are."""
        if self.closures is None:
            return flow
        closures = self.closures()
        made = self._overlaid.get((flow.id, flow.version))
        if made is not None and made[0] is closures and made[1].file == flow.file:
            return made[1]
        hours = with_closures(flow.hours, flow.id, closures)
        overlaid = flow if hours is None else replace(flow, hours=hours)
        if len(self._overlaid) > 1000:  # versions come and go with reloads: never many
            self._overlaid.clear()
        self._overlaid[(flow.id, flow.version)] = (closures, overlaid)
        return overlaid

    async def run(
        self,
        flow: Flow,
        session: Session,
        event: Event,
        budget: float | None = None,
        on_hold: OnHold | None = None,
    ) -> Turn:
        """Step `event`, and go on until the call waits for the caller or ends.

        With a `budget` (seconds), the turn is over by then: a backend call runs within
        what is left of it, or, if its node has a hold prompt, goes on past it once the
        caller has heard the prompt (the turn ends with `in_flight`). Without one
        (console, conversation tests, a stream that can talk while it waits), backend
        calls run to their end, and the hold prompt is among the actions if it was due;
        `on_hold`, when given, is told the actions so far as soon as the prompt is due, so
        a stream plays it while the call goes on.
        """
        started = time.monotonic()
        turn = Turn(session)
        flow = self.overlaid(flow)
        while True:
            turn.session, actions = step(flow, turn.session, event)
            turn.actions += actions
            last = actions[-1] if actions else None
            if not isinstance(last, act.Fetch | act.Message):
                return turn
            if len(turn.fetched) + len(turn.sent) == self.max_fetches:
                error = f"more than {self.max_fetches} backend calls in one turn"
                failed = self.fail(flow, turn.session, error)
                actions = turn.actions + failed.actions
                return Turn(failed.session, actions, turn.fetched, sent=turn.sent)
            left = None if budget is None else budget - ANSWER_MARGIN - (time.monotonic() - started)
            if isinstance(last, act.Message):
                event = await self.send(last, turn.session, left)
                turn.sent.append(event)
                continue
            fetch = last
            result = await self._await(fetch, left, turn, on_hold)
            if result is None:
                return turn  # on hold
            if not result.ok:
                log.warning(
                    "backend call at %s failed: %s", fetch.node, result.error or result.status
                )
            event = replace(result, at=self.clock())
            turn.fetched.append(event)

    async def send(self, message: act.Message, session: Session, left: float | None) -> MessageSent:
        """Send a message node's message within `left` seconds (None: its own timeout)."""
        sender = self.senders.get(message.channel) or str(session.vars.get("called") or "")
        if self.messenger is None:
            sent = Sent(False, error="messages are not configured (TWILIO_ACCOUNT_SID)")
        else:
            wait = MESSAGE_TIMEOUT if left is None else max(0.0, min(MESSAGE_TIMEOUT, left))
            try:
                sent = await asyncio.wait_for(
                    self.messenger.send_message(message.to, message.text, sender, message.channel),
                    wait,
                )
            except TimeoutError:
                sent = Sent(False, error=f"timed out after {wait:g} s")
        if not sent.ok:
            log.warning("message at %s not sent: %s", message.node, sent.error)
        result = MessageSent(sent.ok, sent.sid, sent.error, at=self.clock())
        if self.observe_message is not None:
            self.observe_message(session.flow_id, message, result)
        return result

    def fail(
        self, flow: Flow | None, session: Session, error: str, apology: act.Prompt | None = None
    ) -> Turn:
        """End the call as `failed` (ivr's fault): the caller hears the flow's apology, or
        `apology`; sensitive values are dropped."""
        log.warning("call failed: %s", error)
        language = call_language(flow, session) if flow else None
        failed, actions = fail(session, error, self.clock(), apology or apology_of(flow, language))
        return Turn(failed, actions)

    async def _await(
        self, fetch: act.Fetch, left: float | None, turn: Turn, on_hold: OnHold | None = None
    ) -> FetchResult | None:
        """The fetch's result; None when the turn must answer first (`turn` holds it)."""
        flow = turn.session.flow_id
        if left is not None and fetch.hold is None:
            return await self.attempts(fetch, max(0.0, left), flow)  # all within the turn
        task = asyncio.create_task(self.attempts(fetch, flow=flow))
        wait = fetch.hold_after if left is None else max(0.0, min(fetch.hold_after, left))
        if fetch.hold is not None and not await done_within(task, wait):
            turn.actions.append(fetch.hold)
            if on_hold is not None:
                await on_hold(list(turn.actions))
            if left is not None:
                turn.actions.append(act.Hold())
                turn.in_flight = InFlight(fetch, task, time.time() + longest(fetch))
                return None
        return await task

    async def attempts(
        self, fetch: act.Fetch, within: float | None = None, flow: str = ""
    ) -> FetchResult:
        """The fetch, tried again after network errors, timeouts, 5xx and 429 while it has
        retries and time left: `within` seconds, or what its attempts may take. `flow`
        names the call's flow to the observer."""
        end = time.monotonic() + (longest(fetch) if within is None else within)
        delay = BACKOFF
        result = FetchResult(error="timed out: no time was left in the turn", at=self.clock())
        retries = fetch.retries if self.backend.permits(fetch.url) else 0
        for attempt in range(retries + 1):
            left = end - time.monotonic()
            if left <= 0 or (attempt and left < LAST_TRY):
                break
            sent = time.monotonic()
            result = await self.backend.fetch(fetch, min(fetch.timeout, left))
            if self.observe is not None:
                self.observe(flow, fetch, result, time.monotonic() - sent)
            if not _retryable(result) or attempt == retries:
                break
            log.info(
                "backend call at %s: %s; trying again", fetch.node, result.error or result.status
            )
            await asyncio.sleep(min(delay, max(0.0, end - time.monotonic() - LAST_TRY)))
            delay *= 2
        return result


def longest(fetch: act.Fetch) -> float:
    """How long all the fetch's attempts may take, with the pauses between them."""
    pauses = sum(BACKOFF * 2**i for i in range(fetch.retries))
    return fetch.timeout * (fetch.retries + 1) + pauses


def _retryable(result: FetchResult) -> bool:
    """A network error or timeout (no status), too many requests, or a server error."""
    return result.status == 0 or result.status == 429 or result.status >= 500


async def done_within(task: asyncio.Task[Any], seconds: float) -> bool:
    """Whether `task` is done after waiting for it at most `seconds` (it is not cancelled)."""
    await asyncio.wait({task}, timeout=seconds)
    return task.done()
