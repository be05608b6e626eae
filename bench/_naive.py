"""The naive Twilio app of the webhook benchmark: TwiML and signature check done per request.

Run as `python bench/_naive.py --port N --public-url URL` with TWILIO_AUTH_TOKEN
set. Every request parses the form, checks `X-Twilio-Signature` with twilio's
`RequestValidator` and builds a `<Gather>` menu with `VoiceResponse`, the way
Twilio's tutorials do; it keeps no state.
"""

from __future__ import annotations

import argparse
import os

from _bare import PROMPT
from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse


def make_app(token: str, public_url: str) -> web.Application:
    validator = RequestValidator(token)

    async def twilio(request: web.Request) -> web.Response:
        form = await request.post()
        url = public_url + request.path_qs
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(url, dict(form), signature):
            raise web.HTTPForbidden(text="invalid Twilio signature")
        turn = int(request.query.get("t", "0")) + 1
        response = VoiceResponse()
        gather = response.gather(
            input="dtmf speech",
            action=f"/twilio/gather?t={turn}",
            method="POST",
            timeout=5,
            num_digits=1,
            speech_timeout="auto",
            language="en-US",
        )
        gather.say(PROMPT, language="en-US")
        response.redirect(f"/twilio/gather?t={turn}&silence=1", method="POST")
        return web.Response(text=str(response.to_xml()), content_type="text/xml", charset="utf-8")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/twilio/{name}", twilio)
    app.router.add_get("/healthz", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-url", required=True)
    args = parser.parse_args()
    app = make_app(os.environ["TWILIO_AUTH_TOKEN"], args.public_url.rstrip("/"))
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
