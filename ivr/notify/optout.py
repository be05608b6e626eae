"""The opt-out list: numbers that said STOP get no call and no message from a campaign.

Kept in the records store's database (ivr/store/campaigns.py) by customer key (the keyed
HMAC of `Keys.customer_id`), never by number. The Messaging webhook reads each inbound
text with `keyword()` and, before anything else:

    word = keyword(form["Body"])
    if word == "stop":
        await record_stop(campaigns, keys, form["From"], source="sms")
    elif word == "start":
        await record_start(campaigns, keys, form["From"])

Twilio itself answers these keywords on a number with Advanced Opt-Out (and blocks texts
to a number that said STOP); the list makes voice campaigns honour them too. Pure but
for the two `record_*` functions, which only call the store.
"""

from __future__ import annotations

import time
from typing import Protocol

from ivr.keys import Keys

# Twilio's standard opt-out, opt-in and help keywords (a message that is exactly one)
STOP = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"})
START = frozenset({"start", "yes", "unstop"})
HELP = frozenset({"help", "info"})


def keyword(text: str | None) -> str | None:
    """ "stop", "start" or "help" when the whole message is one of Twilio's keywords
    (trimmed, any case, a trailing full stop or exclamation mark allowed); else None:
    "stop calling me at work" is a conversation, not a keyword."""
    word = (text or "").strip().rstrip(".!").strip().lower()
    if word in STOP:
        return "stop"
    if word in START:
        return "start"
    if word in HELP:
        return "help"
    return None


class OptOuts(Protocol):
    """Where opt-outs are kept: the campaign store (ivr/store/campaigns.py)."""

    async def opt_out(self, customer: str, source: str, at: float) -> bool:
        """Add a customer key; whether it was new."""

    async def opt_in(self, customer: str) -> bool:
        """Remove a customer key; whether it was there."""

    async def opted_out(self, customer: str) -> bool: ...


async def record_stop(
    store: OptOuts, keys: Keys, number: str, source: str = "sms", at: float | None = None
) -> bool:
    """`number` said STOP (source: sms, whatsapp, voice, ops): no campaign calls or texts
    it again. Whether it was new; False for a withheld number (nothing to key)."""
    customer = keys.customer_id(number)
    if customer is None:
        return False
    return await store.opt_out(customer, source, time.time() if at is None else at)


async def record_start(store: OptOuts, keys: Keys, number: str) -> bool:
    """`number` said START (or UNSTOP, YES): campaigns may reach it again."""
    customer = keys.customer_id(number)
    return False if customer is None else await store.opt_in(customer)
