"""Twilio's REST API: send a message, place a call, read a call; a result, never an exception.

The twilio library's `Client` builds each request (its URL, form, auth) and reads the
answer; the bytes move through aiohttp on the event loop (`_Http`), only to the API's
own origin: `https://api.twilio.com`, or `IVR_TWILIO_API` (a test's stand-in, an
on-prem proxy). Credentials come from the environment: `TWILIO_ACCOUNT_SID` with
`TWILIO_AUTH_TOKEN`, or with an API key pair (`TWILIO_API_KEY`, `TWILIO_API_SECRET`).

Used by the runner (a flow's `message` node), `ivr notify` (an outbound call or the
opening message of a text conversation) and campaigns:

    rest = TwilioRest.from_env()
    sent = await rest.send_message("+15557654321", "Your code: 1234", "+15550100")
    call = await rest.place_call("+15557654321", "+15550100", url, status_callback)
    if not sent.ok: log.warning("not sent: %s", sent.error)
    await rest.close()
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ivr.errors import ConfigError

log = logging.getLogger("ivr.rest")

TWILIO_API = "https://api.twilio.com"
TIMEOUT = 10.0  # seconds one request may take
MAX_ANSWER = 1 << 20  # Twilio's answers are a few KiB: more is an error, not a memory problem
CHANNELS = ("sms", "whatsapp")
# E.164: what a message or call may be sent to (a template may render anything)
_NUMBER = re.compile(r"\+?[1-9][0-9]{5,14}")
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
# answering-machine detection that waits for the greeting's end, so a voicemail path speaks
# after the beep (`AnsweredBy`: human, machine_end_beep, machine_end_silence, ...)
DETECT = "DetectMessageEnd"  # (`ivr.notify.DETECT` too, without importing this)


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of one request: `ok` with the resource's `sid` and Twilio's `status`
    (queued, ringing, completed, ...), or the `error` that stopped it. `code` is the HTTP
    status (0 when nothing came back: refused, timed out, not allowed). No phone number
    is ever in `error`."""

    ok: bool
    sid: str = ""
    status: str = ""
    error: str = ""
    code: int = 0
    answered_by: str = ""  # a call's, with machine detection: human, machine_end_beep, ...


def masked(number: str) -> str:
    """A phone number with all but its last 2 digits hidden: what logs and transcripts show."""
    digits = number.removeprefix("whatsapp:")
    return "*" * max(len(digits) - 2, 0) + digits[-2:] if digits else "-"


def is_number(text: str) -> bool:
    """Whether `text` is a phone number a message or call may go to (E.164, + optional)."""
    return _NUMBER.fullmatch(text.strip()) is not None


def api_url(text: str, name: str = "IVR_TWILIO_API") -> str:
    """`text` as the API's base URL: scheme and host (a port), nothing after them."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        raise ConfigError(f"{name}: expected a base URL such as {TWILIO_API}, got {text!r}")
    return f"{parts.scheme}://{parts.netloc}"


def twilio_rest(env: Mapping[str, str] | None = None) -> TwilioRest | None:
    """The API when the environment names an account (TWILIO_ACCOUNT_SID), else None:
    a server without it takes calls, and its `message` nodes go to their on_error."""
    env = os.environ if env is None else env
    if not env.get("TWILIO_ACCOUNT_SID", "").strip():
        log.info("TWILIO_ACCOUNT_SID is not set: message nodes cannot send")
        return None
    return TwilioRest.from_env(env)


class TwilioRest:
    """Twilio's REST API for one account: shared by every call of a process."""

    def __init__(
        self,
        account_sid: str,
        secret: str,
        key_sid: str | None = None,
        base_url: str = TWILIO_API,
        timeout: float = TIMEOUT,
    ) -> None:
        """`secret` is the auth token, or the secret of the API key `key_sid`."""
        self.account_sid, self.base_url = account_sid, api_url(base_url)
        self.http = _Http(self.base_url, timeout)
        # environment={}: the library reads no TWILIO_EDGE or TWILIO_REGION of its own,
        # which would send requests to another host than the one allowed
        self.client = Client(
            key_sid or account_sid, secret, account_sid, http_client=self.http, environment={}
        )
        self.client.api.base_url = self.base_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TwilioRest:
        """The API as the environment configures it; ConfigError names what is missing."""
        env = os.environ if env is None else env
        sid = env.get("TWILIO_ACCOUNT_SID", "").strip()
        if not _SID.fullmatch(sid) or not sid.startswith("AC"):
            raise ConfigError(
                "TWILIO_ACCOUNT_SID: expected the account's SID (AC followed by 32 hex)"
            )
        key, secret = env.get("TWILIO_API_KEY", "").strip(), env.get("TWILIO_API_SECRET", "")
        if key and not secret:
            raise ConfigError("TWILIO_API_SECRET: TWILIO_API_KEY is set, its secret is not")
        if not key:
            secret = env.get("TWILIO_AUTH_TOKEN", "")
            if not secret:
                raise ConfigError(
                    "TWILIO_AUTH_TOKEN: not set (or set TWILIO_API_KEY and TWILIO_API_SECRET)"
                )
        base = api_url(env["IVR_TWILIO_API"]) if env.get("IVR_TWILIO_API") else TWILIO_API
        return cls(sid, secret, key or None, base)

    async def send_message(
        self,
        to: str,
        body: str,
        from_: str,
        channel: str = "sms",
        status_callback: str | None = None,
    ) -> Sent:
        """Send `body` to the number `to` from `from_` by SMS or WhatsApp (`channel`)."""
        if channel not in CHANNELS:
            return Sent(False, error=f"unknown channel {channel!r} (sms or whatsapp)")
        if not is_number(to) or not is_number(from_):
            which = "to" if not is_number(to) else "from"
            return Sent(False, error=f"the message's {which} is not a phone number")
        if not body.strip():
            return Sent(False, error="the message is empty")
        prefix = "whatsapp:" if channel == "whatsapp" else ""
        return await self._request(
            "message",
            self.client.api.v2010.account.messages.create_async,
            to=prefix + to.strip(),
            from_=prefix + from_.strip(),
            body=body,
            status_callback=status_callback,
        )

    async def place_call(
        self,
        to: str,
        from_: str,
        url: str,
        status_callback: str | None = None,
        machine_detection: str | None = DETECT,
        ring_timeout: int | None = None,
    ) -> Sent:
        """Call `to` from `from_`; once answered Twilio asks `url` (the voice webhook) what
        to do, telling `AnsweredBy` when `machine_detection` is on; `status_callback`
        hears how the call ended. `ring_timeout`: seconds to let it ring (Twilio's 60)."""
        if not is_number(to) or not is_number(from_):
            which = "to" if not is_number(to) else "from"
            return Sent(False, error=f"the call's {which} is not a phone number")
        return await self._request(
            "call",
            self.client.api.v2010.account.calls.create_async,
            to=to.strip(),
            from_=from_.strip(),
            url=url,
            method="POST",
            status_callback=status_callback,
            status_callback_method="POST" if status_callback else None,
            machine_detection=machine_detection,
            timeout=ring_timeout,
        )

    async def call_status(self, sid: str) -> Sent:
        """A call's status now (queued, ringing, in-progress, completed, busy, ...), and
        what answered it (`answered_by`) with machine detection."""
        if not _SID.fullmatch(sid):
            return Sent(False, error="not a call SID")
        return await self._request("call", self.client.api.v2010.account.calls(sid).fetch_async)

    async def message_status(self, sid: str) -> Sent:
        """A message's status now (queued, sent, delivered, read, undelivered, failed)."""
        if not _SID.fullmatch(sid):
            return Sent(False, error="not a message SID")
        messages = self.client.api.v2010.account.messages
        return await self._request("message", messages(sid).fetch_async)

    async def _request(self, what: str, request: Any, **fields: Any) -> Sent:
        """Run one request of the library; what went wrong becomes the result."""
        given = {k: v for k, v in fields.items() if v is not None}
        try:
            made = await request(**given)
        except TwilioRestException as e:
            # Twilio's own words and code (21211: invalid To, 21610: the number opted out)
            log.warning("Twilio refused the %s: %s %s", what, e.status, e.code)
            return Sent(False, error=f"Twilio error {e.code or e.status}: {_msg(e)}", code=e.status)
        except (TimeoutError, aiohttp.ClientError, OSError, TwilioException, ValueError) as e:
            why = str(e) if isinstance(e, _Refused) else type(e).__name__
            log.warning("the %s was not sent: %s", what, why)
            return Sent(False, error=f"not sent: {why}")
        answered_by = str(getattr(made, "answered_by", None) or "")
        return Sent(
            True, str(made.sid or ""), str(made.status or ""), code=200, answered_by=answered_by
        )

    async def close(self) -> None:
        await self.http.close()


def _msg(error: TwilioRestException) -> str:
    """Twilio's message without the numbers it may quote ("The 'To' number +1555...")."""
    return re.sub(r"\+?[0-9]{6,}", lambda m: masked(m[0]), str(error.msg or ""))[:200]


class _Refused(TwilioException):
    """A request to another origin than the API's: never sent."""


class _Http(AsyncHttpClient):
    """The library's requests over aiohttp, to the API's origin only."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(log, True, timeout)
        self.origin = base_url
        self.session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(uri)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            raise _Refused(f"{parts.netloc} is not the Twilio API ({self.origin})")
        if self.session is None:
            self.session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        headers = dict(headers or {})
        if auth:  # basic auth, written out (aiohttp's `auth=` is deprecated)
            pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        async with self.session.request(
            method,
            uri,
            params=_pairs(params),
            data=_pairs(data),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            allow_redirects=False,
        ) as response:
            raw = b""  # read(n) answers what has arrived, up to n: read to the end
            while chunk := await response.content.read(MAX_ANSWER + 1 - len(raw)):
                raw += chunk
            if len(raw) > MAX_ANSWER:
                raise ValueError("Twilio's answer is larger than 1 MiB")
            return Response(response.status, raw.decode("utf-8", "replace"), response.headers)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def _pairs(fields: dict[str, object] | None) -> list[tuple[str, str]] | None:
    """A form as (name, value) pairs: a list value is the name repeated, as Twilio reads it."""
    if not fields:
        return None
    return [
        (name, str(item))
        for name, value in fields.items()
        for item in (value if isinstance(value, list) else [value])
    ]
