"""The compiler's text-channel checks (`ivr.flow.text_paths`): every path still ends on
SMS, WhatsApp and chat, and what reads badly in a message is warned about, located."""

from __future__ import annotations

import pytest

from ivr.errors import FlowError, Problem
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.schema import check_schema

HEAD = """flow: t
start: main
nodes:
"""


def problems(nodes: str) -> list[Problem]:
    doc = parse_flow(HEAD + nodes, "f.yaml", {})
    assert check_schema(doc) == []
    try:
        return compile_flow(doc)[1]
    except FlowError as e:
        return e.problems


def found(nodes: str, severity: str) -> list[str]:
    return [str(p) for p in problems(nodes) if p.severity == severity]


def test_an_on_text_loop_is_an_error_at_its_first_node() -> None:
    flow = """  main:
    say: hi
    next: a
  a:
    say: "for voice"
    channels: [voice]
    on_text: b
    next: bye
  b:
    say: "for voice too"
    channels: [voice]
    on_text: a
    next: bye
  bye:
    end:
"""
    assert found(flow, "error") == [
        "f.yaml:4:3: nodes.main: on text: no end, transfer or record can be reached from here: "
        "a text conversation would be stuck",
        "f.yaml:10:14: nodes.a.on_text: on text: these nodes' `on_text` lead round to one "
        "another: a text conversation would loop; send one of them to a node that runs on text",
    ]


def test_a_node_that_leads_back_to_itself_on_text_loops() -> None:
    flow = """  main:
    say: hi
    next: call_only
  call_only:
    say: "we will read it to you"
    channels: [voice]
    on_text: main
    next: bye
  bye:
    end:
"""
    assert found(flow, "error") == [
        "f.yaml:4:3: nodes.main: on text: these nodes loop without ever waiting (main -> "
        "main): their `on_text` lead back into the loop; send one of them on to a node that "
        "waits"
    ]


def test_a_loop_made_by_on_text_is_an_error_even_with_a_way_out() -> None:
    """On voice `spoken` goes on to the end; on text the branch and the say go round
    until the engine gives up (whenever `more` stays true), as voice's own loops would."""
    flow = """  main:
    branch:
      - {if: "more", goto: tell}
      - {else: bye}
  tell:
    say: "one more thing"
    next: spoken
  spoken:
    say: "a recording"
    channels: [voice, chat]
    on_text: main
    next: bye
  bye:
    end:
"""
    assert found(flow, "error") == [
        "f.yaml:4:3: nodes.main: on sms and whatsapp: these nodes loop without ever waiting "
        "(main -> tell -> main): their `on_text` lead back into the loop; send one of them "
        "on to a node that waits"
    ]


def test_a_flow_that_ends_on_every_channel_has_no_text_problems() -> None:
    flow = """  main:
    menu:
      prompt: "For hours press 1 or say hours. To leave a message, press 2."
      options:
        hours: {dtmf: "1", speech: [hours], goto: hours}
        message: {dtmf: "2", goto: voicemail}
  hours:
    say: "We are open nine to five."
    next: bye
  voicemail:
    record: {prompt: "Leave a message after the tone.", save_as: message}
    next: bye
  bye:
    end:
"""
    assert problems(flow) == []


def test_a_voice_only_node_without_on_text_says_where_text_ends() -> None:
    flow = """  main:
    say: hi
    next: spoken
  spoken:
    say: "listen to this"
    channels: [voice, sms]
    next: bye
  bye:
    end:
"""
    assert found(flow, "warning") == [
        "f.yaml:7:3: warning: nodes.spoken: it runs on sms, voice only, and has no `on_text`: "
        "a conversation on whatsapp and chat ends here (the customer is told to call; outcome "
        "transferred, reason channel); give it `on_text` to go on"
    ]


def test_a_sensitive_ask_is_refused_on_text_unless_it_says_otherwise() -> None:
    ask = """  main:
    ask: {prompt: "Your PIN?", input: digits, save_as: pin, sensitive: true}
    next: bye
{extra}  bye:
    end:
"""
    assert problems(ask.replace("{extra}", "")) == []  # refused on text: the documented default
    spoken = ask.replace("next: bye", "next: bye\n    channels: [voice]")
    assert found(spoken.replace("{extra}", ""), "warning") == [
        "f.yaml:4:3: warning: nodes.main: it runs on voice only, and has no `on_text`: a "
        "conversation on text ends here (the customer is told to call; outcome transferred, "
        "reason channel); give it `on_text` to go on"
    ]
    linked = ask.replace("next: bye", "next: bye\n    on_text: link").replace(
        "{extra}", '  link:\n    end: {say: "Sign in at example.com/pin."}\n'
    )
    assert problems(linked) == []
    texted = ask.replace("next: bye", "next: bye\n    channels: [voice, text]")
    assert found(texted.replace("{extra}", ""), "warning") == [
        "f.yaml:7:15: warning: nodes.main.channels: a sensitive ask on a text channel: "
        "carriers keep the messages, answers included (allowed; a secure link or a call is "
        "safer)"
    ]


def test_on_text_on_a_node_that_runs_everywhere_is_never_taken() -> None:
    flow = """  main:
    say: hi
    on_text: bye
    next: bye
  bye:
    end:
"""
    assert found(flow, "warning") == [
        "f.yaml:6:14: warning: nodes.main.on_text: `on_text` is never taken: this node runs "
        "on every channel (see `channels`)"
    ]


MENU = """  main:
    menu:
      prompt: {prompt}
      options:
        "yes": {{dtmf: "1", speech: ["yes"], goto: bye}}
        "no": {{dtmf: "2", speech: ["no"], goto: bye}}
  bye:
    end:
"""


@pytest.mark.parametrize(
    ("prompt", "why"),
    [
        ('"Press 1 or say yes. Press 2 or say no."', None),
        ('"Yes or no?"', None),  # its choices' words
        ('"Block card {{ last4 }}? Press 1 for yes."', "is templated"),
        (
            '"Your card is blocked. Press 1 or say yes to hear more."',
            "says more than its choices ('Your card is blocked.')",
        ),
        ('[{say: "Your card is blocked. Press 1.", text: "Blocked. Reply 1 for more."}]', None),
        (
            '"Card {{ last4 | spell }}: press 1 for yes."',
            None,  # not the choices: its spoken words, the number written (below)
        ),
    ],
)
def test_a_menu_that_says_more_than_its_choices_wants_a_text(prompt: str, why: str) -> None:
    warned = [p for p in problems(MENU.format(prompt=prompt)) if "menu's prompt" in p.message]
    warned = [p for p in warned if "spoken words" not in p.message]
    if why is None:
        assert warned == []
    else:
        assert [(p.line, p.col, p.message) for p in warned] == [
            (
                6,
                15,
                f"this menu's prompt {why}; text channels show only its choices "
                '("Reply 1 for ..."): add a `text:` to say it in a message',
            )
        ]


def test_what_only_a_transfer_leads_to_is_not_walked_on_text() -> None:
    """A transfer ends a text conversation: its no-answer path is voice's alone."""
    flow = """  main:
    transfer: {to: "+15550199", on_no_answer: sorry}
  sorry:
    menu:
      prompt: "No one is free. Press 1 to hear this again."
      options:
        again: {dtmf: "1", goto: main}
"""
    assert [p for p in problems(flow) if "text" in p.message] == []


def test_a_menu_that_reads_a_value_out_shows_its_spoken_words_on_text() -> None:
    prompt = '"Card {{ last4 | spell }}: press 1 for yes."'
    warned = [p.message for p in problems(MENU.format(prompt=prompt)) if "menu's" in p.message]
    assert warned == [
        "this menu's prompt has no `text:`: text channels show its spoken words "
        '("press 1 ..."), values written: add a `text:` to say it in a message'
    ]


def test_a_text_leg_that_would_start_at_a_voice_only_node_is_warned_about() -> None:
    flow = """  main:
    message:
      text: "Questions? Reply here."
      continue: {at: card}
    next: bye
  card:
    ask: {prompt: "Your card number.", digits: {min: 16, max: 16}, save_as: card, sensitive: true}
    next: bye
  bye:
    end:
"""
    assert [w for w in found(flow, "warning") if "leg" in w] == [
        "f.yaml:7:22: warning: nodes.main.message.continue.at: the sms leg starts at card, "
        "which does not "
        "run on sms: the customer would be told to call at once"
    ]
