"""Twilio Media Streams: the `/twilio/stream` WebSocket and the driver of each call on it.

A new call whose flow wants local speech recognition (`speech: vosk`, or `ivr serve
--speech vosk`) is answered with `<Connect action><Stream>` (`StreamRoute`). Twilio then
opens the WebSocket, signing its handshake like a webhook, and streams the caller's
audio; `StreamCall` drives the call from there. Thin: what the messages mean is
`ivr.telephony.media`, when to send audio is `ivr.telephony.playback`, what the caller's
keys, voice and silence mean is `ivr.telephony.listener`; the turn is the runner's, the
session's life is `ivr.telephony.calls`'s (saved after every turn, records and metrics
as on the webhooks). When the flow transfers or ends, its last words are played, the
TwiML of what follows (`<Dial>`, `<Enqueue>`, `<Hangup>`) is stored with the session,
and the stream is closed: Twilio's `<Connect action>` request gets it (`/twilio/connect`).

The admin listener's softphone (`ivr.web.phone`) drives calls through this same driver:
its `Peer` says what differs (no Twilio signature; the page starts the call; typed
"speech" in and a live transcript out, which Twilio's socket never gets).

Time: every timer (no-input, between keys, pacing the prompts) runs on the stream's clock,
the timestamps of the caller's audio, which Twilio sends 50 times a second, silence
included. It is real time on a call, and a test that streams faster than real time
gets the same decisions, faster. Events carry the wall clock (`at`), as on the webhooks.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from ivr.engine import actions as act
from ivr.engine import apologies
from ivr.engine.engine import call_language
from ivr.engine.events import CallStarted, Digits, Event, NoInput, Speech
from ivr.engine.session import Session
from ivr.errors import RecognitionFailed
from ivr.flow.model import Ask, Flow, Menu, Text
from ivr.logs import call_sid, hide
from ivr.registry import Route
from ivr.speech.prompts import PromptAudio
from ivr.speech.recognizer import Heard
from ivr.speech.service import RecognitionSession, SpeechService
from ivr.speech.vad import Endpointer, SpeechStarted
from ivr.telephony import media, twiml
from ivr.telephony.bucket import TokenBucket
from ivr.telephony.calls import Calls
from ivr.telephony.listener import Decision, Listener, Reading, understanding
from ivr.telephony.outbound import decode_vars, encode_vars
from ivr.telephony.playback import Playback
from ivr.telephony.signature import SignatureCheck, websocket_url

log = logging.getLogger("ivr.stream")

PATH = "/twilio/stream"
MAX_MESSAGE = 64 * 1024  # a media message is ~300 bytes; a start message a few KB
RATE = 200  # messages a second a peer may send (IVR_WS_RATE): Twilio sends 50 frames, and marks
START_WAIT = 10.0  # seconds a stream has to send its `start`
MAX_STEP = 1.0  # seconds the stream's clock moves at most with one media message
PRE_ROLL = 15  # 20 ms frames kept before the voice detector's onset and fed with it
SPEECH_DOWN = act.Prompt(
    (Text("Sorry, speech recognition is not available right now. Please use your keypad."),)
)
# what a call in progress has stored as its reply: a <Connect action> that finds it
# there (the caller's side closed the stream) hangs up
HANG_UP = twiml.render([act.Hangup("abandoned")], twiml.Voice(), 0)
FINAL = (act.Transfer, act.Hangup, act.Record)  # what the stream hands back to TwiML
MASK = "****"  # a sensitive answer, as the transcript shows it


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is at the other end of a stream, and what it may do: Twilio (`TWILIO`), or the
    admin listener's softphone (made by `ivr.web.phone`)."""

    signed: bool = True  # the handshake must carry Twilio's signature
    extras: bool = False  # `ivr.text` in, `ivr.transcript` out: the admin socket only
    # the `start` message as the call begins with it: the softphone's sids are made here
    admit: Callable[[media.Start], media.Start] | None = None
    handover: bool = True  # TwiML takes the call on once the stream closes (<Connect action>)
    # told (flow, node, call sid) after every turn; node None once the call is over
    observe: Callable[[str, str | None, str], None] | None = None
    # a designer trying a flow: the call runs on `MediaStreams.rehearsals` (sessions in
    # memory, no metrics, no record), so it never counts in the figures ops decide on
    rehearsal: bool = False


TWILIO = Peer()


class StreamRoute:
    """Which new calls go to Media Streams, and the TwiML that sends them: made by the
    server, asked by the voice webhook."""

    def __init__(self, signature: SignatureCheck, everything: bool = False) -> None:
        """`everything`: `--speech vosk`, every call goes to a stream."""
        self.signature, self.everything = signature, everything

    def wanted(self, flow: Flow) -> bool:
        return self.everything or flow.speech == "vosk"

    def connect(
        self,
        request: web.Request,
        route: Route,
        form: Mapping[str, str],
        started: CallStarted | None = None,
    ) -> str:
        """`<Connect><Stream>` for a new call: the stream's URL beside the voice webhook's
        (as Twilio sees it), the call's route and numbers as `<Parameter>`s; an outbound
        call's (`started`: numbers the right way round, its variables, `AnsweredBy`) too."""
        here = self.signature.url(request).split("?", 1)[0]
        base = here.rsplit("/", 1)[0]  # https://host[/prefix]/twilio
        flow = route.flow
        parameters = {
            "flow": flow.id,
            "version": flow.version,
            "caller": started.caller if started else form.get("From", "")[:32],
            "called": started.called if started else form.get("To", "")[:32],
            "direction": form.get("Direction", "inbound")[:32],
        }
        if started is not None and started.answered_by:
            parameters["answered_by"] = started.answered_by
        if started is not None and started.given:  # checked by the webhook, signed by Twilio
            parameters["vars"] = encode_vars(started.given)
        if route.experiment and route.variant:
            parameters |= {"experiment": route.experiment, "variant": route.variant}
        stream = websocket_url(base + "/" + PATH.rsplit("/", 1)[1])
        return twiml.connect(stream, urlsplit(base).path + "/connect", parameters)


class MediaStreams:
    """The `/twilio/stream` handler and the calls on it, one per process."""

    def __init__(
        self,
        calls: Calls,
        signature: SignatureCheck,
        prompts: PromptAudio,
        recognition: SpeechService,
        voices: Callable[[Flow | None], twiml.Voice],
        rehearsals: Calls | None = None,
        rate: int = RATE,
    ) -> None:
        """`voices` gives a flow's TwiML voice: for the TwiML that follows a stream;
        `rehearsals` runs the calls of a `Peer.rehearsal` (default: `calls`); `rate`:
        messages a second a peer may send (0: any)."""
        self.calls, self.signature, self.prompts = calls, signature, prompts
        self.rate = rate
        self.rehearsals = rehearsals or calls
        self.recognition, self.voices = recognition, voices
        self.open: set[StreamCall] = set()
        self.stopping = False

    async def handle(self, request: web.Request, peer: Peer = TWILIO) -> web.StreamResponse:
        why = self.signature.problem(request, (), websocket=True) if peer.signed else None
        if why:
            self.calls.metrics.rejected("signature")
            log.warning("refused %s: %s", request.path, why, extra={"remote": request.remote})
            raise web.HTTPForbidden(text="invalid Twilio signature")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        call = StreamCall(self, ws, peer)
        self.open.add(call)
        # Twilio sends `start` at once: a socket without one holds a descriptor, no call
        idle = asyncio.get_running_loop().call_later(START_WAIT, call.unstarted)
        try:
            await call.run()
        finally:
            idle.cancel()
            self.open.discard(call)
        return ws

    async def close(self) -> None:
        """The server stops: close the streams (their calls are left as they are, for the
        status callback or the reaper to close)."""
        self.stopping = True
        for call in list(self.open):
            await call.ws.close(code=1001, message=b"server stopping")


class StreamCall:
    """One call on a Media Stream: made by `MediaStreams` per WebSocket."""

    def __init__(
        self, streams: MediaStreams, ws: web.WebSocketResponse, peer: Peer = TWILIO
    ) -> None:
        self.streams, self.ws, self.peer = streams, ws, peer
        self.calls = streams.rehearsals if peer.rehearsal else streams.calls
        self.stream_sid = ""
        self.flow: Flow | None = None
        self.session: Session | None = None
        self.begun = False  # a `start` came: the one a stream may have
        self.clock = 0.0  # stream seconds: the latest media timestamp
        self.playback = Playback()
        self.rendering: deque[tuple[asyncio.Future[bytes], str]] = deque()
        self.marks = itertools.count(1)
        self.listener: Listener | None = None
        self.phrases: list[str] | None = None
        self.reading: Reading | None = None
        self.recognition: RecognitionSession | None = None
        self.heard_in = ""  # the language `recognition` hears (the call's may change)
        self.speech_failed = False
        self.endpointer = Endpointer()
        self.pre_roll: deque[bytes] = deque(maxlen=PRE_ROLL)
        self.work: asyncio.Task[None] | None = None
        self.held = 0  # actions of the running turn played already (its hold prompts)
        self.closing = False  # the flow is done here: close once its last words played
        self.notes: deque[str] = deque()  # transcript lines not yet sent (`Peer.extras`)
        self.noted: list[list[Any]] = []  # the session's transcript as last sent
        self.bucket = TokenBucket(streams.rate, time.monotonic())
        self.cut = ""  # why this side closed the stream on a live call (a limit broken)

    @property
    def playing(self) -> bool:
        return bool(self.rendering) or not self.playback.idle

    # -- messages ------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async for message in self.ws:
                if not self.bucket.take(time.monotonic()):
                    await self.too_fast()
                    break
                if message.type == WSMsgType.ERROR:
                    self.broken(message.data)
                    break
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    inbound = media.parse(message.data, self.peer.extras)
                except media.MediaError as e:
                    log.warning("a Media Streams message was not understood: %s", e)
                    continue
                if isinstance(inbound, media.Stop):
                    break
                if inbound is not None:
                    await self.receive(inbound)
            # nothing follows a softphone's stream: a call it left unended (at a `record`,
            # which TwiML would do) is over too
            if self.cut:
                await self.cut_off(self.cut)
            elif not self.streams.stopping and (not self.closing or not self.peer.handover):
                await self.hang_up()
        finally:
            self.stop()

    # -- limits: the peer broke one, the stream is closed, the call ends failed --------------

    async def too_fast(self) -> None:
        """The peer sends more than `rate` messages a second (Twilio sends 50): the stream
        is closed 1008 (policy violation)."""
        rate = self.streams.rate
        log.warning("closed a stream sending more than %d messages a second (1008)", rate)
        self.streams.calls.metrics.rejected("ws_rate")
        self.cut = f"the media stream sent more than {rate} messages a second"
        await self.cut_off(self.cut)  # saved first: the <Connect action> request finds it
        await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many messages")

    def broken(self, error: Any) -> None:
        """aiohttp read no message and closed the socket itself: 1009 for one over
        MAX_MESSAGE (a call cut off), else a protocol error (a stream dropped)."""
        code = error.code if isinstance(error, WebSocketError) else None
        if code == WSCloseCode.MESSAGE_TOO_BIG:
            log.warning("closed a stream: a message over %d KiB (1009)", MAX_MESSAGE // 1024)
            self.streams.calls.metrics.rejected("ws_message_size")
            self.cut = f"the media stream sent a message over {MAX_MESSAGE // 1024} KiB"
        else:
            log.warning("the stream broke: %s", type(error).__name__)

    async def cut_off(self, error: str) -> None:
        """This side closed the stream on a call that may be live: it ends failed, and what
        Twilio's <Connect action> request gets is the flow's apology, then a hang-up (the
        softphone, whose page plays nothing after the socket, has the transcript's end)."""
        self.stop()
        if self.session is None or self.session.ended:
            return
        sessions, sid = self.calls.sessions, self.session.call_id
        async with sessions.lock(sid):
            stored = await sessions.load(sid)
            if stored is not None and stored.session.ended:
                return  # ended meanwhile: its reply stands
            session = stored.session if stored is not None else self.session
            turn = self.calls.runner.fail(self.flow, session, error)
            reply = twiml.render(turn.actions, self.streams.voices(self.flow), turn.session.turn)
            await self.calls.save(turn.session, reply)
        self.session = turn.session
        self.turned(turn.session, [a for a in turn.actions if isinstance(a, FINAL)])
        await self.flush()

    async def receive(self, message: media.Inbound) -> None:
        if isinstance(message, media.Start):
            if not self.begun:
                self.begun = True
                self.begin(message)
        elif self.session is None or isinstance(message, media.Connected):
            return
        elif isinstance(message, media.Media):
            await self.heard(message)
        elif isinstance(message, media.Dtmf):
            if self.listener is not None and message.digit:
                await self.decide(self.listener.key(message.digit[:1], self.clock))
        elif isinstance(message, media.Mark):
            await self.echoed(message.name)
        elif isinstance(message, media.Typed) and message.text:
            await self.typed(message.text)

    async def heard(self, message: media.Media) -> None:
        """20 ms of the caller: the clock moves on, the voice detector and the recogniser
        hear it, timers may fire, and prompt audio goes out."""
        # a frame is 20 ms: a timestamp that leaps ahead (a bad one) moves the clock a
        # step at most, so the call's timers cannot be thrown past hours of silence
        at = message.timestamp / 1000
        self.clock = max(self.clock, min(at, self.clock + MAX_STEP))
        listener = self.listener
        if listener is not None and listener.speech and listener.open:
            pcm = message.pcm
            self.pre_roll.append(pcm)
            if listener.speaking and self.recognition is not None:
                self.recognition.feed(pcm)
            for event in self.endpointer.feed(pcm):
                if isinstance(event, SpeechStarted):
                    await self.decide(listener.speech_started(self.clock))
                else:
                    await self.decide(listener.speech_ended(self.clock))
            if self.recognition is not None and self.recognition.failed:
                self.speech_lost()
        if listener is not None:
            await self.decide(listener.tick(self.clock))
        await self.pump()
        late = self.playback.overdue(self.clock)
        if late is not None:
            log.warning("mark %s was never echoed: its prompt is taken as played", late)
            await self.echoed(late)

    async def echoed(self, name: str) -> None:
        if not self.playback.echoed(name) or self.playing:
            return
        if self.closing:
            await self.close()
        elif self.listener is not None:
            was_open = self.listener.open
            self.listener.played(self.clock)
            if not was_open:
                self.endpointer.reset()  # no barge-in: the caller is heard from here

    async def decide(self, decision: Decision) -> None:
        if decision.clear:
            await self.clear()
        if decision.feed and self.recognition is not None:
            for pcm in self.pre_roll:  # the current frame is the last of them
                self.recognition.feed(pcm)
        if decision.recognise:
            self.endpointer.reset()  # it may still hear speech: an utterance cut at its cap
            self.start(self.recognise())
        elif decision.event == "digits":
            sensitive = self.listener is not None and self.listener.listen.sensitive
            if sensitive:
                hide(decision.digits)
            self.note("keys", digits=MASK if sensitive else decision.digits)
            self.start(self.turn(Digits(decision.digits, at=time.time())))
        elif decision.event == "no_input":
            self.note("silence")
            self.start(self.turn(NoInput(at=time.time())))

    # -- prompts out ---------------------------------------------------------------------------

    def say(self, prompt: act.Prompt) -> None:
        """Render the prompt off the loop; it plays after those before it, then its mark."""
        language, voice = spoken_as(self.flow, prompt)
        audio = self.streams.prompts.mulaw(prompt.parts, language, voice)
        mark = str(next(self.marks))
        self.rendering.append((asyncio.ensure_future(audio), mark))
        self.note("prompt", text=prompt.text, mark=mark)

    async def pump(self) -> None:
        """Send what is due: rendered prompts in order, paced by the stream's clock."""
        if self.notes:
            await self.flush()
        while self.rendering and self.rendering[0][0].done():
            task, mark = self.rendering.popleft()
            self.playback.add(_audio(task), mark)
        for item in self.playback.due(self.clock):
            if isinstance(item, str):
                await self.ws.send_str(media.mark(self.stream_sid, item))
            else:
                await self.ws.send_str(media.media(self.stream_sid, item))

    async def clear(self) -> None:
        """Barge-in: the prompt stops here."""
        for task, _ in self.rendering:
            task.cancel()
        self.rendering.clear()
        if self.playback.clear():
            await self.ws.send_str(media.clear(self.stream_sid))

    # -- the call ------------------------------------------------------------------------------

    def unstarted(self) -> None:
        """No `start` came in time: the socket is closed."""
        if not self.begun:
            log.warning("closed a stream that sent no start in %g s", START_WAIT)
            self.closing = True
            self.start(self.close())

    def begin(self, start: media.Start) -> None:
        """The stream's first message: the call starts on the flow its webhook routed."""
        if self.peer.admit is not None:
            start = self.peer.admit(start)
        self.stream_sid = start.stream_sid
        call_sid.set(start.call_sid)
        self.start(self.open_call(start))

    async def open_call(self, start: media.Start) -> None:
        """The call of a stream's `start`: one stream a call, so a call the store knows
        already (a second stream for it, or a replayed start) is refused."""
        custom = start.custom
        if await self.calls.sessions.load(start.call_sid) is not None:
            log.warning("refused a second stream for this call")
            self.closing = True
            await self.close()
            return
        flow = self.calls.flows.get(custom.get("flow", ""), custom.get("version") or None)
        if flow is None:
            named = custom.get("flow", "")[:64]
            log.error("stream for flow %r, which is not loaded", named)
            # "unknown" in metrics and records: a name from the stream is no label
            self.session = Session(start.call_sid, "unknown", "", started_at=time.time())
            self.note("call", callSid=start.call_sid, flow="unknown", version="")
            await self.failed(f"flow {named!r} is not loaded")
            return
        self.flow = flow
        route = Route(flow, custom.get("experiment") or None, custom.get("variant") or None)
        self.session = self.calls.start(route, start.call_sid, custom.get("direction", ""))
        self.note("call", callSid=start.call_sid, flow=flow.id, version=flow.version)
        self.recognition = self.streams.recognition.open(flow.language)
        self.heard_in = flow.language
        if self.recognition is None and _listens_for_speech(flow):
            log.warning("no speech model for %s: the call goes on with keys only", flow.language)
            self.speech_lost()
        try:  # an outbound call's variables (`ivr notify --vars`), from our own TwiML
            given = decode_vars(custom["vars"]) if custom.get("vars") else {}
        except ValueError as e:
            log.warning("an outbound call's vars are ignored: %s", e)
            given = {}
        caller, called = custom.get("caller", ""), custom.get("called", "")
        answered_by, now = custom.get("answered_by", "")[:32], time.time()
        known = await self.calls.history(flow, caller, now)  # before the greeting
        await self.turn(CallStarted(caller, called, given, answered_by, at=now, history=known))

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a turn or a recognition beside the socket's messages (one at a time)."""
        self.work = asyncio.ensure_future(self.guarded(work))

    async def guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """Nothing a caller does crashes the call: an error fails it (the apology, then
        the stream closes and the call is hung up)."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("stream call failed")
            try:
                await self.failed(f"internal error: {type(e).__name__}")
            except Exception:  # the store itself may be what failed
                log.exception("the failed call could not be recorded")
                await self.close()

    async def turn(self, event: Event) -> None:
        flow, session = self.flow, self.session
        assert flow is not None and session is not None
        self.listener, self.held = None, 0
        hide(*(session.vars.get(name) for name in session.sensitive))
        turn = await self.calls.runner.run(flow, session, event, on_hold=self.hold)
        self.calls.metrics.turn(flow.id)
        await self.answer(turn.session, turn.actions[self.held :])

    async def hold(self, actions: list[act.Action]) -> None:
        """A slow backend: its hold prompt plays at once, while the turn goes on."""
        for action in actions[self.held :]:
            if isinstance(action, act.Prompt):
                self.say(action)
        self.held = len(actions)

    async def failed(self, error: str) -> None:
        assert self.session is not None
        turn = self.calls.runner.fail(self.flow, self.session, error)
        await self.answer(turn.session, turn.actions)

    async def answer(self, session: Session, actions: list[act.Action]) -> None:
        """Save the turn, play its prompts, then listen, or hand the call back to TwiML."""
        final = [a for a in actions if isinstance(a, FINAL)]
        voice = self.streams.voices(self.flow)
        reply = twiml.render(final, voice, session.turn) if final else HANG_UP
        if not await self.save(session, reply):
            self.closing = True
            await self.close()
            return
        self.session = session
        for action in actions:
            if isinstance(action, act.Prompt):
                self.say(action)
        self.turned(session, final)
        if final:
            self.closing = True
            if not self.playing:
                await self.close()
            return
        listen = next((a for a in actions if isinstance(a, act.Listen)), None)
        if listen is not None:
            await self.listen(listen)

    async def save(self, session: Session, reply: str) -> bool:
        """Save after a turn; False when the call ended meanwhile (the status callback of a
        caller who hung up came first): nothing more is said then."""
        sessions = self.calls.sessions
        async with sessions.lock(session.call_id):
            stored = await sessions.load(session.call_id)
            if stored is not None and stored.session.ended:
                log.info("the call ended meanwhile")
                return False
            await self.calls.save(session, reply)
            return True

    async def hang_up(self) -> None:
        """The caller left (`stop`, or the socket closed): the call is abandoned."""
        self.stop()
        if self.session is None:
            return
        sessions, sid = self.calls.sessions, self.session.call_id
        async with sessions.lock(sid):
            stored = await sessions.load(sid)
            if stored is None:  # before its first turn was saved
                session = self.session.copy()
                session.outcome, session.ended_at = "abandoned", time.time()
                session.started_at = session.started_at or session.ended_at
                await self.calls.save(session, HANG_UP)
            elif not stored.session.ended:
                await self.calls.hang_up(stored, None, time.time())
        if self.peer.observe is not None:
            self.peer.observe(self.session.flow_id, None, self.session.call_id)

    def stop(self) -> None:
        """Let go of what runs for this call."""
        if self.work is not None and self.work is not asyncio.current_task():
            self.work.cancel()
        for task, _ in self.rendering:
            task.cancel()
        self.rendering.clear()
        if self.recognition is not None:
            self.recognition.close()

    # -- listening -----------------------------------------------------------------------------

    async def listen(self, listen: act.Listen) -> None:
        """The engine waits for the caller: set up the recogniser, then listen."""
        assert self.flow is not None and self.session is not None
        self.phrases, self.reading = understanding(self.flow, self.session, listen)
        self.hear_in(listen.language or self.flow.language)
        recognition = self.recognition
        if "speech" in listen.modes and recognition is not None and not self.speech_failed:
            try:
                await recognition.expect(self.phrases)
            except RecognitionFailed:
                self.speech_lost()
        speech = recognition is not None and not self.speech_failed
        self.listener = Listener(listen, speech, self.clock, self.playing)
        if self.listener.open:
            self.endpointer.reset()
            self.pre_roll.clear()

    def hear_in(self, language: str) -> None:
        """The call changed language (a menu, a backend chose it): that language's model."""
        if language == self.heard_in or self.speech_failed:
            return
        self.heard_in = language
        if self.recognition is not None:
            self.recognition.close()
        self.recognition = self.streams.recognition.open(language)
        if self.recognition is None and self.flow and _listens_for_speech(self.flow):
            log.warning("no speech model for %s: the call goes on with keys only", language)
            self.speech_lost()

    async def recognise(self) -> None:
        """The caller stopped speaking: what did they say?"""
        listener, recognition, reading = self.listener, self.recognition, self.reading
        assert listener is not None and recognition is not None and reading is not None
        try:
            heard = await recognition.finish()
            if not heard.text:  # a breath, a click: nothing was said
                await recognition.expect(self.phrases)
                listener.heard_nothing(self.clock)
                return
        except RecognitionFailed:
            self.speech_lost()
            return
        listener.recognised()
        understood = reading(heard)
        if listener.listen.sensitive:  # never logged, whichever alternative is read
            hide(heard.text, *heard.alternatives)
            log.debug("heard %d alternatives at a sensitive listen", len(heard.alternatives))
        else:
            log.debug("heard %r: %s", heard.alternatives, understood)
        # what names no option exactly is no match: the engine's looser matching of
        # Twilio's transcripts would take grammar fragments for options
        text, confidence = understood or ("", heard.confidence)
        self.note_heard(heard.text, heard.confidence, text, listener.listen.sensitive)
        await self.turn(Speech(text, confidence, at=time.time()))

    async def typed(self, text: str) -> None:
        """The softphone's user typed what a caller would say (`ivr.text`): taken as what
        was recognised at a listen that takes speech, with or without a speech model."""
        listener, reading = self.listener, self.reading
        if listener is None or reading is None or not listener.open or listener.busy:
            self.note("ignored", text=text)  # a turn is under way, or the prompt plays on
            return
        if "speech" not in listener.listen.modes:
            self.note("ignored", text=text)  # keys only here
            return
        if listener.playing:
            await self.clear()  # as a voice barges in
        listener.recognised()
        understood = reading(Heard(text, 1.0, (text,), (1.0,)))
        if listener.listen.sensitive:
            hide(text)
        said, confidence = understood or ("", 1.0)
        self.note_heard(text, 1.0, said, listener.listen.sensitive, typed=True)
        self.start(self.turn(Speech(said, confidence, at=time.time())))

    def speech_down(self) -> act.Prompt:
        """The notice that speech is down: the flow's, or ivr's, in the call's language."""
        flow, session = self.flow, self.session
        if flow is None or session is None:
            return SPEECH_DOWN
        language = call_language(flow, session)
        other = None if language == flow.language else language
        own = flow.own("speech_down", language)
        return act.Prompt(own or apologies.apology("speech_down", language).parts, other)

    def speech_lost(self) -> None:
        """Recognition stopped working (or there is none): the call goes on with keys,
        after the flow's notice (`defaults.speech_down`)."""
        if self.speech_failed:
            return
        self.speech_failed = True
        self.say(self.speech_down())
        if self.listener is not None:
            self.listener.speech_lost(self.clock)
            self.listener.prompt_again()

    # -- the softphone's transcript (`Peer.extras`) ----------------------------------------------

    def note(self, kind: str, **fields: Any) -> None:
        """A line of the live transcript, sent with the next message out."""
        if self.peer.extras:
            self.notes.append(media.transcript(self.stream_sid, kind, **fields))

    def note_heard(
        self, text: str, confidence: float, understood: str, sensitive: bool, typed: bool = False
    ) -> None:
        said = MASK if sensitive and text else text
        meant = MASK if sensitive and understood else understood
        self.note(
            "heard", text=said, confidence=round(confidence, 3), understood=meant, typed=typed
        )

    def turned(self, session: Session, final: Sequence[act.Action]) -> None:
        """After a turn: the node the call is at, the engine's new transcript lines, and
        the outcome once it ended."""
        if self.peer.extras:
            lines = _new_lines(self.noted, session.transcript)
            self.noted = list(session.transcript)
            node, waiting = session.node, session.waiting
            self.note("node", node=node, waiting=waiting, path=session.path, lines=lines)
            if final or session.ended:
                self.note("end", **_ending(session, final))
        if self.peer.observe is not None:
            node = None if session.ended else session.node
            self.peer.observe(session.flow_id, node, session.call_id)

    async def flush(self) -> None:
        while self.notes and not self.ws.closed:
            await self.ws.send_str(self.notes.popleft())

    async def close(self) -> None:
        """The flow is done with the stream: what the transcript still holds, then close."""
        await self.flush()
        await self.ws.close()


def _audio(task: asyncio.Future[bytes]) -> bytes:
    """A rendered prompt's audio; nothing when it could not be made (logged)."""
    try:
        return task.result()
    except Exception as e:  # TTSError: a prompt that cannot be spoken is skipped, not fatal
        log.error("a prompt could not be rendered: %s", e)
        return b""


def _new_lines(before: list[list[Any]], after: list[list[Any]]) -> list[list[Any]]:
    """The lines of a transcript added since `before`: the engine keeps the last lines
    only, so the old ones may have left its start."""
    for start in range(len(before) + 1):
        kept = before[start:]
        if after[: len(kept)] == kept:
            return after[len(kept) :]
    return after


def _ending(session: Session, final: Sequence[act.Action]) -> dict[str, Any]:
    """How the call ended, for the softphone: the outcome, and where a transfer went."""
    ending: dict[str, Any] = {"outcome": session.outcome, "reason": session.reason}
    for action in final:
        if isinstance(action, act.Transfer):
            ending |= {"to": action.to, "queue": action.queue}
        elif isinstance(action, act.Record):
            ending |= {"record": action.node}
    return ending


def spoken_as(flow: Flow | None, prompt: act.Prompt) -> tuple[str, str | None]:
    """The language and voice a prompt is synthesised in: a subflow's own when the prompt
    carries it, else the flow's."""
    if prompt.language is not None:
        return prompt.language, prompt.voice
    return (flow.language, flow.voice) if flow else ("en-US", None)


def _listens_for_speech(flow: Flow) -> bool:
    """Whether any menu or ask of `flow` takes speech."""
    return any(
        isinstance(node.spec, Menu | Ask) and "speech" in node.listen.modes
        for node in flow.nodes.values()
    )
