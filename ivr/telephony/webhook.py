"""Twilio voice webhooks: parse the form, run the turn, render TwiML, save the session.

Every answer is TwiML with status 200, even when something broke: Twilio plays
an error message for anything else, and a caller must never hear that. Every
answer comes within the turn budget: a backend slower than that keeps the caller
on hold (`/twilio/hold`) until its answer is in, on whichever process Twilio's
redirect reaches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse
from yarl import query_to_pairs

from ivr.config import TWILIO_WAIT
from ivr.engine import actions as act
from ivr.engine.apologies import apology
from ivr.engine.engine import APOLOGY, apology_of, fits, step
from ivr.engine.events import (
    CallStarted,
    Digits,
    Event,
    FetchResult,
    NoInput,
    Recorded,
    RecordingStatus,
    Speech,
    TransferEnded,
)
from ivr.engine.session import Session
from ivr.flow.model import Flow, Transfer
from ivr.logs import call_sid, hidden, hide
from ivr.registry import Route
from ivr.runner import Turn, done_within
from ivr.store.base import PendingFetch, Stored, StoreUnavailable
from ivr.telephony import twiml
from ivr.telephony.admission import Admission
from ivr.telephony.calls import Calls
from ivr.telephony.outbound import decode_vars
from ivr.telephony.signature import SignatureCheck

if TYPE_CHECKING:
    from ivr.telephony.stream import StreamRoute

log = logging.getLogger("ivr.webhook")

_SID = re.compile(r"CA[0-9a-fA-F]{32}")  # matched whole: `$` would let a newline through
_KEYS = re.compile(r"[^0-9*#]")
HOLD_WAIT = 1.0  # a hold webhook waits this long for the answer before more hold music
BEAT = 1.0  # seconds between the signs of life of a process making a pending backend call
LOST_AFTER = 4.0  # a pending call whose maker showed no sign of life for this long is lost
ENDED_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
# Twilio's DialCallStatus and QueueResult values; "hangup": the caller left the queue
TRANSFER_RESULTS = frozenset(
    "completed answered busy no-answer failed canceled bridged bridging-in-process queue-full"
    " error hangup leave redirected redirected-from-bridged system-error".split()
)
TAKEN = ("completed", "answered", "bridged", "hangup")  # nothing more to say to the caller


# what the webhooks say themselves, in English when no flow tells them the call's language
NOT_IN_SERVICE = apology("not_in_service")
LOST_CALL = apology("lost_call")
NO_AGENT = twiml.render([apology("no_agent"), act.Hangup("transferred")], twiml.Voice(), 0)
BROKEN = twiml.render([APOLOGY, act.Hangup("failed")], twiml.Voice(), 0)
EMPTY = str(VoiceResponse().to_xml())

Handler = Callable[[web.Request, Mapping[str, str], float], Awaitable[str]]
Speak = Callable[[Sequence[act.Action], Flow | None], Awaitable[list[act.Action]]]


def xml(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/xml", charset="utf-8")


class TwilioWebhooks:
    ROUTES = (
        *("voice", "gather", "recorded", "recording", "hold", "dial", "wait", "whisper"),
        *("status", "connect"),
    )

    def __init__(
        self,
        calls: Calls,
        signature: SignatureCheck,
        voices: Callable[[Flow | None], twiml.Voice],
        budget: float = 10.0,
        stream: StreamRoute | None = None,
        admission: Admission | None = None,
        speak: Speak | None = None,
    ) -> None:
        """`stream`, when given, sends the calls it wants to Media Streams; `admission`
        says which new calls are taken (default: 20 a minute from one number, 500 in
        progress); `speak` turns prompts Twilio has no voice for into audio made here
        (`spoken_here`)."""
        self.speak = speak
        self.calls, self.flows, self.sessions = calls, calls.flows, calls.sessions
        self.admission = admission or Admission()
        self.runner, self.metrics = calls.runner, calls.metrics
        self.signature, self.voices, self.stream = signature, voices, stream
        self.budget = budget
        self.handlers = {name: self._guard(getattr(self, name)) for name in self.ROUTES}
        # this process's name on the backend calls it makes for callers on hold
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._holding: dict[str, asyncio.Task[None]] = {}  # call -> its pending call's watch

    async def close(self, wait: float = 5.0) -> None:
        """Give pending backend calls a moment to finish and leave their answers."""
        if self._holding:
            await asyncio.wait(set(self._holding.values()), timeout=wait)

    def _guard(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Signature check, form parsing and the never-a-traceback rule around a handler."""
        timed = self.metrics.webhook(handler.__name__)  # the route's, looked up once

        async def guarded(request: web.Request) -> web.StreamResponse:
            received = time.monotonic()
            try:
                pairs = await _form(request)
            except web.HTTPException:
                raise  # 413 for a body over the limit
            except Exception as e:  # a body that is not a form
                self.metrics.rejected("bad_request")
                log.warning("refused %s: unreadable form (%s)", request.path, type(e).__name__)
                raise web.HTTPBadRequest(text="expected a form") from None
            fields = dict(pairs)
            sid = fields.get("CallSid", "")
            valid_sid = _SID.fullmatch(sid) is not None
            token = call_sid.set(sid if valid_sid else None)
            secrets_ = hidden.set(())
            hide(fields.get("Digits"), fields.get("SpeechResult"))
            try:
                why = self.signature.problem(request, pairs)
                if why:
                    self.metrics.rejected("signature")
                    log.warning(
                        "refused %s: %s", request.path, why, extra={"remote": request.remote}
                    )
                    raise web.HTTPForbidden(text="invalid Twilio signature")
                if not valid_sid:
                    self.metrics.rejected("bad_request")
                    log.warning("refused %s: missing or malformed CallSid", request.path)
                    raise web.HTTPBadRequest(text="CallSid missing or malformed")
                try:
                    spooled = self.calls.spool is not None and sid in self.calls.spool
                    body = None
                    if spooled:  # ended while the store was away: answered from the spool
                        body = await self._spooled(handler.__name__, request, fields)
                    if body is None:
                        body = await handler(request, fields, received)
                except web.HTTPException:
                    raise  # a refusal the handler chose (409 for a stray callback)
                except StoreUnavailable as e:
                    body = await self._unreachable(handler.__name__, request, fields, e)
                except Exception as e:
                    log.exception("webhook %s failed", request.path)
                    body = await self._give_up(request, fields, e)
                timed(time.monotonic() - received)
                return xml(body)
            finally:
                hidden.reset(secrets_)
                call_sid.reset(token)

        return guarded

    # -- routes ------------------------------------------------------------------------------

    async def voice(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        sid = form["CallSid"]
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is not None:
                return stored.reply  # Twilio retried the first webhook
            route = self._route(request, form)
            if route is None:
                log.warning("no flow for called number %s", form.get("To", "")[:32])
                session = self._unstarted(request, form)
                failed = self.runner.fail(
                    None, session, "no flow for the called number", NOT_IN_SERVICE
                )
                return await self._answer(None, failed)
            flow = route.flow
            now = time.monotonic()
            if not self.admission.room(self.calls.in_progress.count(now)):
                self.metrics.rejected("max_calls")
                log.warning(
                    "refused a new call: %d calls in progress (IVR_MAX_CALLS)",
                    self.admission.max_calls,
                )
                busy = apology("lines_busy", flow.language)
                refused = self.runner.fail(flow, self._unstarted(request, form), "lines_busy", busy)
                return await self._answer(flow, refused)
            # a number calling too often: not ours calling out (a campaign's every call)
            outbound = form.get("Direction", "").startswith("out")
            if not outbound and not self.admission.admit(form.get("From", ""), now):
                self.metrics.rejected("caller_rate")
                log.warning("refused a new call: its number called too often this minute")
                busy = apology("busy", flow.language)
                refused = self.runner.fail(flow, self._unstarted(request, form), "busy", busy)
                return await self._answer(flow, refused)
            caller, called = form.get("From", "")[:32], form.get("To", "")[:32]
            given, answered_by = {}, ""
            if outbound:  # we called: the person is the one called
                caller, called = called, caller
                given, answered_by = self._given(request), form.get("AnsweredBy", "")[:32]
            if self.stream is not None and self.stream.wanted(flow):  # the stream starts the call
                started = CallStarted(caller, called, given, answered_by, at=time.time())
                return self.stream.connect(request, route, form, started)
            now = time.time()
            known = await self.calls.history(flow, caller, now)  # before the greeting
            started = CallStarted(caller, called, given, answered_by, at=now, history=known)
            session = self.calls.start(route, sid, form.get("Direction", ""))
            return await self._advance(flow, session, started, received)

    def _given(self, request: web.Request) -> dict[str, Any]:
        """The variables an outbound call starts with (`ivr notify --vars`): only from a
        signed URL (Twilio signs the query too); none when they cannot be read."""
        text = request.query.get("vars")
        if not text:
            return {}
        if self.signature.insecure:
            log.warning("an outbound call's vars are ignored: signatures are not checked")
            return {}
        try:
            return decode_vars(text)
        except ValueError as e:
            log.warning("an outbound call's vars are ignored: %s", e)
            return {}

    async def gather(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        now = time.time()
        if request.query.get("silence"):
            event: Event = NoInput(at=now)
        elif form.get("Digits"):
            event = Digits(_KEYS.sub("", form["Digits"])[:64], at=now)
        elif form.get("SpeechResult", "").strip():
            confidence = _confidence(form.get("Confidence"))
            event = Speech(form["SpeechResult"][:500], confidence, at=now)
        else:
            event = NoInput(at=now)
        return await self._continue(request, form, event, received)

    async def recorded(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        seconds = _seconds(form.get("RecordingDuration", ""))
        reference = "" if request.query.get("empty") else form.get("RecordingUrl", "")[:300]
        event = Recorded(reference, seconds, at=time.time())
        return await self._continue(request, form, event, received)

    async def hold(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        """The caller is on hold: answer with the backend's result once it is in, and with
        more hold music meanwhile. The lock is not held while waiting."""
        sid, turn = form["CallSid"], request.query.get("t", "")
        while True:
            async with self.sessions.lock(sid):
                stored = await self.sessions.load(sid)
                if stored is None:
                    return await self._lost(request, form)
                session = stored.session
                if session.ended or turn != str(session.turn) or session.waiting != "fetch":
                    return stored.reply  # a retried hold webhook, or one the result overtook
                flow = self.flows.get(session.flow_id, session.version)
                if flow is None:
                    return await self._flow_gone(stored)
                result = self._result(await self.sessions.get_fetch(sid), session)
                if result is not None:
                    hide(*(session.vars.get(name) for name in session.sensitive))
                    await self.sessions.drop_fetch(sid)
                    return await self._advance(flow, session, result, received)
            left = HOLD_WAIT - (time.monotonic() - received)
            if left <= 0:
                still = act.Hold(flow.hold_music, 0.0 if flow.hold_music else 1.0)
                return twiml.render([still], self.voices(flow), session.turn)
            watch = self._holding.get(sid)
            if watch is not None:  # this process makes the call: wake when its answer is in
                await asyncio.wait({watch}, timeout=left)
            else:
                await asyncio.sleep(min(left, 0.1))

    async def recording(
        self, request: web.Request, form: Mapping[str, str], received: float
    ) -> str:
        """A recording is stored (or failed): its task is done and its URL kept; the call's
        outcome, when the flow is over, is final now and its record written."""
        status = form.get("RecordingStatus", "")[:20]
        url = form.get("RecordingUrl", "")[:300] if status == "completed" else ""
        sid = form["CallSid"]
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is None or stored.session.ended:
                log.info("a recording's status for a call with nothing to learn: %s", status)
                return EMPTY
            flow = self.flows.get(stored.session.flow_id, stored.session.version)
            if flow is None:
                return EMPTY  # kept as it is: the reaper ends it
            session, _ = step(flow, stored.session, RecordingStatus(status, url, at=time.time()))
            await self.calls.save(session, stored.reply)
        return EMPTY

    async def wait(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        """What a caller waiting in a queue hears (`<Enqueue waitUrl>`, asked again each time
        it ends): place in line and expected wait, the leave key's offer, hold music. The
        leave key pressed (`?leave=1`) takes the caller out of the queue (`<Leave>`)."""
        stored = await self.sessions.load(form["CallSid"])  # read only: no lock
        session = stored.session if stored is not None else None
        flow = self.flows.get(session.flow_id, session.version) if session else None
        node = flow.nodes.get(session.node or "") if flow and session else None
        spec = node.spec if node is not None else None
        if session is None or flow is None or not isinstance(spec, Transfer) or not spec.wait:
            return twiml.waiting(None, self.voices(flow), 0, None, None)
        if request.query.get("leave"):
            if spec.wait.leave_key and form.get("Digits", "")[:1] == spec.wait.leave_key:
                return twiml.leave()
        position = _count(form.get("QueuePosition", ""))
        wait = _count(form.get("AvgQueueTime", ""))
        offer = spec.wait.leave_prompt
        said = offer.render(session.vars) if offer is not None else ()
        return twiml.waiting(
            spec.wait, self.voices(flow), session.turn, position, wait, act.Prompt(said)
        )

    async def whisper(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        """Said to the agent who answered a transfer, before the caller is put through:
        the text is in the signed URL (the engine made it); the voice is the caller's
        flow's, found through the parent call."""
        text = request.query.get("say", "")[:1000]
        flow = None
        parent = form.get("ParentCallSid", "")
        if _SID.fullmatch(parent):
            stored = await self.sessions.load(parent)
            if stored is not None:
                flow = self.flows.get(stored.session.flow_id, stored.session.version)
        said: list[act.Action] = [act.Prompt((act.Text(text),))] if text else []
        return twiml.render(said, self.voices(flow), 0) if said else EMPTY

    async def dial(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        """The end of a transfer: the record learns whether an agent took the call, and a
        flow that goes on after it (a callback offer, a survey) does."""
        said = form.get("DialCallStatus") or form.get("QueueResult") or ""
        result = said if said in TRANSFER_RESULTS else "other"
        sid = form["CallSid"]
        log.info("transfer ended: %s", result)
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is not None and stored.session.waiting == "transfer":  # it goes on
                told = stored.session.copy()
                told.transfer_result = result
                self.metrics.transfer_result(told)
                ended = TransferEnded(result, at=time.time())
                return await self._step(request, stored, ended, received)
            session = stored.session if stored else self._unstarted(request, form)
            flow = self.flows.get(session.flow_id, session.version)  # says the apology
            if stored and stored.session.ended and stored.session.transfer_result is None:
                session = stored.session.copy()
                session.transfer_result = result
                await self.sessions.save(session, stored.reply)
                self.calls.record(session)  # the record again, now with the result
                self.metrics.transfer_result(session)
        return EMPTY if result in TAKEN else self._no_agent(flow)

    async def connect(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        """A call's Media Stream closed (`<Connect action>`): the TwiML the stream driver
        stored when the flow ended or handed the call on (`<Dial>`, `<Enqueue>`,
        `<Hangup>`, `<Record>`). A stream that closed before that fails the call."""
        sid = form["CallSid"]
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is None:
                return await self._lost(request, form)
            session = stored.session
            if session.outcome is not None or session.waiting in ("record", "transfer"):
                return stored.reply
            flow = self.flows.get(session.flow_id, session.version)
            error = "the media stream closed before the flow ended"
            return await self._answer(flow, self.runner.fail(flow, session, error))

    async def status(self, request: web.Request, form: Mapping[str, str], received: float) -> str:
        """The call is over: a caller who left before the flow ended abandoned it; a call
        the flow ended keeps its outcome and learns Twilio's final status."""
        sid, status = form["CallSid"], form.get("CallStatus", "")
        if status not in ENDED_STATUSES:
            return EMPTY
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is None and self.calls.recorded(sid):
                return EMPTY  # a retried callback: the call's record was final, its session gone
            if stored is None:
                session = self._unstarted(request, form)
                session.outcome = "failed" if status == "failed" else "abandoned"
                session.ended_at, session.call_status = session.started_at, status
                await self.calls.save(session, EMPTY)
            elif not stored.session.ended and (
                stored.session.outcome or stored.session.medium != "voice"
            ):
                # over, but not final (its recording awaited, its window for text open), or
                # going on by text: the record learns the call's status
                session = stored.session.copy()
                session.call_status = status
                await self.calls.save(session, stored.reply)
            elif not stored.session.ended:
                await self.calls.hang_up(stored, status, time.time())
            elif stored.session.call_status is None:  # a late signal: the record learns it
                session = stored.session.copy()  # (a retried callback tells it again: idempotent)
                session.call_status = status
                self.calls.record(session)
        return EMPTY

    async def reap(self, before: float) -> int:
        """Close calls in progress that nothing was heard of since `before`: their status
        callback never came (or was lost). They end abandoned, with status unknown, at the
        time of their last webhook. Returns how many were closed."""
        closed = 0
        for sid in await self.sessions.stale(before):
            async with self.sessions.lock(sid):
                stored = await self.sessions.load(sid)
                if stored is None or stored.session.ended or stored.session.updated_at >= before:
                    continue
                session = stored.session
                if session.medium != "voice" or (session.handoff and session.outcome):
                    continue  # text conversations (and calls' windows for one) end on their own
                closed += 1
                session = stored.session
                flow = self.flows.get(session.flow_id, session.version)
                if session.outcome is not None and flow is not None:
                    log.warning("no recording status came: the call's outcome is final without")
                    unknown = RecordingStatus("unknown", at=session.updated_at)
                    await self.calls.save(step(flow, session, unknown)[0], stored.reply)
                    continue
                log.warning("no status callback came: the call is closed as abandoned")
                await self.calls.hang_up(stored, "unknown", stored.session.updated_at)
        return closed

    # -- the turn ------------------------------------------------------------------------------

    async def _continue(
        self, request: web.Request, form: Mapping[str, str], event: Event, received: float
    ) -> str:
        async with self.sessions.lock(form["CallSid"]):
            stored = await self.sessions.load(form["CallSid"])
            if stored is None:
                return await self._lost(request, form)
            return await self._step(request, stored, event, received)

    async def _step(
        self, request: web.Request, stored: Stored, event: Event, received: float
    ) -> str:
        """Step a call loaded under its lock by `event`, once: a retried or late webhook
        gets the answer already given, a stray one a 409."""
        session = stored.session
        hide(*(session.vars.get(name) for name in session.sensitive))
        if session.ended or request.query.get("t", "") != str(session.turn):
            return stored.reply  # a retried or late webhook: same answer, no second step
        if not fits(session, event):  # e.g. a recording callback while a menu listens
            self.metrics.rejected("mismatched")
            log.warning("refused %s: the call waits for %s", request.path, session.waiting)
            raise web.HTTPConflict(text=f"the call is not waiting for {request.path}")
        flow = self.flows.get(session.flow_id, session.version)
        if flow is None:
            return await self._flow_gone(stored)
        return await self._advance(flow, session, event, received)

    async def _advance(self, flow: Flow, session: Session, event: Event, received: float) -> str:
        """Run the turn within what is left of the budget, then answer and save."""
        budget = self.budget - (time.monotonic() - received)
        turn = await self.runner.run(flow, session, event, budget)
        if time.monotonic() - received > TWILIO_WAIT:  # Twilio has played its error
            error = f"answered after Twilio's {TWILIO_WAIT:g} s: the caller heard an error"
            turn = self.runner.fail(flow, turn.session, error)
        self.metrics.turn(flow.id)
        if turn.in_flight is not None:
            try:
                await self._hold_on(turn)
            except StoreUnavailable as e:
                turn.in_flight.task.cancel()
                return await self._store_down(flow, turn.session, e)
        return await self._answer(flow, turn)

    async def _answer(self, flow: Flow | None, turn: Turn) -> str:
        actions = await self.speak(turn.actions, flow) if self.speak else turn.actions
        reply = twiml.render(actions, self.voices(flow), turn.session.turn)
        try:
            await self.calls.save(turn.session, reply)
        except StoreUnavailable as e:
            return await self._store_down(flow, turn.session, e, reply)
        return reply

    # -- the session store unreachable -------------------------------------------------------

    async def _store_down(
        self, flow: Flow | None, session: Session, error: StoreUnavailable, reply: str = ""
    ) -> str:
        """The turn is done but cannot be saved: a call it ended keeps its ending (`reply`);
        any other goes to the flow's fallback. Either way it is spooled."""
        self._unreachable_store(error)
        if not (session.ended and reply):
            turn = self.calls.fallback(flow, session, str(error))
            session = turn.session
            reply = twiml.render(turn.actions, self.voices(flow), session.turn)
        return await self.calls.keep(session, reply)

    async def _unreachable(
        self, route: str, request: web.Request, form: Mapping[str, str], error: StoreUnavailable
    ) -> str:
        """The store failed before the call's session was read: answer from the request
        alone (its flow is found by the called number), and spool what the call learnt."""
        try:
            return await self._without_store(route, request, form, error)
        except Exception:  # never a 500 to Twilio
            log.exception("webhook %s failed without its store", request.path)
            return self._broken(request, form)

    async def _without_store(
        self, route: str, request: web.Request, form: Mapping[str, str], error: StoreUnavailable
    ) -> str:
        session = self._unstarted(request, form)
        if route in ("status", "dial"):
            self._unreachable_store(error)
        if route == "status":
            status = form.get("CallStatus", "")
            if status in ENDED_STATUSES:  # the call ends where the store has it, once back
                session.outcome = "failed" if status == "failed" else "abandoned"
                session.ended_at, session.call_status = session.started_at, status
                await self.calls.keep(session, EMPTY, counted=False)
            return EMPTY
        if route == "dial":
            said = form.get("DialCallStatus") or form.get("QueueResult") or ""
            log.warning("the result of a transfer is not kept: its session store is unreachable")
            flow = self.flows.get(session.flow_id, session.version)  # its number's
            return EMPTY if said in TAKEN else self._no_agent(flow)
        turn = request.query.get("t", "")
        session.turn = int(turn) if turn.isdigit() and len(turn) < 6 else 0
        return await self._store_down(
            self.flows.get(session.flow_id, session.version), session, error
        )

    def _unreachable_store(self, error: StoreUnavailable) -> None:
        log.error("%s: the call goes on without it", error)
        self.metrics.store_error(error.store, error.operation)
        self.calls.health.failed(error.store, error.why)

    async def _spooled(
        self, route: str, request: web.Request, form: Mapping[str, str]
    ) -> str | None:
        """A webhook of a call spooled while its store was away: a retry gets its reply, a
        transfer's end and the status callback are kept with it. None when the spool gave
        the call back to the store meanwhile (the handler answers from the store)."""
        spool, sid = self.calls.spool, form["CallSid"]
        assert spool is not None
        async with spool.lock(sid):
            kept = await spool.get(sid)
            if kept is None:
                return None
            session = kept.session.copy()
            if route == "dial":
                said = form.get("DialCallStatus") or form.get("QueueResult") or ""
                if session.transfer_result is None:
                    session.transfer_result = said if said in TRANSFER_RESULTS else "other"
                    self.metrics.transfer_result(session)
                flow = self.flows.get(session.flow_id, session.version)
                reply = EMPTY if said in TAKEN else self._no_agent(flow)
            elif route == "status":
                status = form.get("CallStatus", "")
                if status in ENDED_STATUSES and session.call_status is None:
                    session.call_status = status
                reply = EMPTY
            else:
                return kept.reply
            late = (session.transfer_result, session.call_status)
            if late != (kept.session.transfer_result, kept.session.call_status):
                await spool.put(session, kept.reply, kept.counted)
            return reply

    # -- callers on hold -------------------------------------------------------------------

    async def _hold_on(self, turn: Turn) -> None:
        """Keep the turn's backend call going past the answer: the store has it before the
        session says the call waits for it, and its result once it comes."""
        assert turn.in_flight is not None
        sid = turn.session.call_id
        pending = PendingFetch(turn.session.turn, self.owner, turn.in_flight.deadline, time.time())
        await self.sessions.put_fetch(sid, pending)
        watch = asyncio.create_task(self._watch(sid, pending, turn.in_flight.task))
        self._holding[sid] = watch
        watch.add_done_callback(lambda done: self._unhold(sid, done))

    def _unhold(self, sid: str, watch: asyncio.Task[None]) -> None:
        if self._holding.get(sid) is watch:
            del self._holding[sid]

    async def _watch(
        self, sid: str, pending: PendingFetch, task: asyncio.Task[FetchResult]
    ) -> None:
        """Show signs of life while the call runs, then write its result."""
        token = call_sid.set(sid)
        try:
            while not await done_within(task, BEAT):
                pending = replace(pending, beat=time.time())
                await self.sessions.put_fetch(sid, pending)
            result = replace(task.result(), at=time.time())
            await self.sessions.put_fetch(sid, replace(pending, result=result))
        except Exception:  # the store may be down: the hold then ends as a timeout
            log.exception("the answer of a backend call on hold could not be kept")
        finally:
            call_sid.reset(token)

    def _result(self, pending: PendingFetch | None, session: Session) -> FetchResult | None:
        """The answer for a call on hold; a timeout when the call is lost or overdue; None
        while it is still coming."""
        now = time.time()
        if pending is None or pending.turn != session.turn:
            error = "the backend call was lost: the server making it stopped"
        elif pending.result is not None:
            return pending.result
        elif now > pending.deadline + BEAT:
            error = "timed out while the caller was on hold"
        elif now - pending.beat > LOST_AFTER:
            error = "the backend call was lost: the server making it stopped answering"
        else:
            return None
        log.warning("backend call at %s: %s", session.node, error)
        return FetchResult(error=error, at=now)  # never sent again: a POST may have worked

    # -- calls that fail ---------------------------------------------------------------------

    async def _lost(self, request: web.Request, form: Mapping[str, str]) -> str:
        log.warning("no session for this call (expired, or never started here)")
        session = self._unstarted(request, form)
        flow = self.flows.get(session.flow_id, session.version)  # its number's: its language
        lost = apology("lost_call", flow.language) if flow else LOST_CALL
        return await self._answer(flow, self.runner.fail(flow, session, "no session", lost))

    async def _flow_gone(self, stored: Stored) -> str:
        session = stored.session
        error = f"flow {session.flow_id} version {session.version} is not loaded"
        log.error(error)
        return await self._answer(None, self.runner.fail(None, session, error))

    def _no_agent(self, flow: Flow | None) -> str:
        """A transfer ended with no agent taking the call: the caller hears so (in the
        flow's voice and language) and is hung up on."""
        if flow is None:
            return NO_AGENT
        sorry: list[act.Action] = [apology("no_agent", flow.language), act.Hangup("transferred")]
        return twiml.render(sorry, self.voices(flow), 0)

    def _broken(self, request: web.Request, form: Mapping[str, str]) -> str:
        """The last resort after an internal error: the apology of the flow the called
        number routes to, in its voice; in English when even that cannot be had."""
        try:
            route = self._route(request, form)
            if route is None:
                return BROKEN
            sorry: list[act.Action] = [apology_of(route.flow), act.Hangup("failed")]
            return twiml.render(sorry, self.voices(route.flow), 0)
        except Exception:
            log.exception("the apology could not be rendered")
            return BROKEN

    async def _give_up(
        self, request: web.Request, form: Mapping[str, str], error: Exception
    ) -> str:
        """After an internal error the caller hears the apology and is hung up on."""
        why = f"internal error: {type(error).__name__}"
        try:
            async with self.sessions.lock(form["CallSid"]):
                stored = await self.sessions.load(form["CallSid"])
                session = self._unstarted(request, form) if stored is None else stored.session
                flow = self.flows.get(session.flow_id, session.version)
                if session.ended:
                    return stored.reply if stored else EMPTY
                failed = self.runner.fail(flow, session, why)
                try:
                    reply = twiml.render(failed.actions, self.voices(flow), failed.session.turn)
                except Exception:  # rendering may be what broke
                    reply = BROKEN
                await self.calls.save(failed.session, reply)
                return reply
        except Exception:  # the store itself may be what failed: the log has it all
            log.exception("the failed call could not be recorded")
            return self._broken(request, form)

    def _route(self, request: web.Request, form: Mapping[str, str]) -> Route | None:
        """The flow (and experiment variant) a new call on this number runs."""
        query = request.query
        to, caller, sid = form.get("To", ""), form.get("From", ""), form["CallSid"]
        return self.flows.route_call(to, caller, sid, query.get("flow"), query.get("variant"))

    def _unstarted(self, request: web.Request, form: Mapping[str, str]) -> Session:
        """A session for a call no flow ever stepped: on the flow its number routes to (the
        variant its caller gets, when that flow runs an experiment)."""
        sid = form["CallSid"]
        route = self._route(request, form)
        # an outbound call nobody answered (busy, no-answer) is reported as outbound
        direction = "outbound" if form.get("Direction", "").startswith("out") else "inbound"
        if route is None:
            return Session(sid, "unknown", "", started_at=time.time(), direction=direction)
        return Session(
            sid,
            route.flow.id,
            route.flow.version,
            started_at=time.time(),
            experiment=route.experiment,
            variant=route.variant,
            direction=direction,
        )


async def _form(request: web.Request) -> list[tuple[str, str]]:
    """The fields of Twilio's POST: always a UTF-8 `application/x-www-form-urlencoded` form
    (parsed as aiohttp's `post()` does, without the multipart handling nobody here needs)."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise ValueError(f"a {request.content_type or 'typeless'} body")
    return query_to_pairs((await request.read()).rstrip().decode())


def _count(text: str) -> int | None:
    """A count Twilio sent (a queue position, seconds), None when it is not one."""
    return int(text) if text.isdigit() and len(text) < 7 else None


def _seconds(text: str) -> float:
    """A duration Twilio sent; anything that is not a finite number of seconds is 0."""
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if 0 <= value < 86400 else 0.0


def _confidence(text: str | None) -> float:
    try:
        return min(1.0, max(0.0, float(text or 1.0)))
    except ValueError:
        return 0.0
