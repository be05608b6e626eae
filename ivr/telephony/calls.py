"""A voice call's life in the stores, the same for every voice transport.

The webhooks (`ivr.telephony.webhook`) and the Media Streams driver
(`ivr.telephony.stream`) both start calls, save them after every turn and end them
here, so a call is counted, saved and recorded the same way whichever path it took:
once started, once ended, its record written once it ends.

When the session store is unreachable, a call cannot go on (its state is there): the
webhook ends it with what it has (`Calls.fallback`: the flow's apology, then its
`fallback` transfer) and keeps it in the local spool (`Calls.keep`), which
`Calls.check_stores` gives back to the store, and so to the record writer, once the store
answers again (`Calls.settle`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from ivr.engine import actions as act
from ivr.engine import apologies, new_session, step
from ivr.engine.engine import call_language
from ivr.engine.events import HangUp
from ivr.engine.session import Session
from ivr.flow.model import Flow, PromptTemplate, Transfer
from ivr.keys import Keys
from ivr.metrics import Metrics
from ivr.registry import FlowRegistry, Route
from ivr.runner import Runner, Turn
from ivr.store import history
from ivr.store.base import SessionStore, Stored, StoreUnavailable
from ivr.store.health import Pingable, StoreHealth
from ivr.store.history import EMPTY
from ivr.store.records import RecordWriter
from ivr.store.spool import Spool
from ivr.telephony.admission import InProgress

log = logging.getLogger("ivr.calls")

STORE_DOWN = "on_error:store"  # the reason of a fallback transfer (KIND:detail)
# said before the fallback transfer by a flow without an apology of its own: the engine's
# says goodbye, and the caller is not left
FALLBACK_APOLOGY = apologies.apology("fallback")  # (in the flow's language when it has one)
PROBE = "CA" + "0" * 32  # a call that never exists: loading it is a ping for any store


class Calls:
    """Starts, saves and ends voice calls for one process: made by the server, used by the
    webhooks and the stream driver alike."""

    def __init__(
        self,
        flows: FlowRegistry,
        sessions: SessionStore,
        runner: Runner,
        writer: RecordWriter | None,
        metrics: Metrics,
        spool: Spool | None = None,
        health: StoreHealth | None = None,
        in_progress: InProgress | None = None,
        keys: Keys | None = None,
    ) -> None:
        """`writer` None: no records (the softphone's rehearsals); `spool` keeps the calls
        ended while the session store is unreachable (without one, their records are
        lost, loudly); `health` learns what answers; `in_progress` counts the calls
        started here and not ended (for IVR_MAX_CALLS)."""
        self.flows, self.sessions, self.runner = flows, sessions, runner
        self.writer, self.metrics, self.spool = writer, metrics, spool
        self.health = health or StoreHealth()
        self.in_progress = in_progress or InProgress()
        self.keys = keys  # for the links that let a customer go on by text

    def start(self, route: Route, sid: str, direction: str) -> Session:
        """A new call's session on the route's flow (not yet stepped), counted as started.
        `direction` is Twilio's: inbound, or outbound-api / outbound-dial."""
        flow = route.flow
        session = new_session(flow, sid)
        session.experiment, session.variant = route.experiment, route.variant
        session.direction = "outbound" if direction.startswith("out") else "inbound"
        self.metrics.started(session)
        self.in_progress.started(sid, time.monotonic())
        log.info(
            "call started on %s version %s%s",
            flow.id,
            flow.version,
            f" (experiment {route.experiment})" if route.experiment else "",
        )
        return session

    async def history(self, flow: Flow, caller: str, now: float) -> Mapping[str, Any]:
        """The caller's history for a call starting now (`CallStarted.history`): empty for
        rehearsals, which keep no records, and when the records store fails."""
        writer = self.writer
        if writer is None:
            return EMPTY.as_vars()
        return await history.of_caller(writer.records, writer.keys, flow, caller, now)

    async def save(self, session: Session, reply: str) -> None:
        """Save the session with the answer a retried request gets; an ended call is
        counted and its record written, once."""
        try:
            await self.sessions.save(session, reply)
            if session.handoff is not None:
                await self.link_handoff(session)
        except Exception:
            self.metrics.store_error("sessions", "save")
            raise
        if session.outcome is None:
            self.in_progress.turned(session.call_id, time.monotonic())
            return
        self.in_progress.ended(session.call_id)  # over: it may await its recording's status
        if not session.ended:
            return
        log.info(
            "call ended: %s",
            session.outcome,
            extra={"outcome": session.outcome, "node": session.node, "reason": session.reason},
        )
        self.metrics.ended(session)
        self.record(session)

    async def link_handoff(self, session: Session) -> None:
        """Let the caller's next text message on the handoff's channel, within its window,
        find this conversation (`ivr.channels.conversations`)."""
        handoff = session.handoff or {}
        caller = str(session.vars.get("caller", ""))
        customer = self.keys.customer_id(caller) if self.keys and caller else None
        keep = float(handoff.get("until", 0)) - time.time()
        if customer is not None and keep > 0:
            await self.sessions.link(f"{handoff['channel']}:{customer}", session.call_id, keep)

    def record(self, session: Session) -> None:
        """Queue the record of an ended call (or its late signal); rehearsals have none."""
        if self.writer is not None:
            self.writer.submit(session)

    def recorded(self, sid: str) -> bool:
        """Whether this process wrote the call's record: its session may be gone since."""
        return self.writer is not None and self.writer.wrote(sid)

    async def hang_up(self, stored: Stored, status: str | None, at: float) -> Session:
        """The caller left before the flow ended: the call is abandoned where it was (failed
        when its flow is not loaded any more). `status` is Twilio's final CallStatus, when
        known. The caller of this holds the call's lock."""
        flow = self.flows.get(stored.session.flow_id, stored.session.version)
        if flow is None:
            error = f"flow {stored.session.flow_id} was not loaded when the caller left"
            session = self.runner.fail(None, stored.session, error).session
        else:
            session, _ = step(flow, stored.session, HangUp(at=at))
        session.call_status = status
        log.info("caller left at %s", session.node)
        await self.save(session, stored.reply)
        return session

    async def recount(self) -> int:
        """Let go of the calls counted in progress here that the store has ended (another
        process took their status callback, or reaped them); returns how many."""
        gone = 0
        for sid in self.in_progress.calls():
            stored = await self.sessions.load(sid)  # None: not saved yet, or expired (window)
            if stored is not None and stored.session.ended:
                self.in_progress.ended(sid)
                gone += 1
        return gone

    # -- the session store unreachable -------------------------------------------------------

    def fallback(self, flow: Flow | None, session: Session, error: str) -> Turn:
        """End a call ivr cannot go on with: the caller hears the flow's apology, then goes
        to its `fallback` transfer (outcome transferred, reason on_error:store); without
        one, the call fails (`Runner.fail`: the apology, then a hang-up)."""
        node = flow.nodes.get(flow.fallback) if flow is not None and flow.fallback else None
        if flow is None or node is None or not isinstance(node.spec, Transfer):
            return self.runner.fail(flow, session, error)
        language = call_language(flow, session)
        other = None if language == flow.language else language
        own = flow.own("apology", language)
        said = apologies.apology("fallback", language)
        apology = act.Prompt(own or said.parts, other)
        failed = self.runner.fail(flow, session, error, apology)
        s, spec = failed.session, node.spec
        where = s.node or node.name
        ctx = {**flow.vars, **s.vars, "reason": STORE_DOWN}
        queue = _value(spec.queue_in, ctx)
        s.outcome, s.reason, s.reason_at, s.queue = "transferred", STORE_DOWN, where, queue
        s.node = node.name
        s.path.append(node.name)
        actions: list[act.Action] = [apology]
        words = _rendered(spec.say.in_language(language) if spec.say else None, ctx)
        if words:
            actions.append(act.Prompt(words, other))
        attributes = {k: str(v) for k, v in ((k, _value(r, ctx)) for k, r in spec.attributes) if v}
        to = str(spec.to(ctx))  # static: the compiler checked
        actions.append(
            act.Transfer(to, queue, STORE_DOWN, attributes, spec.caller_id, spec.timeout)
        )
        log.warning("the caller goes to the fallback transfer %s", node.name)
        return Turn(s, actions)

    async def keep(self, session: Session, reply: str, counted: bool = True) -> str:
        """Keep an ended call the session store could not take in the spool, until it can;
        returns the reply to send (the first one kept, when a retried webhook comes). The
        call is counted as ended now, unless not `counted` (a status callback: its call
        may have ended before, and is counted when the store says)."""
        self.in_progress.ended(session.call_id)
        if self.spool is None:
            log.error("no spool: the record of this call is lost (outcome %s)", session.outcome)
            return reply
        async with self.spool.lock(session.call_id):
            kept = await self.spool.get(session.call_id)
            if kept is not None:
                return kept.reply
            try:
                await self.spool.put(session, reply, counted)
            except Exception:  # a full disk, say: the caller is answered all the same
                log.exception("the call could not be spooled: its record is lost")
                return reply
        log.info(
            "call ended while its session store is unreachable: %s (spooled)",
            session.outcome,
            extra={"outcome": session.outcome, "node": session.node, "reason": session.reason},
        )
        if counted:
            self.metrics.ended(session)
        return reply

    async def check_stores(self) -> None:
        """Ping the session store (PING, or loading a call that never exists) and, once it
        answers, give it back what the spool kept."""
        try:
            if isinstance(self.sessions, Pingable):
                await self.sessions.ping()
            else:
                await self.sessions.load(PROBE)
        except Exception as e:  # unreachable, or failing: not ready either way
            self.metrics.store_error("sessions", "ping")
            why = e.why if isinstance(e, StoreUnavailable) else f"{type(e).__name__}: {e}"
            self.health.failed("sessions", why)
            return
        self.health.answered("sessions")
        if self.spool is not None and len(self.spool):
            try:
                settled = await self.settle()
            except StoreUnavailable as e:
                self.health.failed("sessions", e.why)
                return
            log.info("%d spooled call(s) given back to the session store", settled)

    async def settle(self) -> int:
        """Give the session store the calls the spool kept, and the writer their records:
        each call once (a call the store knows in progress ends as the spool says; one it
        knows ended learns what the spool learnt after). Returns how many were given back;
        raises StoreUnavailable when the store stops answering."""
        assert self.spool is not None
        done = 0
        for sid in self.spool.calls():
            async with self.spool.lock(sid):
                kept = await self.spool.get(sid)
                try:
                    if kept is not None:
                        await self._settle(kept.session, kept.reply, kept.counted)
                except StoreUnavailable:
                    raise
                except Exception:  # this call's lock still held, say: the next round
                    log.exception("spooled call %s not given back yet", sid)
                    continue
                await self.spool.drop(sid)
                done += 1
        return done

    async def _settle(self, kept: Session, reply: str, counted: bool) -> None:
        async with self.sessions.lock(kept.call_id):
            stored = await self.sessions.load(kept.call_id)
            if stored and not stored.session.ended and kept.outcome == "abandoned":
                # a hang-up told while the store was away: the call is abandoned where it was
                await self.hang_up(stored, kept.call_status, kept.ended_at or kept.updated_at)
                return
            ended = stored is not None and stored.session.ended
            session = settled(kept, stored.session if stored is not None else None)
            if session is None:
                return
            await self.sessions.save(session, stored.reply if stored and ended else reply)
            if not counted and not ended:
                self.metrics.ended(session)
            self.record(session)


def settled(kept: Session, stored: Session | None) -> Session | None:
    """What the store keeps of a call spooled as `kept`, knowing it as `stored`: `kept`
    when it knows nothing or `kept` is that session stepped on; the late fields `kept`
    learnt when the store has the call ended (None: nothing new); else the call as the
    store knows it, ended as `kept` ended it (a stub made without the session)."""
    if stored is None:
        return kept
    if stored.ended:
        late = stored.copy()
        late.call_status = late.call_status or kept.call_status
        late.transfer_result = late.transfer_result or kept.transfer_result
        same = (late.call_status, late.transfer_result) == (
            stored.call_status,
            stored.transfer_result,
        )
        return None if same else late
    if kept.started_at == stored.started_at:
        return kept
    s = stored.copy()
    s.outcome, s.error, s.ended_at, s.waiting = kept.outcome, kept.error, kept.ended_at, None
    s.reason, s.queue = kept.reason, kept.queue
    s.reason_at = stored.node or kept.reason_at if kept.outcome == "transferred" else None
    s.call_status, s.transfer_result = kept.call_status, kept.transfer_result
    s.path += kept.path
    s.node, s.turn = kept.node or s.node, max(s.turn, kept.turn)
    for name in s.sensitive:  # an ended call keeps no sensitive value
        s.vars.pop(name, None)
    return s


def _rendered(prompt: PromptTemplate | None, ctx: dict[str, Any]) -> tuple[Any, ...]:
    """A prompt of the fallback transfer, or nothing when it needs what the call lost."""
    if prompt is None:
        return ()
    try:
        return prompt.render(ctx)
    except Exception:
        return ()


def _value(render: Any, ctx: dict[str, Any]) -> Any:
    try:
        return render(ctx)
    except Exception:
        return None
