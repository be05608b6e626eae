"""A Twilio stand-in for functional tests: signed webhooks in, TwiML out, as a caller hears it.

`TwilioSim` posts what Twilio posts (the standard voice parameters, signed with
`X-Twilio-Signature` over the public URL and the form), parses each TwiML reply
with ElementTree and walks its verbs the way Twilio does: `<Say>`/`<Play>` are
heard, `<Gather>` waits for the caller (keys, speech, or silence, which falls
through to the next verb), `<Redirect>` is followed, `<Record>` posts the
recording, `<Dial>`/`<Enqueue>` end the IVR part and post their action, and
`<Hangup>` or the end of the document ends the call, after which the status
callback is sent. `<Connect>` waits for its Media Stream (tests/functional/stream_sim.py
plays Twilio's side of it) and, once the server closed it, posts its action
(`Call.stream_closed`). The sim talks to `base_url` but signs `public_url`, like
Twilio reaching a server behind a proxy; a call may be moved to another server
sharing the same public URL (`call.base_url = ...`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

T = TypeVar("T")
ACCOUNT_SID = "AC" + "0" * 31 + "1"
API_VERSION = "2010-04-01"
ANSWERED = {"completed", "answered"}


# what a queue tells of a caller that <Dial> never does: left with <Leave>, the queue full
QUEUE_ONLY = ("leave", "queue-full", "error", "system-error")


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


@dataclass(frozen=True)
class Request:
    """One webhook as Twilio sends it: the public URL it signs and its form."""

    url: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    text: str

    def xml(self) -> ET.Element:
        return ET.fromstring(self.text)


class TwilioError(AssertionError):
    """The server answered something Twilio could not use (not 200, not TwiML)."""


class TwilioSim:
    """Twilio's side of voice calls against one server (or several behind one public URL)."""

    def __init__(
        self,
        base_url: str,
        auth_token: str,
        public_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`headers` go with every webhook, as a proxy in front of the server adds them;
        the path of `public_url` is a prefix such a proxy strips before passing a request on."""
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.public_url = (public_url or base_url).rstrip("/")
        self.prefix = urlsplit(self.public_url).path
        self.validator = RequestValidator(auth_token)
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> TwilioSim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- raw requests --------------------------------------------------------------------------

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        return self.validator.compute_signature(url, dict(params))

    def public(self, path_qs: str) -> str:
        """The public URL of a path (with its query string)."""
        return urljoin(self.public_url + "/", path_qs.lstrip("/"))

    async def send(
        self,
        request: Request,
        base_url: str | None = None,
        *,
        signature: str | None = None,
        signed: bool = True,
        body: bytes | None = None,
    ) -> Reply:
        """Post `request` to `base_url` (default: this sim's server), signed like Twilio.

        `signature` replaces the real one (a forgery), `signed=False` leaves the header
        out, `body` replaces the form encoding (for oversized requests)."""
        parts = urlsplit(request.url)
        path = parts.path.removeprefix(self.prefix) if parts.path.startswith(self.prefix) else ""
        path_qs = path + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": "TwilioProxy/1.1", "Accept": "*/*", **self.headers}
        if signed:
            headers["X-Twilio-Signature"] = signature or self.sign(request.url, request.params)
        data: object = dict(request.params)
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = body
        target = (base_url or self.base_url).rstrip("/") + path_qs
        # sent as written, like Twilio: no re-quoting of %-escapes in the URL it signed
        url = URL(target, encoded=True)
        async with self.session.post(url, data=data, headers=headers) as response:
            return Reply(response.status, await response.text())

    async def post(self, path_qs: str, params: Mapping[str, str], **kwargs: object) -> Reply:
        """Post a form to a path of the public URL (for requests a test builds itself)."""
        return await self.send(Request(self.public(path_qs), params), **kwargs)  # type: ignore[arg-type]

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base_url + path) as response:
            return response.status, await response.text()

    # -- messages ------------------------------------------------------------------------------

    async def text(
        self, to: str, from_: str, body: str, path: str = "/twilio/messaging"
    ) -> list[str]:
        """An SMS (or, `from_` starting `whatsapp:`, a WhatsApp message) as Twilio posts
        it; the paragraphs of the messages the TwiML answers with (ivr sends a turn as
        one message, its prompts as paragraphs)."""
        whatsapp = from_.startswith("whatsapp:")
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "SmsMessageSid": "",
            "AccountSid": ACCOUNT_SID,
            "MessagingServiceSid": "",
            "From": from_,
            "To": f"whatsapp:{to}" if whatsapp else to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        params["SmsMessageSid"] = params["MessageSid"]
        if whatsapp:
            params["ProfileName"], params["WaId"] = "Customer", from_.removeprefix("whatsapp:+")
        reply = await self.post(path, params)
        if reply.status != 200:
            raise TwilioError(f"{path} answered {reply.status}: {reply.text}")
        root = reply.xml()
        assert root.tag == "Response", reply.text
        return [p for m in root.iter("Message") for p in (m.text or "").split("\n\n")]

    # -- calls ---------------------------------------------------------------------------------

    def new_call(
        self,
        to: str,
        from_: str = "+15551230000",
        *,
        voice_path: str = "/twilio/voice",
        status_path: str = "/twilio/status",
        call_sid: str | None = None,
    ) -> Call:
        return Call(self, to, from_, call_sid or new_call_sid(), voice_path, status_path)

    async def start(self, to: str, from_: str = "+15551230000", **kwargs: str) -> Call:
        """A new inbound call, run until the caller is asked for something or it ends."""
        call = self.new_call(to, from_, **kwargs)
        await call.start()
        return call

    def outbound(self, form: Mapping[str, str], answered_by: str = "human") -> Call:
        """The call Twilio places for a Calls API request's `form` (To, From, Url,
        StatusCallback), as its webhooks see it once answered (`AnsweredBy`); not started."""
        public = self.public_url + "/"
        voice, status = form["Url"], form.get("StatusCallback", public + "twilio/status")
        if not voice.startswith(public) or not status.startswith(public):
            raise AssertionError(f"the call's webhooks are not on {public}: {voice}, {status}")
        call = self.new_call(
            form["To"],
            form["From"],
            voice_path="/" + voice.removeprefix(public),
            status_path="/" + status.removeprefix(public),
        )
        call.params = {"Direction": "outbound-api", "AnsweredBy": answered_by}
        return call

    async def call(self, to: str, from_: str, script: Iterable[object]) -> Call:
        """A whole call: `script` items are "press:123#", "say:text", ("say", text, conf),
        "silence", "hangup" or "record:seconds"; the call ends after the script."""
        call = await self.start(to, from_)
        for item in script:
            if call.ended:
                raise AssertionError(f"the call ended before {item!r}; it heard {call.heard}")
            kind, *args = item.split(":", 1) if isinstance(item, str) else item  # type: ignore[attr-defined]
            if kind == "press":
                await call.press(*args)
            elif kind == "say":
                await call.say(*args)
            elif kind == "silence":
                await call.silence()
            elif kind == "hangup":
                await call.hangup()
            elif kind == "record":
                await call.record(float(*args))
            else:
                raise ValueError(f"unknown script step {item!r}")
        return call


@dataclass
class Call:
    """One call's progress: what was heard, which verb waits for the caller, how it ended."""

    sim: TwilioSim
    to: str
    from_: str
    sid: str
    voice_path: str = "/twilio/voice"
    status_path: str = "/twilio/status"
    base_url: str | None = None  # the server this call's webhooks go to (default: the sim's)
    dial_status: str = "completed"  # what the <Dial>ed party does when the IVR hands over
    hold_transfers: bool = False  # a transfer waits for `transfer_ends` (a caller in a queue)
    direction: str = "inbound"  # Twilio's: outbound-api for a call placed through the API
    heard: list[str] = field(default_factory=list)  # all <Say> texts and <Play> URLs
    last: list[str] = field(default_factory=list)  # heard since the caller's last action
    documents: list[tuple[str, str]] = field(default_factory=list)  # (public URL, TwiML)
    ended: bool = False
    end: str | None = None  # hangup | end-of-document | dial | enqueue | caller-hung-up
    transfer: ET.Element | None = None  # the <Dial> or <Enqueue> that ended the IVR part
    status_request: Request | None = None  # the status callback sent when the call ended
    status_sent: Reply | None = None
    last_request: Request | None = None
    last_reply: Reply | None = None
    # fields of every request beyond the standard ones: an outbound call's Direction and
    # AnsweredBy (`TwilioSim.outbound`)
    params: dict[str, str] = field(default_factory=dict)
    _waiting: ET.Element | None = None  # the <Gather> or <Record> the caller is in
    _rest: list[ET.Element] = field(default_factory=list)  # verbs after it
    _url: str = ""  # URL of the current document: relative action URLs resolve against it
    _started: float = field(default_factory=time.monotonic)

    # -- what the caller does --------------------------------------------------------------

    async def start(self) -> list[str]:
        voice = self.sim.public(self.voice_path)  # the URLs set in the console
        return await self._go(self._request(voice, CallStatus="ringing"))

    @property
    def waiting(self) -> str | None:
        """ "gather", "record", "connect" or None: the verb waiting for the caller."""
        return self._waiting.tag.lower() if self._waiting is not None else None

    @property
    def gather(self) -> ET.Element:
        if self._waiting is None or self._waiting.tag != "Gather":
            raise AssertionError(f"the caller is not in a <Gather>: {self.waiting}, {self.end}")
        return self._waiting

    def gather_request(
        self, keys: str | None = None, speech: str | None = None, confidence: float = 0.9
    ) -> Request:
        """The request Twilio sends when the caller presses `keys` or says `speech`."""
        g = self.gather
        modes = g.get("input", "dtmf").split()
        extra: dict[str, str] = {"msg": "Gather End"}
        if keys is not None:
            if "dtmf" not in modes:
                raise AssertionError(f"this <Gather> does not take keys: input={modes}")
            extra.update(_collect(keys, g))
        if speech is not None:
            if "speech" not in modes:
                raise AssertionError(f"this <Gather> does not take speech: input={modes}")
            extra.update(SpeechResult=speech, Confidence=f"{confidence:.8f}")
        return self._request(g.get("action") or self._url, **extra)

    async def press(self, keys: str) -> list[str]:
        """Keys pressed in the <Gather>: Twilio posts them (without the finish key); only
        the finish key, with nothing before it, is no input at all."""
        request = self.gather_request(keys=keys)
        if not request.params["Digits"] and self.gather.get("actionOnEmptyResult") != "true":
            return await self.silence()
        return await self._go(request)

    async def say(self, text: str, confidence: float | str = 0.9) -> list[str]:
        return await self._go(self.gather_request(speech=text, confidence=float(confidence)))

    async def silence(self) -> list[str]:
        """The caller says nothing: Twilio goes on with the verbs after <Gather>/<Record>."""
        if self._waiting is None:
            raise AssertionError(f"the caller is not asked anything ({self.end})")
        self._waiting, rest = None, self._rest
        self.last = []
        await self._run(rest)
        return self.last

    async def record(self, seconds: float = 5.0, stored: str | None = "completed") -> list[str]:
        """The caller leaves a message in the <Record> and presses its finish key; then
        Twilio says the recording is `stored` (its recordingStatusCallback; None: not yet)."""
        rec = self._waiting
        request = self._recording(seconds, "key")
        heard = await self._go(request)
        if stored and rec is not None:
            await self.recording_stored(rec, request, stored)
        return heard

    async def recording_stored(
        self, rec: ET.Element, recorded: Request, status: str = "completed"
    ) -> Reply | None:
        """Twilio's recordingStatusCallback for the recording `recorded` made in `rec`
        (nothing when the <Record> asked for none)."""
        url = rec.get("recordingStatusCallback")
        if not url:
            return None
        reply = await self.send(
            self._request(
                url,
                RecordingSid=recorded.params["RecordingSid"],
                RecordingUrl=recorded.params["RecordingUrl"],
                RecordingStatus=status,
                RecordingDuration=recorded.params["RecordingDuration"],
            )
        )
        if reply.status != 200:
            raise TwilioError(f"{url} answered {reply.status}: {reply.text[:300]}")
        return reply

    def _recording(self, seconds: float, ended_by: str) -> Request:
        rec = self._waiting
        if rec is None or rec.tag != "Record":
            raise AssertionError(f"the caller is not in a <Record>: {self.waiting}")
        rid = "RE" + uuid.uuid4().hex
        key = rec.get("finishOnKey", "1234567890*#")[:1]
        return self._request(
            rec.get("action") or self._url,
            RecordingSid=rid,
            RecordingUrl=f"https://api.twilio.com/{API_VERSION}/Accounts/{ACCOUNT_SID}"
            f"/Recordings/{rid}",
            RecordingDuration=str(round(seconds)),
            Digits=key if ended_by == "key" and key else "hangup",
        )

    @property
    def connect(self) -> ET.Element:
        if self._waiting is None or self._waiting.tag != "Connect":
            raise AssertionError(f"the call is not in a <Connect>: {self.waiting}, {self.end}")
        return self._waiting

    async def stream_closed(self) -> list[str]:
        """The server closed the `<Connect>`'s Media Stream: Twilio requests the action
        and goes on with its answer (without an action, with the verbs after `<Connect>`)."""
        action = self.connect.get("action")
        if not action:
            return await self.silence()
        return await self._go(self._request(action))

    async def hangup(self, recorded: float = 0.0) -> Reply:
        """The caller hangs up: Twilio stops and sends the status callback. Hanging up
        in a <Record> after `recorded` seconds still posts the recording first."""
        if self.ended:
            raise AssertionError(f"the call has ended already ({self.end})")
        rec = self._waiting if recorded and self.waiting == "record" else None
        if rec is not None:
            request = self._recording(recorded, "hangup")
            reply = await self.send(request)  # its TwiML goes nowhere: the caller is gone
            self.last_request, self.last_reply = request, reply
            if reply.status != 200:
                raise TwilioError(f"{request.url} answered {reply.status}: {reply.text[:300]}")
        self._waiting, self._rest = None, []
        ended = await self._finish("caller-hung-up")
        if rec is not None:  # stored after the call: Twilio processes it then
            await self.recording_stored(rec, request)
        return ended

    # -- lower level: for retries and several servers ------------------------------------------

    async def send(self, request: Request, base_url: str | None = None) -> Reply:
        """Send `request` without changing the call's progress (a retry, a duplicate)."""
        return await self.sim.send(request, base_url or self.base_url)

    async def resend(self, base_url: str | None = None) -> Reply:
        """Twilio retrying the last webhook: the same URL and form once more."""
        if self.last_request is None:
            raise AssertionError("nothing was sent yet")
        return await self.send(self.last_request, base_url)

    async def follow(self, request: Request, reply: Reply) -> list[str]:
        """Go on with a reply got by `send` as if `request` had been sent by `_go`."""
        self.last = []
        self._waiting, self._rest = None, []
        await self._document(request, reply)
        return self.last

    # -- Twilio's side -------------------------------------------------------------------------

    def _request(self, url: str, **extra: str) -> Request:
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": "in-progress",
            "Called": self.to,
            "CalledCountry": "US",
            "Caller": self.from_,
            "CallerCountry": "US",
            "Direction": self.direction,
            "From": self.from_,
            "FromCountry": "US",
            "To": self.to,
            "ToCountry": "US",
        }
        params.update(self.params)
        params.update(extra)
        # TwiML's URLs are relative to the document that holds them
        return Request(urljoin(self._url or self.sim.public_url + "/", url), params)

    async def _go(self, request: Request) -> list[str]:
        self.last = []
        self._waiting, self._rest = None, []
        await self._document(request, await self.send(request))
        return self.last

    async def _document(self, request: Request, reply: Reply) -> None:
        await self._run(self._accept(request, reply))

    def _accept(self, request: Request, reply: Reply) -> list[ET.Element]:
        """The verbs of a reply, which becomes the current document."""
        self.last_request, self.last_reply = request, reply
        if reply.status != 200:
            raise TwilioError(f"{request.url} answered {reply.status}: {reply.text[:300]}")
        try:
            root = reply.xml()
        except ET.ParseError as e:
            raise TwilioError(f"{request.url} answered what is not XML ({e}): {reply.text}") from e
        if root.tag != "Response":
            raise TwilioError(f"{request.url}: the root is <{root.tag}>, not <Response>")
        self.documents.append((request.url, reply.text))
        self._url = request.url
        return list(root)

    async def _run(self, verbs: Sequence[ET.Element]) -> None:
        for i, verb in enumerate(verbs):
            tag = verb.tag
            if tag in ("Say", "Play"):
                self._hear(verb)
            elif tag == "Pause":
                continue
            elif tag == "Gather":
                _check_gather(verb)
                for inner in verb:
                    if inner.tag in ("Say", "Play"):
                        self._hear(inner)
                self._waiting, self._rest = verb, list(verbs[i + 1 :])
                return
            elif tag in ("Record", "Connect"):
                self._waiting, self._rest = verb, list(verbs[i + 1 :])
                return
            elif tag == "Redirect":
                target = (verb.text or "").strip() or self._url
                await self._follow_to(self._request(target))
                return
            elif tag in ("Dial", "Enqueue"):
                await self._transfer(verb)
                return
            elif tag == "Hangup":
                await self._finish("hangup")
                return
            else:
                raise TwilioError(f"Twilio does not know the verb <{tag}>")
        await self._finish("end-of-document")

    async def _follow_to(self, request: Request) -> None:
        await self._document(request, await self.send(request))

    async def _transfer(self, verb: ET.Element) -> None:
        self.transfer = verb
        action = verb.get("action")
        if not action:
            await self._finish(verb.tag.lower())
            return
        if self.hold_transfers:
            return  # the caller waits (in a queue, say) until the test ends the transfer
        await self._transfer_ended(self.dial_status)

    async def transfer_ends(self, result: str) -> list[str]:
        """The transfer under way ends as `result` (a DialCallStatus, or for <Enqueue> what
        QueueResult says of it): Twilio posts the action and goes on with its answer; what
        the caller heard then."""
        self.last = []
        return await self._transfer_ended(result)

    async def _transfer_ended(self, result: str) -> list[str]:
        verb = self.transfer
        assert verb is not None, "no transfer is under way"
        action = verb.get("action", "")
        self.dial_status = result
        if verb.tag == "Dial":
            answered = self.dial_status in ANSWERED
            extra = {
                "DialCallStatus": self.dial_status,
                "DialCallSid": new_call_sid(),
                "DialCallDuration": "42" if answered else "0",
                "DialBridged": "true" if answered else "false",
            }
        else:
            extra = {
                "QueueResult": self.dial_status
                if self.dial_status in QUEUE_ONLY
                else "bridged"
                if self.dial_status in ANSWERED
                else "hangup",
                "QueueSid": "QU" + uuid.uuid4().hex,
                "QueueTime": "7",
            }
        request = self._request(action, **extra)
        verbs = self._accept(request, await self.send(request))
        if verbs:  # the agent leg is over and the IVR speaks again
            await self._run(verbs)
        else:
            await self._finish(verb.tag.lower())
        return self.last

    async def _finish(self, how: str) -> Reply:
        self.ended, self.end = True, how
        request = self._request(
            self.sim.public(self.status_path),
            CallStatus="completed",
            CallDuration=str(max(1, round(time.monotonic() - self._started))),
            CallbackSource="call-progress-events",
            SequenceNumber="0",
            Timestamp=time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        )
        self.status_request, self.status_sent = request, await self.send(request)
        if self.status_sent.status != 200:
            raise TwilioError(f"status callback answered {self.status_sent.status}")
        return self.status_sent

    def _hear(self, verb: ET.Element) -> None:
        text = (verb.text or "").strip()
        if verb.tag == "Play":
            text = urljoin(self._url, text)
        self.heard.append(text)
        self.last.append(text)


def _check_gather(gather: ET.Element) -> None:
    """What Twilio warns of in a <Gather>: `speechTimeout="auto"` with a `speechModel`
    (warning 13335), and speech settings on a gather that takes no speech."""
    if gather.get("speechModel") and gather.get("speechTimeout") == "auto":
        raise TwilioError('13335: speechTimeout="auto" cannot be used with a speechModel')
    if "speech" not in gather.get("input", "dtmf").split():
        extra = {"hints", "speechModel", "speechTimeout", "language"} & set(gather.keys())
        if extra:
            raise TwilioError(f"speech settings on a <Gather> without speech: {sorted(extra)}")


def _collect(keys: str, gather: ET.Element) -> dict[str, str]:
    """What Twilio posts for keys pressed in a <Gather>: `numDigits` and `finishOnKey`
    end the collection, and the finish key itself is not part of `Digits`."""
    finish = gather.get("finishOnKey", "#")
    limit = int(gather.get("numDigits", "0") or 0)
    digits = ""
    for key in keys:
        if finish and key == finish:
            return {"Digits": digits, "FinishedOnKey": key}
        digits += key
        if limit and len(digits) >= limit:
            break
    return {"Digits": digits, "FinishedOnKey": ""}


async def wait_until(
    check: Callable[[], Awaitable[T]], timeout: float = 10.0, every: float = 0.02
) -> T:
    """Poll an async check until it returns something truthy (bounded, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {check}")
        await asyncio.sleep(every)
