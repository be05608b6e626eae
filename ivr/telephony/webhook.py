"""Twilio voice webhooks: parse the form, step the engine, render TwiML, save the session.

Every answer is TwiML with status 200, even when something broke: Twilio plays
an error message for anything else, and a caller must never hear that.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse
from yarl import query_to_pairs

from ivr.backend import Backend
from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.engine import APOLOGY
from ivr.engine.events import CallStarted, Digits, Event, HangUp, NoInput, Recorded, Speech
from ivr.engine.session import Session
from ivr.flow.model import Flow
from ivr.logs import call_sid, hidden, hide
from ivr.metrics import Metrics
from ivr.registry import FlowRegistry
from ivr.store.base import SessionStore, Stored
from ivr.store.records import RecordWriter
from ivr.telephony import twiml
from ivr.telephony.signature import SignatureCheck

log = logging.getLogger("ivr.webhook")

_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_KEYS = re.compile(r"[^0-9*#]")
MAX_FETCHES = 10  # backend calls in one turn before the flow counts as looping
ENDED_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
# Twilio's DialCallStatus and QueueResult values; "hangup": the caller left the queue
TRANSFER_RESULTS = frozenset(
    "completed answered busy no-answer failed canceled bridged bridging-in-process queue-full"
    " error hangup leave redirected redirected-from-bridged system-error".split()
)
TAKEN = ("completed", "answered", "bridged", "hangup")  # nothing more to say to the caller


def _say_and_hang_up(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response.to_xml())


NOT_IN_SERVICE = _say_and_hang_up("Sorry, this number is not in service. Goodbye.")
LOST_CALL = _say_and_hang_up("Sorry, we could not continue this call. Please call again. Goodbye.")
BROKEN = _say_and_hang_up(
    "Sorry, something went wrong on our side. Please call again later. Goodbye."
)
NO_AGENT = _say_and_hang_up(
    "Sorry, no agent could take your call. Please call again later. Goodbye."
)
EMPTY = str(VoiceResponse().to_xml())


def xml(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/xml", charset="utf-8")


class TwilioWebhooks:
    ROUTES = ("voice", "gather", "recorded", "dial", "status")

    def __init__(
        self,
        flows: FlowRegistry,
        sessions: SessionStore,
        backend: Backend,
        writer: RecordWriter,
        metrics: Metrics,
        signature: SignatureCheck,
        voices: Callable[[Flow], twiml.Voice],
    ) -> None:
        self.flows, self.sessions, self.backend = flows, sessions, backend
        self.writer, self.metrics, self.signature, self.voices = writer, metrics, signature, voices

        self.handlers = {name: self._guard(getattr(self, name)) for name in self.ROUTES}

    def _guard(
        self, handler: Callable[[web.Request, Mapping[str, str]], Awaitable[str]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Signature check, form parsing and the never-a-traceback rule around a handler."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                pairs = await _form(request)
            except web.HTTPException:
                raise  # 413 for a body over the limit
            except Exception as e:  # a body that is not a form
                self.metrics.rejected.labels("bad_request").inc()
                log.warning("refused %s: unreadable form (%s)", request.path, type(e).__name__)
                raise web.HTTPBadRequest(text="expected a form") from None
            fields = dict(pairs)
            sid = fields.get("CallSid", "")
            valid_sid = _SID.match(sid) is not None
            token = call_sid.set(sid if valid_sid else None)
            secrets = hidden.set(())
            hide(fields.get("Digits"), fields.get("SpeechResult"))
            try:
                why = self.signature.problem(request, pairs)
                if why:
                    self.metrics.rejected.labels("signature").inc()
                    log.warning(
                        "refused %s: %s", request.path, why, extra={"remote": request.remote}
                    )
                    raise web.HTTPForbidden(text="invalid Twilio signature")
                if not valid_sid:
                    self.metrics.rejected.labels("bad_request").inc()
                    log.warning("refused %s: missing or malformed CallSid", request.path)
                    raise web.HTTPBadRequest(text="CallSid missing or malformed")
                started = time.perf_counter()
                try:
                    body = await handler(request, fields)
                except Exception as e:
                    log.exception("webhook %s failed", request.path)
                    await self._give_up(request, fields, e)
                    body = BROKEN
                self.metrics.turn_seconds.observe(time.perf_counter() - started)
                return xml(body)
            finally:
                hidden.reset(secrets)
                call_sid.reset(token)

        return guarded

    # -- routes ------------------------------------------------------------------------------

    async def voice(self, request: web.Request, form: Mapping[str, str]) -> str:
        sid = form["CallSid"]
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is not None:
                return stored.reply  # Twilio retried the first webhook
            flow = self.flows.route(form.get("To", ""), request.query.get("flow"))
            if flow is None:
                log.warning("no flow for called number %s", form.get("To", "")[:32])
                error = "no flow for the called number"
                return await self._failed(request, form, None, error, NOT_IN_SERVICE)
            session = new_session(flow, sid)
            event = CallStarted(time.time(), form.get("From", "")[:32], form.get("To", "")[:32])
            log.info("call started on %s version %s", flow.id, flow.version)
            return await self._advance(flow, session, event)

    async def gather(self, request: web.Request, form: Mapping[str, str]) -> str:
        now = time.time()
        if request.query.get("silence"):
            event: Event = NoInput(now)
        elif form.get("Digits"):
            event = Digits(_KEYS.sub("", form["Digits"])[:64], now)
        elif form.get("SpeechResult", "").strip():
            event = Speech(form["SpeechResult"][:500], _confidence(form.get("Confidence")), now)
        else:
            event = NoInput(now)
        return await self._continue(request, form, event)

    async def recorded(self, request: web.Request, form: Mapping[str, str]) -> str:
        duration = form.get("RecordingDuration", "0")
        seconds = float(duration) if duration.replace(".", "", 1).isdigit() else 0.0
        reference = "" if request.query.get("empty") else form.get("RecordingUrl", "")[:300]
        return await self._continue(request, form, Recorded(reference, seconds, time.time()))

    async def dial(self, request: web.Request, form: Mapping[str, str]) -> str:
        """The end of a transfer: the record learns whether an agent took the call."""
        said = form.get("DialCallStatus") or form.get("QueueResult") or ""
        result = said if said in TRANSFER_RESULTS else "other"
        sid = form["CallSid"]
        log.info("transfer ended: %s", result)
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored and stored.session.ended and stored.session.transfer_result is None:
                session = stored.session.copy()
                session.transfer_result = result
                await self.sessions.save(session, stored.reply)
                self.writer.submit(session)  # the record again, now with the result
                self.metrics.transfer_result(session)
        return EMPTY if result in TAKEN else NO_AGENT

    async def status(self, request: web.Request, form: Mapping[str, str]) -> str:
        sid, status = form["CallSid"], form.get("CallStatus", "")
        if status not in ENDED_STATUSES:
            return EMPTY
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is None:
                session = self._unstarted(request, form)
                session.outcome = "failed" if status == "failed" else "abandoned"
                session.ended_at, session.call_status = session.started_at, status
                await self.sessions.save(session, EMPTY)
                self._ended(session)
            elif not stored.session.ended:
                flow = self.flows.get(stored.session.flow_id, stored.session.version)
                session = stored.session.copy()
                if flow is not None:
                    session, _ = step(flow, session, HangUp(time.time()))
                session.call_status = status
                log.info("caller left at %s", session.node)
                await self.sessions.save(session, stored.reply)
                self._ended(session)
        return EMPTY

    # -- the turn ------------------------------------------------------------------------------

    async def _continue(self, request: web.Request, form: Mapping[str, str], event: Event) -> str:
        sid = form["CallSid"]
        turn = request.query.get("t", "")
        async with self.sessions.lock(sid):
            stored = await self.sessions.load(sid)
            if stored is None:
                log.warning("no session for this call (expired, or never started here)")
                return await self._failed(request, form, None, "no session", LOST_CALL)
            session = stored.session
            hide(*(session.vars.get(name) for name in session.sensitive))
            if session.ended or turn != str(session.turn):
                return stored.reply  # a retried or late webhook: same answer, no second step
            flow = self.flows.get(session.flow_id, session.version)
            if flow is None:
                error = f"flow {session.flow_id} version {session.version} is not loaded"
                log.error(error)
                return await self._failed(request, form, stored, error, BROKEN)
            return await self._advance(flow, session, event)

    async def _advance(self, flow: Flow, session: Session, event: Event) -> str:
        """Step until the engine waits on the caller (backend calls happen in between)."""
        said: list[act.Action] = []
        for _ in range(MAX_FETCHES):
            session, actions = step(flow, session, event)
            fetch = actions[-1] if actions and isinstance(actions[-1], act.Fetch) else None
            said += actions[:-1] if fetch else actions
            if fetch is None:
                break
            event = await self.backend.fetch(fetch)
            if not event.ok:
                log.warning(
                    "backend call at %s failed: %s", fetch.node, event.error or event.status
                )
        else:  # the flow keeps calling backends without ever listening
            session.error = f"more than {MAX_FETCHES} backend calls in one turn"
            session.outcome, session.ended_at, session.waiting = "failed", time.time(), None
            said += [APOLOGY, act.Hangup("failed")]
        reply = twiml.render(said, self.voices(flow), session.turn)
        await self.sessions.save(session, reply)
        self.metrics.turn(flow.id)
        if session.ended:
            self._ended(session)
        return reply

    async def _give_up(
        self, request: web.Request, form: Mapping[str, str], error: Exception
    ) -> None:
        """After an internal error the caller hears BROKEN and is hung up on."""
        try:
            async with self.sessions.lock(form["CallSid"]):
                stored = await self.sessions.load(form["CallSid"])
                if stored is None or not stored.session.ended:
                    why = f"internal error: {type(error).__name__}"
                    await self._failed(request, form, stored, why, BROKEN)
        except Exception:  # the store itself may be what failed: the log has it all
            log.exception("the failed call could not be recorded")

    async def _failed(
        self,
        request: web.Request,
        form: Mapping[str, str],
        stored: Stored | None,
        error: str,
        reply: str,
    ) -> str:
        """The call ends here as `failed`, ivr's fault and not the caller's, so the status
        callback that follows finds it ended and cannot count it abandoned."""
        session = self._unstarted(request, form) if stored is None else stored.session.copy()
        session.outcome, session.ended_at, session.waiting = "failed", time.time(), None
        session.error = error
        await self.sessions.save(session, reply)
        self._ended(session)
        return reply

    def _unstarted(self, request: web.Request, form: Mapping[str, str]) -> Session:
        """A session for a call no flow ever stepped: on the flow its number routes to."""
        flow = self.flows.route(form.get("To", ""), request.query.get("flow"))
        flow_id, version = (flow.id, flow.version) if flow else ("unknown", "")
        return Session(form["CallSid"], flow_id, version, started_at=time.time())

    def _ended(self, session: Session) -> None:
        log.info(
            "call ended: %s",
            session.outcome,
            extra={"outcome": session.outcome, "node": session.node, "reason": session.reason},
        )
        self.metrics.ended(session)
        self.writer.submit(session)


async def _form(request: web.Request) -> list[tuple[str, str]]:
    """The fields of Twilio's POST: always a UTF-8 `application/x-www-form-urlencoded` form
    (parsed as aiohttp's `post()` does, without the multipart handling nobody here needs)."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise ValueError(f"a {request.content_type or 'typeless'} body")
    return query_to_pairs((await request.read()).rstrip().decode())


def _confidence(text: str | None) -> float:
    try:
        return min(1.0, max(0.0, float(text or 1.0)))
    except ValueError:
        return 0.0
