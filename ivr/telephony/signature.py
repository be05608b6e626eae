"""Twilio request signatures: which URL Twilio signed, and whether the signature fits."""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Iterable, Sequence
from urllib.parse import urlparse

from aiohttp import web
from twilio.request_validator import add_port, remove_port

log = logging.getLogger("ivr.security")


def keyed(auth_token: str) -> hmac.HMAC:
    """The HMAC of an auth token, keyed once: a copy per request skips the key set-up."""
    return hmac.new(auth_token.encode(), digestmod="sha1")


def signature(key: hmac.HMAC, url: str, form: Iterable[tuple[str, str]]) -> str:
    """Twilio's signature: base64 HMAC-SHA1 of the URL, then each field's name and value
    in sorted order. `RequestValidator.compute_signature` computes the same (the tests
    hold it to that) at twice the cost: it looks every field up again, through caught
    exceptions when `form` is a dict."""
    mac = key.copy()
    mac.update((url + "".join(map("".join, sorted(set(form))))).encode())
    return base64.b64encode(mac.digest()).decode()


class SignatureCheck:
    """Checks `X-Twilio-Signature` against the public URL Twilio requested."""

    def __init__(
        self,
        auth_token: str | None,
        public_url: str | None,
        trust_proxy: bool,
        insecure: bool = False,
    ) -> None:
        self.key = keyed(auth_token) if auth_token else None
        self.insecure = insecure
        self.public_url = public_url.rstrip("/") if public_url else None
        self.trust_proxy = trust_proxy

    def url(self, request: web.Request) -> str:
        """The URL Twilio requested, as Twilio saw it."""
        if self.public_url:
            return self.public_url + request.path_qs
        if self.trust_proxy:
            proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
            host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
            return f"{proto}://{host}{request.path_qs}"
        return f"{request.scheme}://{request.host}{request.path_qs}"

    def problem(
        self, request: web.Request, form: Sequence[tuple[str, str]], websocket: bool = False
    ) -> str | None:
        """None when the request is Twilio's, else why it is not. A Media Streams WebSocket
        handshake (`websocket`) is signed over its `wss://` URL and no form."""
        if self.insecure:
            return None
        if self.key is None:
            return "TWILIO_AUTH_TOKEN is not set"
        header = request.headers.get("X-Twilio-Signature", "")
        if not header:
            return "no X-Twilio-Signature header"
        if not header.isascii():  # base64 is ASCII: anything else is not Twilio's
            return "malformed X-Twilio-Signature header"
        given = header.encode()
        url = websocket_url(self.url(request)) if websocket else self.url(request)
        if hmac.compare_digest(signature(self.key, url, form).encode(), given):
            return None
        # Twilio signs with or without the default port; try the other only on a miss
        parsed = urlparse(url)
        other = remove_port(parsed) if parsed.port else add_port(parsed)
        if other != url and hmac.compare_digest(signature(self.key, other, form).encode(), given):
            return None
        return "signature does not match"


def websocket_url(url: str) -> str:
    """An http(s) URL as the ws(s) URL of the same place: Twilio signs a WebSocket
    handshake over the URL it was told to open, `wss://` and all."""
    scheme, sep, rest = url.partition("://")
    return {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme) + sep + rest
