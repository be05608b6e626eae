"""Fuzzing every webhook over HTTP (issue 14): random forms, signed as Twilio signs them
or not, unknown and malformed call SIDs, odd query strings, bodies of the wrong type or
encoding, and garbage Media Streams messages: never a 500, and a call in progress goes
on as if nothing happened."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.telephony.webhook import TwilioWebhooks
from tests.functional.conftest import BANK, CALLER
from tests.functional.twilio_sim import Request

FIELDS = ["CallSid", "From", "To", "Digits", "SpeechResult", "Confidence", "CallStatus"]
FIELDS += ["RecordingUrl", "RecordingDuration", "DialCallStatus", "Direction", "AccountSid"]
SIDS = st.one_of(
    st.just("CA" + "0" * 32),
    st.text(max_size=40),
    st.from_regex(r"CA[0-9a-f]{32}\n?", fullmatch=True),
)
FORMS = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=12)),
    st.one_of(st.text(max_size=60), st.sampled_from(["", "1", "#", "0.5", "nan", "-1", "9" * 40])),
    max_size=8,
)
QUERIES = st.one_of(
    st.just(""),
    st.sampled_from(["?t=1", "?t=abc", "?t=-1&silence=1", "?flow=telebanking", "?flow=../x"]),
    st.text(alphabet="abt=&?%19x", max_size=20).map(lambda q: "?" + q),
)
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def test_random_webhooks_are_never_a_500(server, sim) -> None:
    call = await sim.start(BANK, CALLER)  # in progress throughout
    statuses: list[int] = []

    @SETTINGS
    @given(
        route=st.sampled_from(TwilioWebhooks.ROUTES),
        query=QUERIES,
        form=FORMS,
        sid=SIDS,
        signed=st.booleans(),
    )
    def one(route: str, query: str, form: dict[str, str], sid: str, signed: bool) -> None:
        params = {**form, "CallSid": sid}

        async def send() -> int:
            request = Request(sim.public(f"/twilio/{route}{query}"), params)
            body = urlencode(params).encode()  # as written, whatever characters are in it
            reply = await sim.send(request, signed=signed, body=body)
            return reply.status

        status = asyncio.run_coroutine_threadsafe(send(), loop).result(30)
        statuses.append(status)
        assert status < 500, (route, query, params, signed)

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(one)
    assert any(s == 200 for s in statuses) and any(s == 403 for s in statuses)
    assert await call.press("1")  # the call goes on: it hears the next prompt


async def test_bodies_of_the_wrong_kind_are_4xx(server, sim) -> None:
    call = await sim.start(BANK, CALLER)
    url = sim.public("/twilio/gather?t=1")
    bodies = [
        b"\xff\xfe\x00garbage",  # not UTF-8
        b"CallSid=%ZZ&Digits=%",  # broken escapes
        b"a=" + b"x" * 70_000,  # over the limit
        json.dumps({"CallSid": call.sid}).encode(),
        b"CallSid=" + call.sid.encode() + b"&CallSid=CA" + b"1" * 32,  # the SID twice
    ]
    for body in bodies:
        reply = await sim.send(Request(url, {}), body=body)
        assert 400 <= reply.status < 500, (body[:40], reply)
    async with aiohttp.ClientSession() as http:
        for content_type in ("application/json", "text/plain", "multipart/form-data"):
            async with http.post(
                server.url + "/twilio/voice", data=b"{}", headers={"Content-Type": content_type}
            ) as response:
                assert 400 <= response.status < 500, content_type
    assert await call.press("1")
