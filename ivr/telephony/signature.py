"""Twilio request signatures: which URL Twilio signed, and whether the signature fits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from twilio.request_validator import RequestValidator, add_port, compare, remove_port

log = logging.getLogger("ivr.security")


class SignatureCheck:
    """Checks `X-Twilio-Signature` with the twilio library against the public URL."""

    def __init__(
        self,
        auth_token: str | None,
        public_url: str | None,
        trust_proxy: bool,
        insecure: bool = False,
    ) -> None:
        self.validator = RequestValidator(auth_token) if auth_token else None
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

    def problem(self, request: web.Request, form: Mapping[str, Any]) -> str | None:
        """None when the request is Twilio's, else why it is not."""
        if self.insecure:
            return None
        if self.validator is None:
            return "TWILIO_AUTH_TOKEN is not set"
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return "no X-Twilio-Signature header"
        url = self.url(request)
        # one HMAC in the usual case; the library's validate() always computes two
        expected = self.validator.compute_signature(url, form)
        if compare(expected, signature):
            return None
        parsed = urlparse(url)
        other = remove_port(parsed) if parsed.port else add_port(parsed)
        if other != url and compare(self.validator.compute_signature(other, form), signature):
            return None
        return "signature does not match"
