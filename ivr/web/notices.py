"""`POST /notify` on the admin listener: an outbound text conversation, started by the
server that keeps it (`ivr notify --channel sms --server URL` and campaigns of texts).

The body is JSON: `{"flow": ID, "to": "+1555...", "channel": "sms"|"whatsapp", "vars":
{...}}`. The flow's opening is sent through Twilio's Messages API, and the conversation
is kept, outbound, so the customer's answer goes on where the flow waits. The answer is
`{"ok": true, "sid": "SM...", "status": "queued"}`, or `ok: false` with why (400 for a
bad request, 404 for an unknown flow, 409 when a conversation with them goes on on that
channel, 502 when Twilio did not take the message, 503 when the session store is down).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ivr.channels.conversations import TextConversations
from ivr.store.base import StoreUnavailable
from ivr.telephony.outbound import check_vars
from ivr.telephony.rest import is_number

log = logging.getLogger("ivr.notify")

CHANNELS = ("sms", "whatsapp")


def add_notices(admin: web.Application, texts: Callable[[], TextConversations]) -> None:
    """Add `POST /notify` to the admin app; `texts` gives the server's conversations once
    it runs."""

    async def notify(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except ValueError:
            return _refused(400, "expected a JSON object: flow, to, channel, vars")
        if not isinstance(body, dict):
            return _refused(400, "expected a JSON object: flow, to, channel, vars")
        channel, to = body.get("channel", "sms"), str(body.get("to", ""))
        if channel not in CHANNELS:
            return _refused(400, f"channel is one of: {', '.join(CHANNELS)}")
        if not is_number(to):
            return _refused(400, "to: expected a phone number such as +15557654321")
        try:
            given = check_vars(body.get("vars") or {})
        except ValueError as e:
            return _refused(400, f"vars: {e}")
        conversations = texts()
        flow_id = str(body.get("flow", ""))
        route = conversations.flows.route_call("", to, "", flow_id) if flow_id else None
        if route is None:
            return _refused(404, f"no flow {flow_id[:64]!r} is loaded")
        try:
            sent = await conversations.open(channel, to.strip(), route, given)
        except StoreUnavailable as e:
            log.warning("an outbound %s conversation could not be kept: %s", channel, e)
            return _refused(503, "the session store does not answer: try again")
        if sent.code == 409:
            return _refused(409, sent.error)
        if not sent.ok:
            log.warning(
                "an outbound %s conversation on %s was not sent: %s", channel, flow_id, sent.error
            )
            return _refused(502, sent.error or "Twilio did not take the message")
        return web.json_response({"ok": True, "sid": sent.sid, "status": sent.status})

    admin.router.add_post("/notify", notify)


def _refused(status: int, why: str) -> web.Response:
    return web.json_response({"ok": False, "error": why}, status=status)
