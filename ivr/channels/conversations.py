"""Text conversations: one session per customer and channel, stepped a message at a time.

A message finds its conversation through a link keyed by the channel and the keyed hash of
the customer's address (`Keys.customer_id`: no number in clear), kept as long as the
flow's `defaults.idle`. Without one (or once the conversation ended) the message starts a
new conversation; its words answer the flow's first question when they are one of its
choices ("balance" texted to the bank), else the flow greets and asks. A conversation
nobody wrote to for `idle` seconds ends abandoned (`expire`). A call whose message node
let its caller answer by text is found the same way, and goes on as a leg of the same
conversation (`_resume`); `open` starts an outbound one (`ivr notify --channel sms`).
Sessions, outcomes, records and metrics are the voice calls' own (`Calls`), by `channel`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from ivr.channels.text import (
    Reply,
    answers_first,
    choices,
    listening,
    message_event,
    render,
    unasked,
)
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, Digits, HangUp, Resumed
from ivr.engine.session import Session
from ivr.flow.model import Flow, Message
from ivr.keys import Keys
from ivr.logs import hide
from ivr.registry import FlowRegistry, Route
from ivr.runner import Turn
from ivr.store.base import Stored
from ivr.telephony.calls import Calls
from ivr.telephony.rest import Sent

log = logging.getLogger("ivr.text")

LINGER = 60.0  # seconds a link outlives the idle timeout: the reaper ends the conversation
DEFAULT_IDLE = 1800.0  # defaults.idle, when a flow says nothing


class TextConversations:
    """Steps text conversations for one process: made by the server, used by the
    messaging webhook and the web chat socket alike."""

    def __init__(self, calls: Calls, keys: Keys | None) -> None:
        self.calls, self.keys = calls, keys
        self.flows: FlowRegistry = calls.flows
        self.sessions, self.runner = calls.sessions, calls.runner

    def key(self, channel: str, address: str) -> str | None:
        """The link key of a customer on a channel; None when the address is withheld."""
        customer = customer_of(address, self.keys)
        return None if customer is None else f"{channel}:{customer}"

    async def resume(
        self, channel: str, address: str, flow_id: str, at: float | None = None
    ) -> Reply | None:
        """The customer's conversation going on in flow `flow_id`, as its last turn said it
        (messages and choices: a chat page reloaded shows where it was); None when there is
        none (one past its idle time is ended by the next message). One going on in
        another flow is ended abandoned: the customer left it."""
        at = time.time() if at is None else at
        key = self.key(channel, address)
        if key is None:
            return None
        async with self.sessions.lock(key):
            sid = await self.sessions.linked(key)
            if sid is None:
                return None
            async with self.sessions.lock(sid):
                stored = await self.sessions.load(sid)
                if stored is None or stored.session.ended or stored.session.medium == "voice":
                    return None
                session = stored.session
                flow = self.flows.get(session.flow_id, session.version)
                if flow is None or session.flow_id != flow_id:
                    await self._end(stored, HangUp(at=at), "abandoned")
                    return None
                if session.updated_at + flow.idle <= at:
                    return None
                last = Reply(messages=_said(stored.reply))
                if (listen := listening(flow, session)) is not None:
                    last.choices = choices(flow, listen)
                return last

    async def receive(
        self,
        channel: str,
        address: str,
        text: str,
        route: Route | None,
        to: str = "",
        at: float | None = None,
        message_id: str = "",
    ) -> Reply:
        """Step the customer's message: the conversation it continues, or a new one on
        `route` (None: no flow answers there, and the customer is told nothing). A
        `message_id` seen last in the conversation gets the answer it got then."""
        at = time.time() if at is None else at
        key = self.key(channel, address)
        if key is None:
            log.warning("a %s message from a withheld address: not answered", channel)
            return Reply(ended=True)
        async with self.sessions.lock(key):
            sid = await self.sessions.linked(key)
            if sid is not None:
                async with self.sessions.lock(sid):  # the reaper may be ending it
                    reply = await self._linked(key, sid, channel, text, at, message_id)
                if reply is not None:
                    return reply
            if route is None:
                log.warning("no flow answers %s messages to %s", channel, to[:32])
                return Reply(ended=True)
            return await self._start(key, channel, address, route, text, to, at, message_id)

    async def _linked(
        self, key: str, sid: str, channel: str, text: str, at: float, message_id: str = ""
    ) -> Reply | None:
        """Step the message in the conversation the link found (its lock held); None when
        that one is over and the message starts a new one."""
        if message_id:  # Twilio sends a message again when our answer was late
            seen = await self.sessions.load(sid)
            if seen is not None and seen.session.last_message == message_id:
                return Reply(messages=_said(seen.reply))
        stored = await self._current(sid, channel, at)
        if stored is None:
            return None
        session = stored.session
        hide(*(session.vars.get(name) for name in session.sensitive))
        flow = self.flows.get(session.flow_id, session.version)
        if session.medium == "voice" and session.outcome is None:
            log.info("a %s message while its call goes on: not answered", channel)
            return Reply()
        if flow is None and session.medium == "voice":
            log.warning("a call's flow is gone: its text starts a new conversation")
            await self._close_window(stored)
            return None
        if flow is None:
            log.warning("a text conversation's flow is gone: it starts again")
            await self._end(stored, HangUp(at=at), "failed")
            return None
        if session.medium == "voice":  # a call that let its caller go on by text
            return await self._resume(key, flow, channel, session, text, at, message_id)
        return await self._continue(key, flow, session, text, at, message_id)

    async def open(
        self,
        channel: str,
        number: str,
        route: Route,
        given: Mapping[str, Any],
        at: float | None = None,
    ) -> Sent:
        """Start an outbound text conversation (`ivr notify --channel sms`): the flow's
        opening is sent to `number` by the runner's messenger, and the conversation is
        kept only once it was, so the customer's answer goes on from there; what Twilio
        said. The conversation is `outbound`: kept apart from inbound containment."""
        at = time.time() if at is None else at
        flow, address = route.flow, f"whatsapp:{number}" if channel == "whatsapp" else number
        key = self.key(channel, address)
        messenger = self.runner.messenger
        if key is None or messenger is None:
            return Sent(False, error="messages are not configured (TWILIO_ACCOUNT_SID)")
        ours = self.runner.senders.get(channel) or (flow.numbers[0] if flow.numbers else "")
        async with self.sessions.lock(key):
            if await self.going_on(channel, address):
                return Sent(False, error="a conversation with them goes on there", code=409)
            session = new_session(flow, "TX" + secrets.token_hex(16))
            session.channel, session.address, session.direction = channel, address, "outbound"
            session.experiment, session.variant = route.experiment, route.variant
            known = await self.calls.history(flow, address, at)
            started = CallStarted(number, ours, dict(given), at=at, history=known)
            turn = await self.runner.run(flow, session, started)
            text = "\n\n".join(render(flow, turn.actions).messages)
            if not text:
                return Sent(False, error=f"flow {flow.id} says nothing before it first waits")
            sent = await messenger.send_message(number, text, ours, channel)
            if sent.ok:  # a conversation nobody was told of is no conversation
                await self._save(key, flow, turn)
                self.calls.metrics.started(session)
                log.info("outbound text conversation started on %s (%s)", flow.id, channel)
            return sent

    async def going_on(self, channel: str, address: str) -> bool:
        """Whether a conversation of this customer on `channel` waits for their message."""
        key = self.key(channel, address)
        sid = None if key is None else await self.sessions.linked(key)
        stored = None if sid is None else await self.sessions.load(sid)
        return stored is not None and stored.session.outcome is None

    async def stop(self, channel: str, address: str, at: float | None = None) -> None:
        """The customer said STOP: their conversation on `channel` ends where it was,
        abandoned (a call's window for text closes: the call is final)."""
        at = time.time() if at is None else at
        key = self.key(channel, address)
        if key is None:
            return
        async with self.sessions.lock(key):
            sid = await self.sessions.linked(key)
            if sid is None:
                return
            async with self.sessions.lock(sid):
                stored = await self.sessions.load(sid)
                if stored is None or stored.session.ended:
                    return
                if stored.session.medium == "voice":  # a call's window closes, nothing more
                    await self._close_window(stored)
                else:
                    await self._end(stored, HangUp(at=at), "abandoned")

    def _shortest_window(self) -> float:
        """The shortest time a call's caller may go on by text, of the flows loaded."""
        windows = (
            n.spec.window
            for f in self.flows.current.values()
            for n in f.nodes.values()
            if isinstance(n.spec, Message) and n.spec.go_on
        )
        return min(windows, default=DEFAULT_IDLE)

    async def _close_window(self, stored: Stored) -> None:
        """A call's window for text is over: its outcome is final when the call is."""
        session = stored.session.copy()
        session.handoff = None
        await self.calls.save(session, stored.reply)

    async def expire(self, now: float | None = None) -> int:
        """End the text conversations nobody wrote to for their flow's idle time, as
        abandoned at the moment it ran out; returns how many."""
        now = time.time() if now is None else now
        idle = min((f.idle for f in self.flows.current.values()), default=DEFAULT_IDLE)
        ended = 0
        # nothing ends sooner than the shortest idle time or window: quiet calls stay unread
        for sid in await self.sessions.stale(now - min(idle, self._shortest_window())):
            async with self.sessions.lock(sid):
                stored = await self.sessions.load(sid)
                if stored is None or stored.session.ended:
                    continue
                handoff = stored.session.handoff
                if stored.session.outcome is not None and handoff is not None:
                    if handoff["until"] <= now:  # nobody went on by text: the call is final
                        session = stored.session.copy()
                        session.handoff = None
                        await self.calls.save(session, stored.reply)
                        ended += 1
                    continue
                if stored.session.medium == "voice":
                    continue
                flow = self.flows.get(stored.session.flow_id, stored.session.version)
                over = stored.session.updated_at + (flow.idle if flow else idle)
                if over <= now:
                    await self._end(stored, HangUp(at=over), "abandoned")
                    ended += 1
        return ended

    # -- the conversation --------------------------------------------------------------------

    async def _current(self, sid: str, channel: str, at: float) -> Stored | None:
        """The conversation `sid` when it goes on: a text one not idle too long (one past
        its idle time is ended first, abandoned), or a call whose window for text on
        `channel` is open."""
        stored = await self.sessions.load(sid)
        if stored is None or stored.session.ended:
            return None
        handoff = stored.session.handoff
        if stored.session.medium == "voice":
            if handoff is None or handoff["channel"] != channel or handoff["until"] < at:
                return None
            return stored
        flow = self.flows.get(stored.session.flow_id, stored.session.version)
        idle = flow.idle if flow else DEFAULT_IDLE
        if stored.session.updated_at + idle <= at:
            await self._end(stored, HangUp(at=stored.session.updated_at + idle), "abandoned")
            return None
        return stored

    async def _start(
        self,
        key: str,
        channel: str,
        address: str,
        route: Route,
        text: str,
        to: str,
        at: float,
        message_id: str = "",
    ) -> Reply:
        flow = route.flow
        session = new_session(flow, "TX" + secrets.token_hex(16))
        session.channel, session.address = channel, address
        session.experiment, session.variant = route.experiment, route.variant
        self.calls.metrics.started(session)
        log.info("text conversation started on %s (%s)", flow.id, channel)
        number = "" if channel == "chat" else address.removeprefix("whatsapp:")
        known = await self.calls.history(flow, address, at)  # before the greeting
        started = await self.runner.run(
            flow, session, CallStarted(number, to, at=at, history=known)
        )
        first = await self._answered(flow, started, text, at)
        return await self._save(key, flow, first, message_id)

    async def _resume(
        self,
        key: str,
        flow: Flow,
        channel: str,
        session: Session,
        text: str,
        at: float,
        message_id: str = "",
    ) -> Reply:
        """A call's customer writes within the window its message node opened: the
        conversation goes on here, a leg of the same conversation (one record)."""
        log.info("the conversation goes on by %s", channel)
        self.calls.metrics.switched(flow.id, session.medium, channel)
        resumed = await self.runner.run(flow, session, Resumed(channel, at=at))
        turn = await self._answered(flow, resumed, text, at)
        return await self._save(key, flow, turn, message_id)

    async def _answered(self, flow: Flow, opened: Turn, text: str, at: float) -> Turn:
        """A conversation (or a leg) just opened, and the message that opened it: when that
        answers the question it opens at, the answer's turn follows, the question unasked."""
        if not answers_first(flow, opened.session, text):
            return opened
        answered = await self._turn(flow, opened.session, text, at)
        actions = unasked(opened.actions) + answered.actions
        return Turn(answered.session, actions, opened.fetched + answered.fetched)

    async def _continue(
        self, key: str, flow: Flow, session: Session, text: str, at: float, message_id: str = ""
    ) -> Reply:
        if session.waiting not in ("listen", "confirm", "record"):
            log.warning("a message came while the conversation waits for %s", session.waiting)
            return Reply()
        turn = await self._turn(flow, session, text, at)
        return await self._save(key, flow, turn, message_id)

    async def _turn(self, flow: Flow, session: Session, text: str, at: float) -> Turn:
        event = message_event(flow, session, text, at)
        # the webhook hides the message; what the flow keeps of it is less ("it is 1234"
        # gives 1234), and a line logged in this turn may quote that
        hide(event.digits if isinstance(event, Digits) else getattr(event, "text", None))
        return await self.runner.run(flow, session, event)

    async def _save(self, key: str, flow: Flow, turn: Turn, message_id: str = "") -> Reply:
        reply = render(flow, turn.actions)
        session = turn.session
        session.last_message = message_id or None
        reply.ended, reply.outcome = session.outcome is not None, session.outcome
        await self.calls.save(session, orjson.dumps(reply.messages).decode())
        if not reply.ended:
            await self.sessions.link(key, session.call_id, flow.idle + LINGER)
        return reply

    async def _end(self, stored: Stored, event: HangUp, outcome: str) -> None:
        session = stored.session
        flow = self.flows.get(session.flow_id, session.version)
        if flow is not None:
            session, _ = step(flow, session, event)
        else:
            session = self.runner.fail(None, session, "the conversation's flow is gone").session
        log.info("text conversation ended %s at %s", session.outcome or outcome, session.node)
        await self.calls.save(session, stored.reply)


def customer_of(address: str, keys: Keys | None) -> str | None:
    """The customer behind a text address: a WhatsApp number is its phone number's
    customer. Without keys (a rehearsal), a plain hash."""
    address = address.strip().removeprefix("whatsapp:")
    if keys is not None:
        return keys.customer_id(address)
    return hashlib.sha256(address.encode()).hexdigest()[:24] if address else None


def _said(reply: str) -> list[str]:
    """The messages of a conversation's last turn, as `_save` stored them."""
    try:
        said = orjson.loads(reply)
    except orjson.JSONDecodeError:
        return []
    return [m for m in said if isinstance(m, str)] if isinstance(said, list) else []
