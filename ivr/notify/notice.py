"""A notice to one person: an outbound call on a flow, or its opening as a text message.

An outbound call is placed with the Calls API: once it is answered, Twilio asks the
server's voice webhook (`IVR_PUBLIC_URL/twilio/voice?flow=ID&vars=...`, see
`ivr.telephony.outbound`), with answering-machine detection, so a machine gets the flow's
`voicemail` node; its end comes to the status webhook. `notify()` is the one-callee step;
`Notifier` keeps what campaigns repeat it with (the API, the flows, the public URL):

    notifier = Notifier.from_env(Path("flows"), "https://ivr.example.com")
    placed = await notifier.send("delivery_notice", "+15557654321", {"order": "123456"})
    placed.ok, placed.sid  # True, "CA..." (or False and placed.error)
    now = await notifier.status(placed.sid)  # .status ringing, completed...; .answered_by
    await notifier.close()

`ivr notify --to NUMBER` (`add_single_arguments`, `run_single`) sends one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ivr.errors import ConfigError, FlowError
from ivr.telephony.outbound import check_vars, status_url, voice_url

if TYPE_CHECKING:  # the engine and the REST client load when a notification is sent
    from ivr.flow.model import Flow
    from ivr.telephony.rest import Sent, TwilioRest

CHANNELS = ("voice", "sms", "whatsapp")
DETECT = "DetectMessageEnd"  # answering-machine detection (`ivr.telephony.rest.DETECT`)


async def notify(
    rest: TwilioRest,
    flow: Flow,
    to: str,
    public_url: str,
    given: Mapping[str, Any] | None = None,
    channel: str = "voice",
    from_: str | None = None,
    machine_detection: str | None = DETECT,
    server: str | None = None,
) -> Sent:
    """Call `to` on `flow` (channel voice), or send it the flow's opening by SMS or
    WhatsApp; `given` are the variables the call starts with (checked: `check_vars`),
    `from_` our number (default: the flow's first `numbers`, or IVR_SMS_FROM /
    IVR_WHATSAPP_FROM for a message). With `server` (the admin listener of `ivr serve`),
    a text is a conversation that server starts and keeps, so the answer goes on where
    the flow waits; without, only the opening is sent. What Twilio said, never an
    exception."""
    from ivr.telephony.rest import Sent

    try:
        given = check_vars(dict(given or {}))
    except ValueError as e:
        return Sent(False, error=f"vars: {e}")
    if channel != "voice" and server:
        return await conversation(server, flow.id, to, channel, given)
    sender = from_ or _sender(flow, channel)
    if not sender:
        return Sent(False, error="no number to call from: give --from, or `numbers` in the flow")
    if channel == "voice":
        return await rest.place_call(
            to,
            sender,
            voice_url(public_url, flow.id, given),
            status_url(public_url, flow.id),
            machine_detection,
        )
    text = opening(flow, to, sender, given, channel)
    if not text:
        return Sent(False, error=f"flow {flow.id} says nothing before it first waits")
    return await rest.send_message(to, text, sender, channel)


async def conversation(
    server: str, flow_id: str, to: str, channel: str, given: Mapping[str, Any]
) -> Sent:
    """An outbound text conversation started by the server at `server` (its admin
    listener's `POST /notify`, with IVR_ADMIN_TOKEN when it has one)."""
    import aiohttp

    from ivr.telephony.rest import Sent

    token = os.environ.get("IVR_ADMIN_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"flow": flow_id, "to": to, "channel": channel, "vars": dict(given)}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            url = server.rstrip("/") + "/notify"
            async with http.post(url, json=body, headers=headers) as response:
                found = await response.json(content_type=None)
                code = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        return Sent(False, error=f"the server at {server} did not answer: {type(e).__name__}")
    if not isinstance(found, dict):
        return Sent(False, error=f"the server at {server} answered {code}", code=code)
    ok, sid, status = bool(found.get("ok")), str(found.get("sid", "")), str(found.get("status", ""))
    return Sent(ok, sid, status, "" if ok else str(found.get("error", code)), code)


def opening(flow: Flow, to: str, ours: str, given: Mapping[str, Any], channel: str = "sms") -> str:
    """What the flow says first, until it first waits, as the text channels show it (one
    message, its prompts as paragraphs): an opening sent without a server to keep the
    conversation (no backend is called, no history read)."""
    from ivr.channels.text import render
    from ivr.engine import new_session, step
    from ivr.engine.events import CallStarted

    session = new_session(flow, f"notify-{int(time.time())}")
    session.channel, session.direction = channel, "outbound"
    _, actions = step(flow, session, CallStarted(to, ours, dict(given), at=time.time()))
    return "\n\n".join(render(flow, actions).messages)


def _sender(flow: Flow, channel: str) -> str:
    if channel != "voice":
        own = os.environ.get("IVR_WHATSAPP_FROM" if channel == "whatsapp" else "IVR_SMS_FROM")
        if own:
            return own.strip()
    return flow.numbers[0] if flow.numbers else ""


class Notifier:
    """`notify()` with what stays the same from one callee to the next: the API client,
    the flows (each loaded once), the server's public URL and our number."""

    def __init__(
        self,
        rest: TwilioRest,
        flows: Path,
        public_url: str,
        from_: str | None = None,
        machine_detection: str | None = DETECT,
        server: str | None = None,
    ) -> None:
        self.rest, self.flows, self.public_url = rest, flows, public_url
        self.from_, self.machine_detection = from_, machine_detection
        self.server = server  # texts: the server that keeps their conversations
        self._loaded: dict[str, Flow] = {}

    @classmethod
    def from_env(
        cls,
        flows: Path | None = None,
        public_url: str | None = None,
        from_: str | None = None,
        channel: str = "voice",
    ) -> Notifier:
        """From the settings (TWILIO_*, IVR_TWILIO_API, IVR_FLOWS, IVR_PUBLIC_URL: calls
        need the server's public URL, texts do not); ConfigError names what is missing."""
        from ivr.telephony.rest import TwilioRest

        where = flows or Path(os.environ.get("IVR_FLOWS") or "flows")
        url = public_url or os.environ.get("IVR_PUBLIC_URL")
        url = public(url) if channel == "voice" or url else ""
        server = os.environ.get("IVR_ADMIN_URL") or None
        return cls(TwilioRest.from_env(), where, url, from_, server=server)

    def flow(self, name: str) -> Flow:
        """The flow `name` (an id in `flows`, or a file), loaded once; ConfigError if none."""
        if name not in self._loaded:
            self._loaded[name] = find_flow(name, self.flows)
        return self._loaded[name]

    async def send(
        self, flow: str, to: str, given: Mapping[str, Any] | None = None, channel: str = "voice"
    ) -> Sent:
        """Call `to` on `flow` (or text it the flow's opening): what Twilio said."""
        from ivr.telephony.rest import Sent

        if channel == "voice" and not self.public_url:
            return Sent(False, error="no public URL for the call's webhooks (IVR_PUBLIC_URL)")
        try:
            found = self.flow(flow)
        except (ConfigError, FlowError) as e:
            return Sent(False, error=str(e).splitlines()[0])
        return await notify(
            self.rest,
            found,
            to,
            self.public_url,
            given,
            channel,
            self.from_,
            self.machine_detection,
            self.server,
        )

    async def status(self, sid: str) -> Sent:
        """A call's status now (`.status`, `.answered_by`), or a message's (SM...)."""
        if sid.startswith("SM") or sid.startswith("MM"):
            return await self.rest.message_status(sid)
        return await self.rest.call_status(sid)

    async def close(self) -> None:
        await self.rest.close()


def find_flow(name: str, flows: Path) -> Flow:
    """The flow in the file `name`, or with the id `name` in `flows` (ID.yaml)."""
    from ivr.flow import load_flow

    for path in (Path(name), flows / f"{name}.yaml", flows / f"{name}.yml"):
        if path.is_file():
            flow = load_flow(path)
            if path != Path(name) and flow.id != name:
                raise ConfigError(f"--flow {name}: {path} holds flow {flow.id!r}")
            return flow
    raise ConfigError(f"--flow {name}: no such file, nor {flows}/{name}.yaml")


def public(url: str | None) -> str:
    """The server's public base URL, as Twilio reaches it (--url, IVR_PUBLIC_URL)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "--url: the server's public URL, as Twilio reaches it (or IVR_PUBLIC_URL), "
            f"e.g. https://ivr.example.com; got {url!r}"
        )
    return url.rstrip("/") if url else ""


def parse_vars(text: str | None) -> dict[str, Any]:
    """--vars as a JSON object of variables; ConfigError says what is wrong."""
    try:
        return check_vars(json.loads(text) if text else {})
    except json.JSONDecodeError as e:
        raise ConfigError(f"--vars: not JSON ({e.msg} at column {e.colno})") from None
    except ValueError as e:
        raise ConfigError(f"--vars: {e}") from None


def add_single_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of one callee, beside `--flow`, `--channel` and `--flows` (a campaign's
    parser has those already)."""
    p.add_argument("--to", metavar="NUMBER", help="the one number to call or text (E.164)")
    p.add_argument("--vars", metavar="JSON", help='variables the call starts with: {"k": "v"}')
    p.add_argument(
        "--from",
        dest="from_",
        metavar="NUMBER",
        help="our number (default: the flow's first `numbers`; IVR_SMS_FROM / "
        "IVR_WHATSAPP_FROM for messages)",
    )
    p.add_argument("--url", help="the server's public URL (IVR_PUBLIC_URL)")
    p.add_argument(
        "--server",
        metavar="URL",
        help="a text: the admin listener of `ivr serve` (IVR_ADMIN_URL), which starts and "
        "keeps the conversation, so the answer goes on where the flow waits",
    )
    p.add_argument(
        "--no-amd", action="store_true", help="no answering-machine detection: always the start"
    )


def run_single(args: argparse.Namespace) -> int:
    """`ivr notify --to NUMBER`: 0 once Twilio took it, 1 when it did not (why on stderr)."""
    from ivr.telephony.rest import TwilioRest, is_number, masked

    if not args.to:
        raise ConfigError("notify: give --to NUMBER (one callee)")
    if not args.flow:
        raise ConfigError("notify: --flow FLOW is required (the flow the callee hears)")
    flows = args.flows or Path(os.environ.get("IVR_FLOWS") or "flows")
    flow = find_flow(args.flow, flows)
    if not is_number(args.to):
        raise ConfigError(f"--to: expected a phone number such as +15557654321, got {args.to!r}")
    given = parse_vars(args.vars)
    url = public(args.url or os.environ.get("IVR_PUBLIC_URL")) if args.channel == "voice" else ""
    args.server = args.server or os.environ.get("IVR_ADMIN_URL")
    if args.channel != "voice" and not args.server:
        print(
            "ivr notify: no --server (IVR_ADMIN_URL): only the opening is sent, and an answer "
            "starts a new conversation",
            file=sys.stderr,
        )
    rest = TwilioRest.from_env()

    async def run() -> Sent:
        try:
            detect = None if args.no_amd else DETECT
            return await notify(
                rest, flow, args.to, url, given, args.channel, args.from_, detect, args.server
            )
        finally:
            await rest.close()

    sent = asyncio.run(run())
    what = "call" if args.channel == "voice" else f"{args.channel} message"
    if not sent.ok:
        print(f"ivr notify: the {what} to {masked(args.to)} failed: {sent.error}", file=sys.stderr)
        return 1
    print(f"{what} to {masked(args.to)} on {flow.id}: {sent.sid} ({sent.status})")
    return 0
