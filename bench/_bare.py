"""The floor of the webhook benchmark: an aiohttp app answering every POST with constant TwiML.

Run as `python bench/_bare.py --port N`. The document is built once, at start
up, and is about the size of an ivr menu turn: a `<Gather>` with a prompt and
the `<Redirect>` Twilio follows on silence. The form is not read or checked.
"""

from __future__ import annotations

import argparse

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse

PROMPT = (
    "For your balance, press 1 or say balance. "
    "To block a lost or stolen card, press 2 or say block card. "
    "For your last transactions, press 3 or say transactions. "
    "To speak to an agent, press 0. To hear this again, press star."
)


def document() -> str:
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf speech",
        action="/twilio/gather?t=1",
        method="POST",
        timeout=5,
        num_digits=1,
        speech_timeout="auto",
        language="en-US",
    )
    gather.say(PROMPT, language="en-US")
    response.redirect("/twilio/gather?t=1&silence=1", method="POST")
    return str(response.to_xml())


TWIML = document()


async def twilio(request: web.Request) -> web.Response:
    return web.Response(text=TWIML, content_type="text/xml", charset="utf-8")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/twilio/{name}", twilio)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
