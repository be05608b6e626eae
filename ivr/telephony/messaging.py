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
from ivr.notify.optout import OptOuts, keyword, record_start, record_stop
from ivr.registry import Route
from ivr.telephony.signature import SignatureCheck
from ivr.telephony.webhook import _form, xml

log = logging.getLogger("ivr.messaging")

_SID = re.compile(r"(SM|MM|SS)[0-9a-fA-F]{32}")
EMPTY = str(MessagingResponse())


class MessagingWebhook:
    def __init__(
        self,
        conversations: TextConversations,
        signature: SignatureCheck,
        metrics: Metrics,
        optouts: OptOuts | None = None,
    ) -> None:
        """`optouts`, when given, keeps who said STOP (campaigns call and text them no more)."""
        self.conversations, self.signature, self.metrics = conversations, signature, metrics
        self.optouts = optouts
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
            body = await self.message(
                request, sender, to, fields.get("Body", ""), fields["MessageSid"]
            )
        except Exception:
            log.exception("messaging webhook failed")
            body = EMPTY  # the customer's next message finds the conversation where it was
        self._timed(time.monotonic() - received)
        return xml(body)

    async def message(
        self, request: web.Request, sender: str, to: str, text: str, sid: str = ""
    ) -> str:
        channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
        number = to.removeprefix("whatsapp:")
        caller, flow = sender.removeprefix("whatsapp:"), request.query.get("flow")
        route = self.conversations.flows.route_call(number, caller, "", flow)
        word = keyword(text)
        if word is not None:
            answer = await self.keyword(word, channel, sender, caller, route)
            if answer is not None:
                return answer
        reply = await self.conversations.receive(
            channel, sender, text, route, number, message_id=sid
        )
        if not reply.messages:
            return EMPTY
        return _message("\n\n".join(reply.messages))

    async def keyword(
        self, word: str, channel: str, sender: str, caller: str, route: Route | None
    ) -> str | None:
        """Twilio's opt-out keywords, honoured before the flow: STOP ends the conversation
        and keeps campaigns away (Twilio confirms it); START (or YES, UNSTOP) lets them
        back, when the number had stopped; HELP outside a conversation says how to go on
        and how to stop. None: the message is the conversation's (a "yes" to a question)."""
        keys = self.conversations.keys
        if word == "stop":
            log.info("a %s sender said STOP: opted out", channel)
            if self.optouts is not None and keys is not None:
                await record_stop(self.optouts, keys, caller, source=channel)
            await self.conversations.stop(channel, sender)
            return EMPTY
        going_on = await self.conversations.going_on(channel, sender)
        if word == "start" and self.optouts is not None and keys is not None and not going_on:
            customer = keys.customer_id(caller)
            if customer is not None and await self.optouts.opted_out(customer):
                await record_start(self.optouts, keys, caller)
                log.info("a %s sender said START: opted in again", channel)
                return EMPTY
        if word == "help" and not going_on and route is not None:
            return _message(HELP_TEXT)  # in a conversation, the flow's own help answers
        return None


HELP_TEXT = "Write what you need and we will answer. Reply STOP to stop messages."


def _message(text: str) -> str:
    twiml = MessagingResponse()
    twiml.message(text)
    return str(twiml)
