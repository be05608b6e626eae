"""The `message` node: compiled with its checks, stepped by the engine (pure), sent by the
runner through the Twilio REST client to the fake API on loopback."""

from __future__ import annotations

import pytest

from ivr.backend import Backend
from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, Digits, MessageSent
from ivr.errors import FlowError
from ivr.flow import parse_and_compile
from ivr.runner import Outbox, Runner
from ivr.telephony.rest import TwilioRest
from tests.twilio_api import ACCOUNT, TwilioApi

CALLER, OURS = "+15557654321", "+15550110"
SHOP = """
flow: shop
start: ask_order
nodes:
  ask_order:
    ask: {prompt: "Your order number?", digits: {min: 6, max: 6}, save_as: order}
    next: send_link
  send_link:
    message:
      text: "Track order {{ order }}: https://shop.example/t/{{ order }}"
    resolves: tracking_sent
    next: sent
    on_error: not_sent
  sent:
    end: {say: "I've texted you the link."}
  not_sent:
    end: {say: "Sorry, I could not text you."}
"""


def started(text: str = SHOP) -> tuple:
    flow = parse_and_compile(text, "shop.yaml")
    session, _ = step(flow, new_session(flow, "c1"), CallStarted(CALLER, OURS, at=100.0))
    return flow, session


def test_the_engine_asks_for_the_message_and_waits_for_it():
    flow, session = started()
    session, actions = step(flow, session, Digits("123456", at=101.0))
    assert actions[-1] == act.Message(
        "send_link", CALLER, "sms", "Track order 123456: https://shop.example/t/123456"
    )
    assert session.waiting == "message" and session.tasks == []
    # the transcript has the text and the number masked
    assert session.transcript[-1][2:] == [
        "message",
        "sms",
        "**********21",
        "Track order 123456: https://shop.example/t/123456",
    ]


@pytest.mark.parametrize(
    ("sent", "node", "tasks", "heard"),
    [
        (MessageSent(True, "SM1", at=102.0), "sent", ["tracking_sent"], "I've texted you"),
        (MessageSent(False, error="Twilio error 21211", at=102.0), "not_sent", [], "Sorry"),
    ],
)
def test_the_result_steps_on_to_next_or_on_error(sent, node, tasks, heard):
    flow, session = started()
    session, _ = step(flow, session, Digits("123456", at=101.0))
    session, actions = step(flow, session, sent)
    assert (session.node, session.tasks, session.outcome) == (node, tasks, "contained")
    assert heard in actions[0].text


def test_without_on_error_a_failed_send_goes_on_at_next():
    flow, session = started(SHOP.replace("    on_error: not_sent\n", ""))
    session, _ = step(flow, session, Digits("123456", at=101.0))
    session, _ = step(flow, session, MessageSent(False, error="down", at=102.0))
    assert (session.node, session.tasks) == ("sent", [])


def test_a_result_that_is_not_awaited_changes_nothing():
    flow, session = started()
    after, actions = step(flow, session, MessageSent(True, "SM1", at=101.0))
    assert (after.node, after.turn, actions) == (session.node, session.turn, [])


def test_channel_and_to_are_the_nodes_own():
    own = '    message:\n      channel: whatsapp\n      to: "+15550199"\n'
    flow, session = started(SHOP.replace("    message:\n", own))
    _, actions = step(flow, session, Digits("123456", at=101.0))
    assert (actions[-1].to, actions[-1].channel) == ("+15550199", "whatsapp")


def errors(text: str) -> list[str]:
    with pytest.raises(FlowError) as e:
        parse_and_compile(text, "shop.yaml")
    return [str(p) for p in e.value.problems if p.severity == "error"]


def test_a_sensitive_variable_in_a_message_is_a_located_error():
    text = SHOP.replace("save_as: order}", "save_as: order, sensitive: true}")
    assert errors(text) == [
        "shop.yaml:10:13: nodes.send_link.message.text: a message may not carry sensitive "
        "order: messages are kept by carriers (send a link that asks for it instead)"
    ]


def test_a_sensitive_variable_set_later_in_the_file_is_caught_too():
    text = SHOP + (
        "  later:\n    ask: {prompt: PIN?, save_as: pin, sensitive: true}\n    next: sent\n"
    )
    text = text.replace("{{ order }}:", "{{ pin }}:")
    assert any("may not carry sensitive pin" in e and ":10:13:" in e for e in errors(text))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("      channel: fax\n", "nodes.send_link.message.channel: 'fax' is not allowed"),
        ("      sender: x\n", "nodes.send_link.message.sender: unknown key 'sender'"),
    ],
)
def test_schema_errors_are_located(change, problem):
    text = SHOP.replace("    message:\n", "    message:\n" + change)
    assert any(problem in e for e in errors(text)), errors(text)


def test_a_loop_of_messages_is_refused():
    text = SHOP.replace("    next: sent\n    on_error", "    next: send_link\n    on_error")
    assert any("loop without ever waiting" in e for e in errors(text))


# -- the runner -------------------------------------------------------------------------------


async def test_the_runner_sends_through_the_api_and_steps_on(twilio_api: TwilioApi):
    flow, session = started()
    rest = TwilioRest.from_env()
    backend = Backend()
    try:
        runner = Runner(backend, clock=lambda: 200.0, messenger=rest)
        turn = await runner.run(flow, session, Digits("123456", at=101.0), budget=5.0)
    finally:
        await rest.close()
        await backend.close()
    (request,) = twilio_api.messages
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert (request["To"], request["From"]) == (CALLER, OURS)  # from: the number called
    assert request["Body"] == "Track order 123456: https://shop.example/t/123456"
    assert [s.ok for s in turn.sent] == [True] and turn.sent[0].sid.startswith("SM")
    assert turn.sent[0].at == 200.0
    assert (turn.session.node, turn.session.tasks) == ("sent", ["tracking_sent"])


async def test_a_refused_message_takes_on_error(twilio_api: TwilioApi):
    twilio_api.fail_next(400, 21610)  # the number opted out (STOP)
    flow, session = started()
    rest = TwilioRest.from_env()
    try:
        runner = Runner(Backend(), messenger=rest, senders={"sms": "+15550999"})
        turn = await runner.run(flow, session, Digits("123456", at=101.0))
    finally:
        await rest.close()
    assert twilio_api.messages[0]["From"] == "+15550999"  # IVR_SMS_FROM's
    assert turn.sent[0].error.startswith("Twilio error 21610")
    assert (turn.session.node, turn.session.tasks) == ("not_sent", [])
    assert turn.session.transcript[-2][2] == "not sent"


async def test_without_a_messenger_the_message_fails_as_not_configured():
    flow, session = started()
    turn = await Runner(Backend()).run(flow, session, Digits("123456", at=101.0))
    assert turn.sent[0].error == "messages are not configured (TWILIO_ACCOUNT_SID)"
    assert turn.session.node == "not_sent"


async def test_an_outbox_keeps_messages_instead_of_sending_them():
    flow, session = started()
    outbox = Outbox()
    turn = await Runner(Backend(), messenger=outbox).run(flow, session, Digits("123456", at=1.0))
    assert outbox.sent == [
        (CALLER, "Track order 123456: https://shop.example/t/123456", OURS, "sms")
    ]
    assert turn.session.node == "sent"


async def test_a_loop_of_messages_past_the_cap_fails_the_call_and_keeps_its_results():
    # two messages in one turn, past a cap of 1 (the compiler refuses a loop of messages:
    # the cap is the runner's own guard)
    outbox = Outbox()
    runner = Runner(Backend(), messenger=outbox, max_fetches=1)
    text = SHOP.replace("    next: sent\n    on_error", "    next: again\n    on_error") + (
        "  again:\n    message: {text: again}\n    next: sent\n"
    )
    flow, session = started(text)
    turn = await runner.run(flow, session, Digits("123456", at=1.0))
    assert [s.ok for s in turn.sent] == [True]
    assert (turn.session.outcome, len(outbox.sent)) == ("failed", 1)
    assert turn.session.error == "more than 1 backend calls in one turn"
