"""TwiML rendering against golden files: `UPDATE_GOLDEN=1 pytest tests/functional/test_twiml.py`
rewrites them (review the diff before committing it)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.engine import actions as act
from ivr.flow.ssml import parse, plain
from ivr.telephony.twiml import MAX_HINT, Voice, connect, hints, render, speech_timeout

GOLDEN = Path(__file__).parent / "golden"
WORKFLOW = "WW" + "0123456789abcdef" * 2
MENU = act.Prompt(
    (act.Text("For your balance, press 1 or say balance. To speak to an agent, press 0."),)
)
WELCOME = act.Prompt((act.Text("Welcome to Example Bank."),))
MENU_LISTEN = act.Listen(
    "main",
    frozenset({"dtmf", "speech"}),
    5.0,
    barge_in=True,
    keys="10*",
    phrases=("balance", "how much money", "agent"),
)
ASK_LISTEN = act.Listen(
    "ask_account",
    frozenset({"dtmf", "speech"}),
    7.0,
    barge_in=True,
    min_digits=8,
    max_digits=8,
    finish_on="#",
    sensitive=True,
)
AGENT = act.Transfer(
    "+15550199",
    "support",
    "option:agent",
    {"reason": "option:agent", "option": "agent"},
    caller_id="+15550100",
    timeout=20.0,
)


def pretty(document: str) -> str:
    """The document indented for reading (its elements, attributes and texts unchanged)."""
    root = ET.fromstring(document)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def golden(name: str, document: str) -> None:
    path = GOLDEN / f"{name}.xml"
    text = pretty(document)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"{path} differs (UPDATE_GOLDEN=1 rewrites it)"


def ssml(text: str) -> act.Text:
    """A text part with inline SSML, as the compiler makes it."""
    tree = parse(text)
    return act.Text(plain(tree), tree)


SSML_PROMPT = act.Prompt(
    (
        ssml(
            'Your code is <say-as interpret-as="digits">4821</say-as>.<break time="500ms"/>'
            '<prosody rate="slow">Press <emphasis level="strong">1</emphasis> to hear it'
            " again.</prosody>"
        ),
    )
)
# a caller's words (or a backend's) in a template: text, escaped, whatever they hold
INJECTED = act.Prompt((act.Text("You said AT&T <break/>", ("You said ", "AT&T <break/>")),), None)


CASES: dict[str, tuple[list[act.Action], Voice]] = {
    "ssml_prompt": ([SSML_PROMPT, act.Hangup("contained")], Voice()),
    "ssml_value_is_text": ([INJECTED, act.Hangup("contained")], Voice()),
    "language_of_the_call": (  # an en-US flow's caller chose Russian: its voice, recognition
        [
            act.Prompt((act.Text("Добро пожаловать."),), "ru-RU"),
            replace(MENU_LISTEN, phrases=("баланс",), language="ru-RU"),
        ],
        Voice("en-US", "Polly.Joanna"),
    ),
    "menu_barge_in": ([WELCOME, MENU, MENU_LISTEN], Voice()),
    "menu_no_barge_in": (
        [WELCOME, MENU, act.Listen("main", frozenset({"dtmf"}), 3.4, barge_in=False, keys="12")],
        Voice(),
    ),
    "ask_digits_finish_key": (
        [act.Prompt((act.Text("Enter your account number, then the pound key."),)), ASK_LISTEN],
        Voice(),
    ),
    "ask_digits_fixed_length": (
        [
            act.Prompt((act.Text("Enter your six digit order number."),)),
            act.Listen("ask_order", frozenset({"dtmf"}), 5.0, min_digits=6, max_digits=6),
        ],
        Voice(),
    ),
    "ask_speech": (
        [
            act.Prompt((act.Text("Tell me your city."),)),
            act.Listen("ask_city", frozenset({"speech"}), 4.0, max_digits=32, finish_on="#"),
        ],
        Voice("en-GB", "Polly.Amy"),
    ),
    "transfer_number": ([act.Prompt((act.Text("Connecting you to an agent."),)), AGENT], Voice()),
    "transfer_sip": (
        [act.Transfer("sip:support@pbx.example.com;transport=tls", None, "node:main")],
        Voice(),
    ),
    "enqueue_task": (
        [act.Prompt((act.Text("Connecting you to an agent."),)), AGENT],
        Voice(workflow_sid=WORKFLOW),
    ),
    "record": (
        [
            act.Prompt((act.Text("Leave a message after the tone."),)),
            act.Record("closed", 60, "#"),
        ],
        Voice(),
    ),
    "hangup_end": (
        [act.Prompt((act.Text("Thank you for calling. Goodbye."),)), act.Hangup("contained")],
        Voice(),
    ),
    "audio_play": (
        [
            act.Prompt(
                (
                    act.Audio("welcome.wav"),
                    act.Text("Your balance is $12.50 & no cents <none>."),
                    act.Audio("jingles/thank you.wav"),
                )
            ),
            act.Hangup("contained"),
        ],
        Voice("en-US", "Polly.Joanna"),
    ),
    "nothing_to_do": ([], Voice()),
    "hold_first": (  # what was said before the backend call, the hold prompt, then back
        [
            act.Prompt((act.Text("Let me check."),)),
            act.Fetch("lookup", "GET", "http://bank/x", 2.0),
            act.Prompt((act.Text("One moment while I look that up."),)),
            act.Hold(),
        ],
        Voice("en-GB", "Polly.Amy"),
    ),
    "hold_music": ([act.Hold("hold music.mp3")], Voice()),
    "hold_pause": ([act.Hold(pause=1.0)], Voice()),
    "hints_keep_phrases_whole": (  # a comma inside a phrase would split it in two hints
        [MENU, replace(MENU_LISTEN, phrases=("yes, please", "balance", "how much,money", ","))],
        Voice(),
    ),
    "dtmf_only_no_hints": (  # no speech taken: no hints, no speech settings
        [MENU, replace(MENU_LISTEN, modes=frozenset({"dtmf"}))],
        Voice(speech_model="phone_call"),
    ),
    "speech_model": (  # Twilio refuses speechTimeout="auto" with a speech model
        [MENU, MENU_LISTEN],
        Voice(speech_model="phone_call"),
    ),
    "speech_model_timeout": (
        [MENU, MENU_LISTEN],
        Voice("en-GB", "Polly.Amy", speech_model="deepgram_nova-2", speech_timeout=3),
    ),
    "default_voice_korean": (
        [act.Prompt((act.Text("안녕하세요."),)), act.Hangup("contained")],
        Voice("ko-KR"),
    ),
    "default_voice_kazakh": (  # no Kazakh voice: read in Russian, recognised in Kazakh
        [act.Prompt((act.Text("Сәлеметсіз бе."),)), replace(MENU_LISTEN, phrases=("иә",))],
        Voice("kk-KZ"),
    ),
    "espeak_voice_replaced": (  # an espeak-ng voice (Media Streams) means nothing to Twilio
        [act.Prompt((act.Text("Здравствуйте."),)), act.Hangup("contained")],
        Voice("ru-RU", "ru+f3"),
    ),
}

# globals in asks, sensitive asks and subflows' own language (docs/flow-language.md)
CASES |= {
    "ask_keys_only_sensitive": (  # sensitive on Twilio's recogniser: no speech, * goes through
        [
            act.Prompt((act.Text("Enter your account number, then the pound key."),)),
            replace(ASK_LISTEN, modes=frozenset({"dtmf"}), global_keys="*"),
        ],
        Voice(),
    ),
    "ask_digits_global_hints": (  # digits by keys or speech; the globals' phrases as hints
        [
            act.Prompt((act.Text("Say or enter your order number."),)),
            replace(
                ASK_LISTEN,
                sensitive=False,
                phrases=("agent", "operator", "repeat"),
                global_keys="*",
            ),
        ],
        Voice(),
    ),
    "ask_speech_global_keys": (  # a speech ask takes the globals' keys, one key at once
        [
            act.Prompt((act.Text("Tell me your city."),)),
            act.Listen(
                "ask_city",
                frozenset({"dtmf", "speech"}),
                4.0,
                keys="0*",
                max_digits=32,
                finish_on="#",
                phrases=("agent", "repeat"),
                global_keys="0*",
            ),
        ],
        Voice(),
    ),
    "subflow_own_language": (  # a Korean subflow in an English flow: its prompt and gather
        [
            WELCOME,
            act.Prompt((act.Text("예금 잔액은 1번을 누르세요."),), "ko-KR"),
            replace(MENU_LISTEN, phrases=("예금 잔액",), language="ko-KR"),
        ],
        Voice("en-US", "Polly.Joanna"),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    actions, voice = CASES[name]
    golden(name, render(actions, voice, 3))


def test_every_golden_file_has_a_case() -> None:
    cases = [*CASES, "connect_stream"]  # rendered by `connect`, not `render`
    assert sorted(p.stem for p in GOLDEN.glob("*.xml")) == sorted(cases)


def test_menu_prompts_inside_gather_then_redirect() -> None:
    root = ET.fromstring(render([WELCOME, MENU, MENU_LISTEN], Voice(), 7))
    assert [v.tag for v in root] == ["Gather", "Redirect"]
    gather, redirect = root
    assert [(s.tag, s.text) for s in gather] == [
        ("Say", "Welcome to Example Bank."),
        ("Say", MENU.parts[0].text),  # type: ignore[union-attr]
    ]
    assert gather.get("action") == "/twilio/gather?t=7"
    assert gather.get("numDigits") == "1"
    assert redirect.text == "/twilio/gather?t=7&silence=1"


def test_enqueue_task_is_json() -> None:
    root = ET.fromstring(render([AGENT], Voice(workflow_sid=WORKFLOW), 2))
    (enqueue,) = root
    assert enqueue.tag == "Enqueue" and enqueue.get("workflowSid") == WORKFLOW
    (task,) = enqueue
    assert json.loads(task.text or "") == {
        "queue": "support",
        "reason": "option:agent",
        "option": "agent",
    }


def test_without_workflow_a_queue_transfer_dials() -> None:
    root = ET.fromstring(render([AGENT], Voice(), 2))
    assert [v.tag for v in root] == ["Dial"]
    assert [(n.tag, n.text) for n in root[0]] == [("Number", "+15550199")]


def test_the_turn_is_the_only_difference_between_turns() -> None:
    actions = [WELCOME, MENU, MENU_LISTEN]
    two, three = render(actions, Voice(), 2), render(actions, Voice(), 3)
    assert two != three
    assert two.replace("t=2", "t=3") == three
    assert render(actions, Voice(), 3) == three  # cached, and still right


def test_transfer_attributes_change_the_document() -> None:
    """Transfers hold a dict (not hashable, so not cached): each renders its own task."""
    voice = Voice(workflow_sid=WORKFLOW)
    a = render([AGENT], voice, 2)
    b = render([act.Transfer("+15550199", "support", "option:agent", {"option": "x"})], voice, 2)
    assert a != b and '"option": "x"' in b


def test_connect_stream() -> None:
    """The voice path's answer: the call's audio to the WebSocket, what the stream needs as
    `<Parameter>`s, and the `<Connect>` action that asks what follows the stream."""
    parameters = {"flow": "telebanking_ko", "caller": "+821012345678", "called": "+15550130"}
    document = connect("wss://ivr.example.com/twilio/stream", "/twilio/connect", parameters)
    golden("connect_stream", document)


@pytest.mark.parametrize(
    ("phrases", "expected"),
    [
        (("balance", "how much money"), "balance, how much money"),
        (("yes, please",), "yes please"),  # one phrase stays one hint
        (("a,b", " a  b ", "a b"), "a b"),  # once each
        ((",", " ", ""), None),
        (("x" * (MAX_HINT + 1), "ok"), "ok"),  # too long to be a hint
        (("$OOV_CLASS_DIGIT_SEQUENCE",), "$OOV_CLASS_DIGIT_SEQUENCE"),  # Twilio's class tokens
    ],
)
def test_hints(phrases: tuple[str, ...], expected: str | None) -> None:
    assert hints(phrases) == expected


@pytest.mark.parametrize(
    ("voice", "expected"),
    [
        (Voice(), "auto"),
        (Voice(speech_timeout=4), "4"),
        (Voice(speech_model="numbers_and_commands"), "2"),  # never "auto" with a model
        (Voice(speech_model="googlev2_telephony", speech_timeout=1), "1"),
    ],
)
def test_speech_timeout(voice: Voice, expected: str) -> None:
    assert speech_timeout(voice) == expected
