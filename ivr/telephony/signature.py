"""Twilio request signatures: which URL Twilio signed, and whether the signature fits."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from twilio.request_validator import RequestValidator

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

    def problem(self, request: web.Request, form: Mapping[str, str]) -> str | None:
        """None when the request is Twilio's, else why it is not."""
        if self.insecure:
            return None
        if self.validator is None:
            return "TWILIO_AUTH_TOKEN is not set"
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return "no X-Twilio-Signature header"
        if not self.validator.validate(self.url(request), dict(form), signature):
            return "signature does not match"
        return None
