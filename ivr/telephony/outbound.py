"""Outbound calls' webhook URLs: the flow and the variables a call starts with, in the URL.

`ivr notify` places a call whose `Url` is the voice webhook with `?flow=ID&vars=...`
(the variables as base64url JSON: no character that a proxy or a URL library would
encode otherwise, so the URL Twilio signs is the URL the server checks). Twilio signs
the whole URL, query included, with the account's auth token: a webhook whose signature
holds got its variables from whoever holds the account's credentials. A server that
does not check signatures (`--insecure`) takes no variables.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson

MAX_VARS = 2048  # bytes of JSON: a URL Twilio takes is at most 4,000 characters
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# what the call itself sets: a notification cannot say who the caller is
RESERVED = frozenset({"caller", "called", "call_id", "flow_id", "answered_by"})


def check_vars(given: Any) -> dict[str, Any]:
    """`given` as a call's starting variables; ValueError says what is wrong."""
    if not isinstance(given, dict):
        raise ValueError('expected a JSON object of variables, e.g. {"order": "123456"}')
    for name in given:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a variable name (letters, digits and _)")
        if name in RESERVED:
            raise ValueError(f"{name!r} is set by the call itself")
    if len(orjson.dumps(given)) > MAX_VARS:
        raise ValueError(f"the variables take more than {MAX_VARS} bytes as JSON")
    return dict(given)


def encode_vars(given: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(dict(given))).decode().rstrip("=")


def decode_vars(text: str) -> dict[str, Any]:
    """The variables of a `vars=` parameter; ValueError when they are not."""
    if len(text) > MAX_VARS * 2:
        raise ValueError("vars too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return check_vars(orjson.loads(raw))
    except (binascii.Error, orjson.JSONDecodeError) as e:
        raise ValueError(f"vars is not base64url JSON: {e}") from None


def voice_url(public_url: str, flow_id: str, given: Mapping[str, Any] | None = None) -> str:
    """The voice webhook an outbound call on `flow_id` asks once answered."""
    query = {"flow": flow_id, **({"vars": encode_vars(given)} if given else {})}
    return f"{public_url.rstrip('/')}/twilio/voice?{urlencode(query)}"


def status_url(public_url: str, flow_id: str) -> str:
    """The status webhook an outbound call reports its end to (busy, no-answer, ...)."""
    return f"{public_url.rstrip('/')}/twilio/status?{urlencode({'flow': flow_id})}"
