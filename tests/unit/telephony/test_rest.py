"""Twilio's REST API through the twilio library, against the fake API on loopback."""

from __future__ import annotations

import pytest

from ivr.errors import ConfigError
from ivr.telephony.rest import DETECT, Sent, TwilioRest, api_url, masked
from tests.conftest import free_port
from tests.twilio_api import ACCOUNT, API_KEY, API_SECRET, AUTH_TOKEN, TwilioApi

CALLEE = "+15557654321"
OURS = "+15550100"


@pytest.fixture
async def rest(twilio_api: TwilioApi):
    rest = TwilioRest.from_env()
    yield rest
    await rest.close()


async def test_a_message_reaches_the_api_with_its_fields_and_auth(rest, twilio_api):
    sent = await rest.send_message(CALLEE, "Your code is 1234", OURS)
    assert sent.ok and sent.sid.startswith("SM") and sent.status == "queued"
    (request,) = twilio_api.messages
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert (request["To"], request["From"], request["Body"]) == (CALLEE, OURS, "Your code is 1234")
    assert request.user == ACCOUNT


async def test_a_whatsapp_message_goes_between_whatsapp_addresses(rest, twilio_api):
    sent = await rest.send_message(CALLEE, "hello", OURS, channel="whatsapp")
    assert sent.ok
    (request,) = twilio_api.messages
    assert (request["To"], request["From"]) == (f"whatsapp:{CALLEE}", f"whatsapp:{OURS}")


async def test_a_call_asks_for_answering_machine_detection_and_its_status(rest, twilio_api):
    placed = await rest.place_call(
        CALLEE, OURS, "https://ivr.example/twilio/voice?flow=x", "https://ivr.example/s"
    )
    assert placed.ok and placed.sid.startswith("CA")
    (request,) = twilio_api.calls
    assert request["Url"] == "https://ivr.example/twilio/voice?flow=x"
    assert request["StatusCallback"] == "https://ivr.example/s"
    assert request["MachineDetection"] == DETECT
    assert request["Method"] == "POST"
    twilio_api.statuses[placed.sid] = "in-progress"
    now = await rest.call_status(placed.sid)
    assert (now.ok, now.sid, now.status, now.answered_by) == (True, placed.sid, "in-progress", "")
    twilio_api.statuses[placed.sid] = "completed"
    twilio_api.answered_by[placed.sid] = "machine_end_beep"
    now = await rest.call_status(placed.sid)
    assert (now.status, now.answered_by) == ("completed", "machine_end_beep")


async def test_a_messages_status_is_read_back(rest, twilio_api):
    sent = await rest.send_message(CALLEE, "hi", OURS)
    twilio_api.statuses[sent.sid] = "delivered"
    now = await rest.message_status(sent.sid)
    assert (now.ok, now.sid, now.status) == (True, sent.sid, "delivered")
    missing = await rest.message_status("SM" + "0" * 32)
    assert (missing.ok, missing.code) == (False, 404)
    assert (await rest.message_status("../x")).error == "not a message SID"


async def test_an_api_key_pair_authenticates_for_the_account(twilio_api, monkeypatch):
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    monkeypatch.setenv("TWILIO_API_SECRET", API_SECRET)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    rest = TwilioRest.from_env()
    try:
        assert (await rest.send_message(CALLEE, "hi", OURS)).ok
    finally:
        await rest.close()
    (request,) = twilio_api.messages
    assert request.user == API_KEY
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


@pytest.mark.parametrize(
    ("status", "code"), [(400, 21211), (401, 20003), (429, 20429), (500, 20500)]
)
async def test_a_refusal_is_a_result_that_names_twilios_code_but_no_number(
    rest, twilio_api, status, code
):
    twilio_api.fail_next(status, code)
    sent = await rest.send_message(CALLEE, "hi", OURS)
    assert not sent.ok and sent.code == status
    assert f"Twilio error {code}" in sent.error
    assert CALLEE not in sent.error and "****21" in sent.error


async def test_wrong_credentials_are_a_401_result(twilio_api):
    rest = TwilioRest(ACCOUNT, "not-the-token", base_url=twilio_api.url)
    try:
        sent = await rest.send_message(CALLEE, "hi", OURS)
    finally:
        await rest.close()
    assert (sent.ok, sent.code) == (False, 401)
    assert twilio_api.requests == []


async def test_nothing_listening_is_a_result_not_an_exception():
    rest = TwilioRest(ACCOUNT, AUTH_TOKEN, base_url=f"http://127.0.0.1:{free_port()}")
    try:
        sent = await rest.place_call(CALLEE, OURS, "https://ivr.example/twilio/voice")
    finally:
        await rest.close()
    assert not sent.ok and sent.code == 0
    assert sent.error.startswith("not sent: ClientConnectorError")


async def test_a_slow_api_times_out_as_a_result(twilio_api):
    import asyncio

    from aiohttp import web

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rest = TwilioRest(ACCOUNT, AUTH_TOKEN, base_url=f"http://127.0.0.1:{port}", timeout=0.2)
    try:
        sent = await rest.send_message(CALLEE, "hi", OURS)
    finally:
        await rest.close()
        await runner.cleanup()
    assert (sent.ok, sent.error) == (False, "not sent: TimeoutError")


async def test_only_the_apis_origin_is_ever_asked(rest, twilio_api):
    from twilio.base.exceptions import TwilioException

    with pytest.raises(TwilioException, match="is not the Twilio API"):
        await rest.http.request("GET", "http://169.254.169.254/latest/meta-data")
    rest.client.api.base_url = "http://169.254.169.254"  # a library that went elsewhere
    sent = await rest.send_message(CALLEE, "hi", OURS)
    assert (sent.ok, sent.code) == (False, 0)
    assert "169.254.169.254 is not the Twilio API" in sent.error
    assert twilio_api.requests == []


@pytest.mark.parametrize(
    ("to", "from_", "channel", "error"),
    [
        ("12", OURS, "sms", "the message's to is not a phone number"),
        (CALLEE, "me", "sms", "the message's from is not a phone number"),
        (CALLEE, OURS, "fax", "unknown channel 'fax' (sms or whatsapp)"),
    ],
)
async def test_what_cannot_be_sent_is_not_asked(rest, twilio_api, to, from_, channel, error):
    sent = await rest.send_message(to, "hi", from_, channel)
    assert (sent.ok, sent.error) == (False, error)
    assert twilio_api.requests == []


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT}, "TWILIO_AUTH_TOKEN: not set"),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_KEY": API_KEY}, "TWILIO_API_SECRET"),
        (
            {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t", "IVR_TWILIO_API": "ftp://x"},
            "IVR_TWILIO_API: expected a base URL",
        ),
    ],
)
def test_missing_settings_are_named(env, problem):
    with pytest.raises(ConfigError, match=problem):
        TwilioRest.from_env(env)


def test_the_base_url_is_an_origin():
    assert api_url("http://127.0.0.1:8099/") == "http://127.0.0.1:8099"
    with pytest.raises(ConfigError):
        api_url("https://api.twilio.com/2010-04-01")


def test_numbers_are_masked_to_their_last_two_digits():
    assert masked(CALLEE) == "**********21"
    assert masked("whatsapp:+15557654321") == "**********21"
    assert masked("") == "-"


@pytest.mark.parametrize(
    ("status", "sent"),
    [
        (502, Sent(False, error="Twilio error 502: Unable to create record", code=502)),
        (201, Sent(False, error="not sent: JSONDecodeError")),  # a 2xx that is not Twilio's
    ],
)
async def test_an_answer_that_is_not_twilios_json_is_a_result(status, sent):
    from aiohttp import web

    async def proxy(request: web.Request) -> web.Response:
        return web.Response(
            status=status, text="<html>Bad gateway</html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_post("/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rest = TwilioRest(ACCOUNT, AUTH_TOKEN, base_url=f"http://127.0.0.1:{port}")
    try:
        assert await rest.send_message(CALLEE, "hi", OURS) == sent
    finally:
        await rest.close()
        await runner.cleanup()
