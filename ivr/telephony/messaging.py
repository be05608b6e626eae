"""`POST /twilio/messaging`: SMS and WhatsApp messages, answered with TwiML `<Message>`.

Twilio posts each message a customer sends to one of the flows' numbers (a WhatsApp
sender's `From` starts `whatsapp:`); the flow is chosen by the `To` number as for a call.
The turn's messages go back as one `<Message>` (several could arrive out of order).
"""

from __future__ import annotations

import logging
import re
import time

from aiohttp import web
from twilio.twiml.messaging_response import MessagingResponse

from ivr.channels.conversations import TextConversations
from ivr.logs import hide
from ivr.metrics import Metrics
from ivr.telephony.signature import SignatureCheck
from ivr.telephony.webhook import _form, xml

log = logging.getLogger("ivr.messaging")

_SID = re.compile(r"(SM|MM|SS)[0-9a-fA-F]{32}")
EMPTY = str(MessagingResponse())


class MessagingWebhook:
    def __init__(
        self, conversations: TextConversations, signature: SignatureCheck, metrics: Metrics
    ) -> None:
        self.conversations, self.signature, self.metrics = conversations, signature, metrics
        self._timed = metrics.webhook("messaging")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Signature check, form parsing and the never-a-traceback rule around a message."""
        received = time.monotonic()
        try:
            pairs = await _form(request)
        except web.HTTPException:
            raise
        except Exception as e:
            self.metrics.rejected("bad_request")
            log.warning("refused %s: unreadable form (%s)", request.path, type(e).__name__)
            raise web.HTTPBadRequest(text="expected a form") from None
        fields = dict(pairs)
        hide(fields.get("Body"))
        why = self.signature.problem(request, pairs)
        if why:
            self.metrics.rejected("signature")
            log.warning("refused %s: %s", request.path, why, extra={"remote": request.remote})
            raise web.HTTPForbidden(text="invalid Twilio signature")
        sender, to = fields.get("From", "")[:64], fields.get("To", "")[:64]
        if not _SID.fullmatch(fields.get("MessageSid", "")) or not sender:
            self.metrics.rejected("bad_request")
            log.warning("refused %s: MessageSid or From missing or malformed", request.path)
            raise web.HTTPBadRequest(text="MessageSid or From missing or malformed")
        try:
            body = await self.message(request, sender, to, fields.get("Body", ""))
        except Exception:
            log.exception("messaging webhook failed")
            body = EMPTY  # the customer's next message finds the conversation where it was
        self._timed(time.monotonic() - received)
        return xml(body)

    async def message(self, request: web.Request, sender: str, to: str, text: str) -> str:
        channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
        number = to.removeprefix("whatsapp:")
        flows = self.conversations.flows
        route = flows.route_call(
            number, sender.removeprefix("whatsapp:"), "", request.query.get("flow")
        )
        reply = await self.conversations.receive(channel, sender, text, route, number)
        if not reply.messages:
            return EMPTY
        twiml = MessagingResponse()
        twiml.message("\n\n".join(reply.messages))
        return str(twiml)
