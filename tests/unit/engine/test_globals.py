"""Global options in asks as well as menus, the `help` and `main_menu` option actions, and
sensitive asks kept off Twilio's speech recogniser: compiled from YAML and stepped."""

from __future__ import annotations

import pytest

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, Digits, Event, Speech
from ivr.errors import FlowError, Problem
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow
from ivr.flow.schema import check_schema

FLOW = """flow: bank
start: welcome
{top}
defaults: {{on_fail: agent}}
global:
  agent: {{dtmf: "0", speech: [agent, operator], goto: agent}}
  repeat: {{dtmf: "*", speech: [repeat], repeat: true}}
  help: {{speech: [help], help: true}}
  home: {{speech: [start over], main_menu: true}}
nodes:
  welcome:
    say: "Welcome."
    next: main
  main:
    menu:
      prompt: "Press 1 for your balance."
      help: "You can say balance or agent."
      options:
        balance: {{dtmf: "1", speech: [balance], goto: ask}}
  ask:
    ask:
      prompt: "Your account number, then pound."
{ask}
      save_as: account
    next: bye
  agent:
    transfer: {{to: "+15550199"}}
  bye:
    end: {{say: "Bye."}}
"""
DIGITS = """      digits: {min: 4, max: 4, finish_on: "#"}
      help: "The four digits on your card."
"""


def compile_text(ask: str = DIGITS, top: str = "") -> tuple[Flow, list[Problem]]:
    doc = parse_flow(FLOW.format(ask=ask, top=top), "f.yaml", {})
    assert check_schema(doc) == []
    return compile_flow(doc)


def flow_of(ask: str = DIGITS, top: str = "") -> Flow:
    return compile_text(ask, top)[0]


class Call:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.session, self.actions = step(flow, new_session(flow, "c"), CallStarted(at=0.0))

    def send(self, event: Event) -> list[str]:
        self.session, self.actions = step(self.flow, self.session, event)
        return [a.text for a in self.actions if isinstance(a, act.Prompt)]

    def press(self, keys: str) -> list[str]:
        return self.send(Digits(keys, at=1.0))

    def say(self, text: str) -> list[str]:
        return self.send(Speech(text, 0.9, at=1.0))

    @property
    def listen(self) -> act.Listen:
        listen = self.actions[-1]
        assert isinstance(listen, act.Listen)
        return listen


def at_ask(flow: Flow) -> Call:
    call = Call(flow)
    call.press("1")
    assert call.session.node == "ask"
    return call


# -- globals in an ask -----------------------------------------------------------------------


@pytest.mark.parametrize("keys", ["*", "12*", "*12", "*#"])
def test_a_global_key_the_ask_does_not_collect_chooses_it(keys):
    call = at_ask(flow_of())
    assert call.press(keys) == ["Your account number, then pound."]
    assert call.session.node == "ask" and call.session.waiting == "listen"
    assert "account" not in call.session.vars
    assert call.session.inputs["ask:dtmf:match"] == 1


def test_a_global_on_a_digit_key_is_a_digit_in_a_digits_ask_with_a_warning():
    flow, problems = compile_text()
    assert [(p.severity, p.where) for p in problems] == [("warning", "nodes.ask.ask")]
    assert "'agent' (key 0) is off here: this ask takes 0 as a digit" in problems[0].message
    call = Call(flow)
    assert call.listen == act.Listen(  # in a menu, 0 is the global's
        "main",
        frozenset({"dtmf", "speech"}),
        5.0,
        keys="10*",
        phrases=("balance", "agent", "operator", "repeat", "help", "start over"),
    )
    call.press("1")
    call.press("0123#")
    assert call.session.vars["account"] == "0123"
    assert call.session.outcome == "contained"


def test_the_finish_key_is_collected_not_a_global():
    text = FLOW.replace('repeat: {{dtmf: "*"', 'repeat: {{dtmf: "#"')
    doc = parse_flow(text.format(ask=DIGITS, top=""), "f.yaml", {})
    flow, problems = compile_flow(doc)
    assert any(
        "key #) is off here: this ask takes # as a finish key" in p.message for p in problems
    )
    call = at_ask(flow)
    call.press("1234#")
    assert call.session.vars["account"] == "1234"
    # with no finish key, # is free for the global
    doc = parse_flow(text.format(ask=DIGITS.replace('"#"', '""'), top=""), "f.yaml", {})
    call = at_ask(compile_flow(doc)[0])
    assert call.listen.global_keys == "#" and call.listen.finish_on == ""
    assert call.press("#") == ["Your account number, then pound."]


def test_an_ask_listens_for_the_global_phrases_and_takes_a_whole_one():
    call = at_ask(flow_of())
    assert call.listen.phrases == ("agent", "operator", "repeat", "help", "start over")
    assert call.listen.global_keys == "*" and call.listen.keys == ""
    assert call.say("help") == ["The four digits on your card."]
    assert call.say("Operator!") == []
    assert call.session.outcome == "transferred"
    assert call.actions[-1] == act.Transfer("+15550199", None, "global:agent")


@pytest.mark.parametrize("said", ["the operator said so", "operater", "one two three four"])
def test_only_a_whole_phrase_is_a_global_in_an_ask(said):
    call = at_ask(flow_of())
    call.say(said)
    assert call.session.outcome != "transferred"
    if said == "one two three four":
        assert call.session.vars["account"] == "1234"
    else:
        assert call.session.inputs["ask:speech:no_match"] == 1


def test_digits_said_are_never_a_global_even_when_a_phrase_is_a_number():
    text = FLOW.replace("speech: [agent, operator]", "speech: [agent, zero]")
    ask = '      digits: {min: 1, max: 4, finish_on: "#"}\n'
    call = at_ask(compile_flow(parse_flow(text.format(ask=ask, top=""), "f.yaml", {}))[0])
    call.say("zero")
    assert call.session.vars["account"] == "0"
    assert call.session.outcome == "contained"


def test_a_speech_ask_takes_every_global_key():
    flow, problems = compile_text('      input: speech\n      help: "Say your name."\n')
    assert problems == []
    call = at_ask(flow)
    assert call.listen.modes == frozenset({"dtmf", "speech"}) and call.listen.keys == "0*"
    assert call.press("*") == ["Your account number, then pound."]
    assert call.press("5") == ["Sorry, I didn't catch that.", "Your account number, then pound."]
    assert call.say("start over") == ["Welcome.", "Press 1 for your balance."]
    assert call.session.node == "main"


def test_global_false_on_an_ask_takes_none():
    flow, problems = compile_text(DIGITS + "      global: false\n")
    assert problems == []
    call = at_ask(flow)
    assert call.listen.global_keys == "" and call.listen.phrases == ()
    call.press("*")
    assert call.session.inputs == {"main:dtmf:match": 1, "ask:dtmf:no_match": 1}


# -- help and main_menu ------------------------------------------------------------------------


def test_help_says_the_help_prompt_and_listens_again():
    call = Call(flow_of())
    assert call.say("help") == ["You can say balance or agent."]
    assert call.session.waiting == "listen" and call.session.node == "main"
    assert call.session.transcript[-1][1:] == ["main", "help"]


def test_help_without_a_help_prompt_says_the_prompt():
    call = at_ask(flow_of('      digits: {min: 4, max: 4, finish_on: "#"}\n'))
    assert call.say("help") == ["Your account number, then pound."]


def test_main_menu_is_the_start_by_default_and_the_flows_main_menu_when_set():
    call = at_ask(flow_of())
    assert call.say("start over") == ["Welcome.", "Press 1 for your balance."]
    assert call.session.vars["last_option"] == "home"
    call = at_ask(flow_of(top="main_menu: main"))
    assert call.say("start over") == ["Press 1 for your balance."]


def test_a_main_menu_that_is_not_a_node_is_an_error():
    with pytest.raises(FlowError) as e:
        compile_text(top="main_menu: mian")
    assert [(p.where, p.message) for p in e.value.problems if p.severity == "error"] == [
        ("main_menu", "'mian' is not a node (did you mean 'main'?)")
    ]


# -- sensitive asks and speech ------------------------------------------------------------------

SENSITIVE = DIGITS + "      sensitive: true\n"


def test_a_sensitive_ask_on_twilios_recogniser_takes_keys_only():
    flow, _ = compile_text(SENSITIVE)
    call = at_ask(flow)
    assert call.listen.modes == frozenset({"dtmf"}) and call.listen.phrases == ()
    call.say("one two three four")  # a transport that sent words anyway: not taken
    assert "account" not in call.session.vars
    call.say("operator")  # keys only: the globals' phrases too
    assert call.session.outcome is None
    assert call.press("*") == ["Your account number, then pound."]


def test_a_sensitive_ask_opted_in_to_cloud_speech_is_a_warning():
    flow, problems = compile_text(SENSITIVE + "      cloud_speech: true\n")
    warned = [p for p in problems if p.where == "nodes.ask.ask.cloud_speech"]
    assert len(warned) == 1 and warned[0].severity == "warning"
    assert "a spoken account goes to Twilio's speech recogniser" in warned[0].message
    call = at_ask(flow)
    assert call.listen.modes == frozenset({"dtmf", "speech"})
    call.say("one two three four")
    assert call.session.inputs["ask:speech:match"] == 1 and call.session.node == "bye"


def test_a_sensitive_ask_keeps_speech_on_local_recognition():
    flow, problems = compile_text(SENSITIVE, top="speech: vosk")
    assert not any("cloud_speech" in p.where for p in problems)
    call = at_ask(flow)
    assert call.listen.modes == frozenset({"dtmf", "speech"})
    call.say("operator")
    assert call.session.outcome == "transferred"


def test_a_sensitive_speech_ask_without_cloud_speech_is_an_error():
    with pytest.raises(FlowError) as e:
        compile_text("      input: speech\n      sensitive: true\n")
    [problem] = [p for p in e.value.problems if p.severity == "error"]
    assert problem.where == "nodes.ask.ask.input"
    assert "could never be answered" in problem.message
