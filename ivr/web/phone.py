"""`/phone`: the browser softphone on the admin listener, and its WebSocket `/phone/ws`.

The page (`static/phone.js`, its AudioWorklet `static/phone-worklet.js`) speaks the
Twilio Media Streams protocol to the very driver Twilio's calls run on
(`ivr.telephony.stream`), so a designer hears what a caller would: 8 kHz mu-law in 20 ms
`media` frames both ways, `mark` echoed once the audio before it played, `clear` on
barge-in, `dtmf` from the keypad. What differs is the `Peer`: no Twilio signature (the
admin listener's guard, ivr/web/guard.py, checks Host, Origin and the token), the page
starts the call (its sids are made here, the caller is "browser"), typed "speech" comes
in as `ivr.text`, and a live transcript goes out as `ivr.transcript`; /flows lights the
node the call is at (`ivr.web.live`). Calls are counted and recorded like any other.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from html import escape

from aiohttp import web

from ivr.flow.model import Flow
from ivr.registry import FlowRegistry
from ivr.telephony import media
from ivr.telephony.stream import MediaStreams, Peer
from ivr.web.layout import STATIC, page
from ivr.web.live import publish

log = logging.getLogger("ivr.phone")

PATH, SOCKET = "/phone", "/phone/ws"
CALLER = "browser"  # the softphone's caller, as the call's record keeps it (keyed)
KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
KEY_NAMES = {"*": "star", "#": "pound"}
LETTERS = dict(zip("23456789", "ABC DEF GHI JKL MNO PQRS TUV WXYZ".split(), strict=True))


def add_phone(
    admin: web.Application, flows: FlowRegistry, streams: Callable[[], MediaStreams]
) -> None:
    """Serve `/phone` and `/phone/ws` on the admin app; `streams` gives the public app's
    Media Streams handler (made when that app starts: looked up per call)."""
    peer = softphone(flows)

    async def phone(request: web.Request) -> web.Response:
        chosen = request.query.get("flow", "")
        return web.Response(text=render(flows.current, chosen), content_type="text/html")

    async def socket(request: web.Request) -> web.StreamResponse:
        return await streams().handle(request, peer)

    admin.router.add_get(PATH, phone)
    admin.router.add_get(SOCKET, socket)


def softphone(flows: FlowRegistry) -> Peer:
    """The softphone's side of a stream: what the page may do, and who hears of it."""

    def admit(start: media.Start) -> media.Start:
        """The page names the flow (and a version, optionally); the rest is made here,
        as the voice webhook would have routed the call."""
        custom = start.custom
        flow = flows.get(custom.get("flow", ""), custom.get("version") or None)
        called = flow.numbers[0] if flow is not None and flow.numbers else ""
        return replace(
            start,
            stream_sid="MZ" + uuid.uuid4().hex,
            call_sid="CA" + uuid.uuid4().hex,
            custom={
                "flow": custom.get("flow", "")[:64],
                "version": custom.get("version", "")[:64],
                "caller": CALLER,
                "called": called,
                "direction": "inbound",
            },
        )

    return Peer(
        signed=False, extras=True, admit=admit, handover=False, observe=observe, rehearsal=True
    )


def observe(flow: str, node: str | None, call: str) -> None:
    """The node a softphone call is at, for /flows (None: the call is over)."""
    try:
        publish(flow, node, call)
    except Exception:  # the diagram's feed must never cost the call
        log.exception("the live node feed failed")


# -- the page ------------------------------------------------------------------------------------


def render(current: Mapping[str, Flow], chosen: str = "") -> str:
    """The softphone page: the flows to call, the keypad, the transcript."""
    options = "".join(
        f'<option value="{escape(f.id)}"{" selected" if f.id == chosen else ""}>'
        f"{escape(f.id)} ({escape(f.language)}, {escape(f.version)})</option>"
        for f in sorted(current.values(), key=lambda f: f.id)
    )
    keys = "".join(
        f'<button type="button" class="key" data-key="{escape(k)}" '
        f'aria-label="{KEY_NAMES.get(k, k)}">{escape(k)}'
        f'<small aria-hidden="true">{LETTERS.get(k, "")}</small></button>'
        for k in KEYS
    )
    body = (
        f'<link rel="stylesheet" href="{STATIC}/phone.css">'
        '<div class="phone">'
        '<section class="handset" aria-label="Softphone">'
        '<form id="dial" class="dial">'
        '<label for="flow">Flow</label>'
        f'<select id="flow" name="flow" required>{options}</select>'
        '<button type="submit" id="call" class="call">Call</button>'
        '<button type="button" id="hangup" class="hangup" disabled>Hang up</button>'
        "</form>"
        '<p id="status" class="status" role="status" aria-live="polite">'
        f"{'Ready: pick a flow and call.' if current else 'No flow is loaded.'}</p>"
        f'<div id="keypad" class="keypad" role="group" aria-label="Keypad">{keys}</div>'
        '<p class="hint">Keys 0-9, * and # on your keyboard press the keypad.</p>'
        '<form id="say" class="say">'
        '<label for="text">Say (typed instead of spoken)</label>'
        '<input id="text" name="text" autocomplete="off" maxlength="200" disabled>'
        '<button type="submit" id="send" disabled>Say</button>'
        "</form>"
        '<label class="mute"><input type="checkbox" id="mute"> Mute the microphone</label>'
        "</section>"
        '<section class="log" aria-labelledby="transcript-title">'
        '<h2 id="transcript-title">Transcript</h2>'
        '<p class="path">Path: <span id="path">-</span></p>'
        '<ol id="transcript" class="transcript"></ol>'
        '<p id="outcome" class="outcome" role="status" aria-live="polite"></p>'
        "</section>"
        "</div>"
    )
    return page("Phone", body, ["phone.js"])
