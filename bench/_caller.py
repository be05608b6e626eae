"""Twilio's side of the webhook benchmark: simulated calls through flows/telebanking.yaml.

Each call has its own CallSid and walks one of a few scenarios (DTMF, speech,
silence, mistyped input, a transfer, a hang-up; in the self-service mix, backend
lookups), posting what Twilio posts, signed the way Twilio signs it, to the URL
the previous TwiML reply named, then sends the status callback. A small
keep-alive HTTP/1.1 client keeps the driver's own CPU per turn well below a
server's.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from multidict import MultiDict
from twilio.request_validator import RequestValidator

PUBLIC_URL = "https://ivr.example.com"  # what Twilio signs; servers are reached on loopback
TOKEN = os.urandom(16).hex()  # the auth token Twilio and the servers share for this run
ACCOUNT_SID = "AC" + os.urandom(16).hex()
NUMBER = "+15550100"  # telebanking's number
# telebanking splits its callers with telebanking_voice (an experiment): the benchmark pins
# the keypad flow its scenarios walk, so every run measures the same flow
VOICE = "/twilio/voice?variant=telebanking"

# -- what a caller does ----------------------------------------------------------------------

KEYS, SPEECH, SILENCE, TRANSFER_ENDS = "keys", "speech", "silence", "transfer ends"


@dataclass(frozen=True)
class Step:
    """One caller action after the first webhook, and what ivr must answer to it."""

    kind: str
    value: str = ""
    expect: tuple[str, ...] = ()  # one of these appears in ivr's reply (not checked elsewhere)


MENU = ("For your balance",)
ACCOUNT = ("eight digit account number",)
GOODBYE = ("Goodbye.</Say><Hangup",)

AGENT = ("Connecting you to an agent", "Leave a message")  # office hours decide which
NOT_VALID = ("That account number is not valid",)
STILL_NOT_VALID = ("That account number is still not valid",)  # the second reprompt

# (name, steps): every call starts with /twilio/voice (answered with MENU) and ends with
# the status callback once the caller is gone
SCENARIOS: dict[str, tuple[Step, ...]] = {
    # the phone tree: menus, retries, validated input and transfers, no backend call
    "silence, then an agent by voice": (
        Step(SILENCE, "", ("didn't hear anything",)),
        Step(SPEECH, "operator", AGENT),  # <Enqueue>/<Dial> to an agent, or <Record>
        Step(TRANSFER_ENDS, "", ("<Response",)),
    ),
    "three mistyped account numbers, then an agent": (
        Step(KEYS, "1", ACCOUNT),
        Step(KEYS, "12345678#", NOT_VALID),
        Step(KEYS, "12345670#", STILL_NOT_VALID),  # sensitive: keys only, as Twilio is asked
        Step(KEYS, "11111111#", AGENT),
        Step(TRANSFER_ENDS, "", ("<Response",)),
    ),
    "menu again, not understood, then hanging up": (
        Step(KEYS, "*", MENU),
        Step(SPEECH, "pizza delivery", ("didn't catch that",)),
        Step(KEYS, "3", ACCOUNT),
    ),
    "zero out to an agent": (
        Step(KEYS, "0", AGENT),
        Step(TRANSFER_ENDS, "", ("<Response",)),
    ),
    # self-service: the flow's `http` nodes call the bank backend
    "balance, then block a card by voice": (
        Step(KEYS, "1", ACCOUNT),
        Step(KEYS, "12345674#", ("Your balance is $1,234.56",)),
        Step(KEYS, "1", MENU),
        Step(SPEECH, "block card", ACCOUNT),
        Step(KEYS, "12345674#", ("card ending in 4321",)),
        Step(SPEECH, "yes", ("Your card has been blocked",)),
        Step(KEYS, "2", GOODBYE),
    ),
    "transactions by voice": (
        Step(SPEECH, "last transactions", ACCOUNT),
        Step(KEYS, "12345674#", ("at Green Grocer",)),
        Step(SPEECH, "no thanks", GOODBYE),
    ),
    "silence, then balance": (
        Step(SILENCE, "", ("didn't hear anything",)),
        Step(KEYS, "1", ACCOUNT),
        Step(KEYS, "12345674#", ("Your balance is",)),
        Step(KEYS, "2", GOODBYE),
    ),
    # a short call: the menu, silence once, then 0 for an agent
    "silence, then zero out": (
        Step(SILENCE, "", ("didn't hear anything",)),
        Step(KEYS, "0", AGENT),
        Step(TRANSFER_ENDS, "", ("<Response",)),
    ),
}
SILENCE_AGENT, MISTYPED, HANG_UP, ZERO_OUT, BLOCK, TRANSACTIONS, BALANCE, QUICK = SCENARIOS
# the calls of a run, by call number: the path the webhook targets are set for (signature,
# session, step, TwiML, metrics) and, apart, self-service with backend calls (0.24 a turn)
PHONE_TREE = (MISTYPED, HANG_UP, SILENCE_AGENT, MISTYPED, ZERO_OUT) * 2
SELF_SERVICE = (BLOCK, TRANSACTIONS, BLOCK, BALANCE, ZERO_OUT) * 2
SHORT = (QUICK,) * 10

_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")
_ACTION = re.compile(r'\saction="([^"]*)"')
_REDIRECT = re.compile(r"<Redirect[^>]*>([^<]*)</Redirect>")
_RECORDING_STATUS = re.compile(r'\srecordingStatusCallback="([^"]*)"')
_LENGTH = re.compile(r"(?im)^content-length:\s*(\d+)")


def next_url(reply: str, kind: str) -> str:
    """Where Twilio posts next: the redirect on silence, else the verb's action URL."""
    found = (_REDIRECT if kind == SILENCE else _ACTION).search(reply)
    if found is None:
        raise ValueError(f"no URL to follow for {kind!r} in {reply[:300]!r}")
    return found.group(1).replace("&amp;", "&")


def form_encode(params: dict[str, str]) -> bytes:
    """`urlencode(params)`, same bytes, cheaper: most values need no quoting."""
    return "&".join(
        f"{k}={v if _PLAIN.fullmatch(v) else quote_plus(v)}" for k, v in params.items()
    ).encode()


def call_params(sid: str, caller: str) -> dict[str, str]:
    """The parameters Twilio sends with every voice webhook of an inbound call."""
    zone = {"City": "OAKLAND", "Country": "US", "State": "CA", "Zip": "94612"}
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "Direction": "inbound",
        "From": caller,
        "Caller": caller,
        "To": NUMBER,
        "Called": NUMBER,
    }
    for who in ("From", "Caller", "To", "Called"):
        params.update({who + k: v for k, v in zone.items()})
    return params


def step_params(step: Step, url: str) -> dict[str, str]:
    """What Twilio adds for one caller action, posted to `url`."""
    if step.kind == KEYS:
        digits, hash_key = step.value.rstrip("#"), step.value.endswith("#")
        return {"Digits": digits, "FinishedOnKey": "#" if hash_key else "", "msg": "Gather End"}
    if step.kind == SPEECH:
        return {"SpeechResult": step.value, "Confidence": "0.91", "Language": "en-US"}
    if step.kind == TRANSFER_ENDS and "/recorded" in url:
        return {
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
            f"/Recordings/RE{os.urandom(16).hex()}",
            "RecordingDuration": "14",
            "Digits": "hangup",
        }
    if step.kind == TRANSFER_ENDS:
        return {
            "DialCallStatus": "completed",
            "DialCallSid": "CA" + os.urandom(16).hex(),
            "DialCallDuration": "42",
            "DialBridged": "true",
        }
    return {}  # silence: Twilio follows the <Redirect> with the call's parameters only


# -- the driver: a small keep-alive HTTP/1.1 client, so the driver stays cheaper than servers --


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, str]] | None = None
        self.header_end = -1
        self.length = 0
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("server closed the connection"))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if self.header_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            self.status = int(head[9:12])
            match = _LENGTH.search(head)
            if match is None:  # not what any server here sends: give up on this connection
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_exception(ConnectionError("answer without Content-Length"))
                if self.transport is not None:
                    self.transport.close()
                return
            self.header_end, self.length = end + 4, int(match.group(1))
        if len(buf) >= self.header_end + self.length:
            body = bytes(buf[self.header_end : self.header_end + self.length])
            del buf[: self.header_end + self.length]
            self.header_end = -1
            if self.waiter is not None:
                self.waiter.set_result((self.status, body.decode()))

    async def send(self, request: bytes) -> tuple[int, str]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


@dataclass
class Load:
    """What the driver saw of one server: turns and latencies inside the measured window."""

    measuring: bool = False
    turns: int = 0
    errors: int = 0  # not 200, or ivr answered something its flow does not say there
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.errors += 1
        if len(self.problems) < 5:
            self.problems.append(text)


class Caller:
    """Twilio's side of calls, one at a time, over one connection to a server."""

    def __init__(self, port: int, load: Load, check: bool, think: float = 0.0) -> None:
        self.port, self.load, self.check, self.think = port, load, check, think
        self.validator = RequestValidator(TOKEN)
        self.conn: Connection | None = None

    async def post(self, path: str, params: dict[str, str]) -> str:
        # signed and encoded per request, as Twilio does: nothing precomputed. A MultiDict
        # takes twilio's fast path for values (a dict costs it two exceptions per key).
        signature = self.validator.compute_signature(PUBLIC_URL + path, MultiDict(params))
        body = form_encode(params)
        request = (
            f"POST {path} HTTP/1.1\r\n"
            "Host: ivr.example.com\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Accept: */*\r\n"
            "Cache-Control: max-age=259200\r\n"
            "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
            f"X-Twilio-Signature: {signature}\r\n"
            f"I-Twilio-Idempotency-Token: {os.urandom(16).hex()}\r\n"
            "X-Home-Region: us1\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        if self.conn is None or self.conn.transport is None:
            loop = asyncio.get_running_loop()
            _, self.conn = await loop.create_connection(Connection, "127.0.0.1", self.port)
            self.conn.transport.get_extra_info("socket").setsockopt(  # type: ignore[union-attr]
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        started = time.perf_counter()
        status, text = await self.conn.send(request)
        if self.load.measuring:
            self.load.latencies.append(time.perf_counter() - started)
            self.load.turns += 1
        if status != 200:
            self.load.problem(f"{path}: HTTP {status}: {text[:200]}")
        return text

    def expect(self, reply: str, wanted: tuple[str, ...], where: str) -> None:
        if self.check and wanted and not any(w in reply for w in wanted):
            self.load.problem(f"{where}: expected {wanted[0]!r}, got {reply[:300]!r}")

    async def pause(self) -> None:
        """The caller listening and answering; none at all by default (a closed loop)."""
        if self.think:
            await asyncio.sleep(random.expovariate(1 / self.think))

    async def call(self, scenario: str) -> None:
        sid = "CA" + os.urandom(16).hex()
        base = call_params(sid, f"+1555{int.from_bytes(os.urandom(3), 'big') % 10**7:07d}")
        started = time.time()
        reply = await self.post(VOICE, {**base, "CallStatus": "ringing"})
        self.expect(reply, MENU, f"{scenario} / answer")
        stored: tuple[str, dict[str, str]] | None = None  # a recording's status to tell
        for n, step in enumerate(SCENARIOS[scenario], 1):
            await self.pause()
            try:
                path = next_url(reply, step.kind)
            except ValueError as e:
                self.load.problem(f"{scenario} / step {n}: {e}")
                break
            params = {**base, "CallStatus": "in-progress", **step_params(step, path)}
            told = _RECORDING_STATUS.search(reply)
            if "RecordingUrl" in params and told is not None:
                stored = (told.group(1), {**base, "RecordingUrl": params["RecordingUrl"]})
            reply = await self.post(path, params)
            self.expect(reply, step.expect, f"{scenario} / step {n} ({step.kind} {step.value})")
        await self.pause()
        duration = str(max(1, round(time.time() - started)))
        await self.post(
            "/twilio/status",
            {
                **base,
                "CallStatus": "completed",
                "CallDuration": duration,
                "Duration": "1",
                "CallbackSource": "call-progress-events",
                "SequenceNumber": "0",
                "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            },
        )
        if stored is not None:  # the recording is stored after the call, as Twilio does it
            path, params = stored
            await self.post(path, {**params, "RecordingStatus": "completed"})


async def drive(
    port: int,
    warmup: int,
    calls: int,
    concurrency: int,
    check: bool,
    window: Callable[[bool], None],
    first: int = 0,
    think: float = 0.0,
    mix: tuple[str, ...] = PHONE_TREE,
) -> Load:
    """`warmup + calls` calls, `concurrency` at a time, each worker starting a call as its last
    one ends. The measured window opens as call `warmup` starts and closes when the last call
    has started, so it sees `concurrency` calls in flight throughout: no ramp up, no drain."""
    load = Load()
    numbers = iter(range(first, first + warmup + calls))
    opening = first + warmup

    async def worker() -> None:
        caller = Caller(port, load, check, think)
        for n in numbers:
            if n == opening:
                window(True)
                load.measuring = True
            try:
                await caller.call(mix[n % len(mix)])
            except (ConnectionError, OSError) as e:
                load.problem(f"call {n}: {type(e).__name__}: {e}")
                caller.conn = None
        if load.measuring:  # the first worker to find no call left closes the window
            load.measuring = False
            window(False)
        if caller.conn is not None and caller.conn.transport is not None:
            caller.conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return load
