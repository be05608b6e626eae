"""Global options in asks, help, and sensitive asks kept off Twilio's recogniser, over the
real webhook: the app on loopback driven by signed requests from the Twilio sim."""

from __future__ import annotations

from ivr.server import FLOWS
from tests.functional.conftest import BANK, CALLER, OPEN, Server, set_hours
from tests.functional.twilio_sim import TwilioSim

ACCOUNT = "Please enter your eight digit account number, then press the pound key."
VOICE_ACCOUNT = (
    "Please say your eight digit account number, or enter it on your keypad followed by "
    "the pound key."
)


async def test_star_in_a_sensitive_account_entry_repeats_it(
    sim: TwilioSim, server: Server, backend
) -> None:
    call = await sim.start(BANK, CALLER)
    assert await call.press("1") == [ACCOUNT]
    gather = call.gather
    # keys only (sensitive); # ends the entry, so * reaches the engine among the digits
    assert (gather.get("input"), gather.get("finishOnKey"), gather.get("numDigits")) == (
        "dtmf",
        "#",
        None,
    )
    assert gather.get("hints") is None and gather.get("language") is None
    assert await call.press("*#") == [ACCOUNT]
    assert call.last_request.params["Digits"] == "*"
    assert await call.press("12*") == [ACCOUNT]  # keyed, then the gather timed out
    assert call.last_request.params["Digits"] == "12*"
    heard = await call.press("12345674#")
    assert heard[0] == "Your balance is $1,234.50."
    await call.hangup()
    record = await server.record(call.sid)
    assert record.inputs == {"main:dtmf:match": 1, "ask_account:dtmf:match": 3}
    assert record.outcome == "abandoned" and record.tasks == ("balance_inquiry",)


async def test_help_said_at_the_main_menu(sim: TwilioSim, server: Server, backend) -> None:
    call = await sim.start(BANK, CALLER)
    assert "what can I say" in call.gather.get("hints", "")
    heard = await call.say("help", 0.9)
    assert heard[0].startswith("You can say balance, block card, transactions or agent")
    assert call.waiting == "gather"


async def test_operator_said_during_a_voice_account_entry(
    sim: TwilioSim, server: Server, backend
) -> None:
    set_hours(server.config.flows, OPEN, "telebanking_voice.yaml")
    assert server.app[FLOWS].reload() == ["telebanking_voice"]
    call = await sim.start(BANK, CALLER, voice_path="/twilio/voice?flow=telebanking_voice")
    assert await call.say("my balance", 0.9) == [VOICE_ACCOUNT]
    gather = call.gather
    # opted in to cloud speech: speech, with the global phrases as hints, and keys
    assert gather.get("input") == "dtmf speech" and gather.get("finishOnKey") == "#"
    assert "operator" in gather.get("hints", "") and "say that again" in gather.get("hints", "")
    heard = await call.say("operator", 0.8)
    assert heard[0] == "Connecting you to an agent."
    assert heard[1].startswith("Thank you for talking to us.")  # the survey, after the agent
    await call.press("5")
    assert call.end == "hangup"
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "global",
        "agent",
    )
    assert record.inputs == {
        "main:speech:match": 1,
        "ask_account:speech:match": 1,
        "survey:dtmf:match": 1,
    }


# -- a subflow: the calling flow's globals and on_fail, its own language ---------------------

PINBANK = "+15550177"
MAIN = """flow: pinbank
numbers: ["+15550177"]
start: auth
defaults: {retries: 1, on_fail: agent}
global:
  agent: {dtmf: "0", speech: [agent], goto: agent}
nodes:
  auth:
    subflow: {flow: pin_ko, next: bye}
  agent:
    transfer: {to: "+15550199", say: "Connecting you to an agent."}
  bye:
    end: {say: "Goodbye."}
"""
PIN_KO = """flow: pin_ko
language: ko-KR
start: choose
nodes:
  choose:
    menu:
      prompt: "비밀번호를 입력하시려면 1번을 누르세요."
      options:
        go: {dtmf: "1", goto: ask_pin}
  ask_pin:
    ask: {prompt: "비밀번호 네 자리를 눌러 주세요.", digits: {min: 4, max: 4}, save_as: pin,
          validate: "value == '1234'", sensitive: true}
    next: done
  done:
    end: {say: "감사합니다."}
"""


async def test_a_subflow_speaks_its_language_and_takes_the_calling_flows_globals(
    make_server, flows_dir, backend
) -> None:
    (flows_dir / "pinbank.yaml").write_text(MAIN)
    (flows_dir / "pin_ko.yaml").write_text(PIN_KO)
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(PINBANK, CALLER)
        said = call.gather.find("Say")
        assert said is not None and said.text == "비밀번호를 입력하시려면 1번을 누르세요."
        assert (said.get("language"), said.get("voice")) == ("ko-KR", "Polly.Seoyeon")
        assert await call.press("0") == ["Connecting you to an agent."]  # not a failed call
        assert call.end == "dial"
        record = await server.record(call.sid)
        assert (record.outcome, record.reason, record.reason_detail) == (
            "transferred",
            "global",
            "agent",
        )

        call = await sim.start(PINBANK, CALLER)
        await call.press("1")
        await call.press("9999")
        # the calling flow's retries (1) and on_fail: an agent, not a failed call
        assert await call.press("8888") == ["Connecting you to an agent."]
        record = await server.record(call.sid)
        assert (record.outcome, record.reason) == ("transferred", "on_fail")

        call = await sim.start(PINBANK, CALLER)
        await call.press("1")
        heard = await call.press("1234")
        assert heard == ["감사합니다.", "Goodbye."]
        document = call.documents[-1][1]
        assert '<Say language="ko-KR" voice="Polly.Seoyeon">감사합니다.</Say>' in document
        assert '<Say language="en-US" voice="Polly.Joanna">Goodbye.</Say>' in document
