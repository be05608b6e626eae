"""A call in one of its flow's languages: chosen by a menu, the called number or a backend,
it picks the prompts, rides on the actions for the adapters, and the built-in words follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.engine import Session, new_session, step
from ivr.engine import actions as act
from ivr.engine.events import CallStarted, Digits, Event, FetchResult, NoInput, Speech
from ivr.flow import load_flow, parse_and_compile
from ivr.flow.model import Flow

BANK = load_flow(Path(__file__).parents[3] / "flows" / "bank_ru_kk.yaml")
KAZAKH_LINE, RUSSIAN_LINE = "+77170000002", "+77270000001"


def run(flow: Flow, *events: Event) -> tuple[Session, list[act.Action]]:
    session, actions = new_session(flow, "CA1"), []
    for event in events:
        session, actions = step(flow, session, event)
    return session, actions


def prompts(actions: list[act.Action]) -> list[tuple[str, str | None]]:
    return [(a.text, a.language) for a in actions if isinstance(a, act.Prompt)]


def listen(actions: list[act.Action]) -> act.Listen:
    return next(a for a in actions if isinstance(a, act.Listen))


def test_a_call_starts_in_the_flow_language_and_asks() -> None:
    session, actions = run(BANK, CallStarted("+7701", RUSSIAN_LINE, at=1))
    assert session.vars["language"] == "ru-RU"
    assert prompts(actions) == [("Для русского языка нажмите 1. Қазақ тілі үшін 2 басыңыз.", None)]
    assert listen(actions).language is None  # the flow's own: the adapters' default


def test_the_menu_chooses_kazakh() -> None:
    session, actions = run(BANK, CallStarted("+7701", RUSSIAN_LINE, at=1), Digits("2", at=2))
    assert session.vars["language"] == "kk-KZ"
    assert prompts(actions) == [
        ("Мысал Банкке қош келдіңіз.", "kk-KZ"),
        (
            "Балансты білу үшін 1 басыңыз немесе баланс деп айтыңыз. Операторға қосылу үшін 0 "
            "басыңыз.",
            "kk-KZ",
        ),
    ]
    assert listen(actions).language == "kk-KZ"


def test_the_called_number_chooses_kazakh() -> None:
    session, actions = run(BANK, CallStarted("+7701", KAZAKH_LINE, at=1))
    assert session.path == ["pick", "welcome", "main"]
    assert prompts(actions)[0] == ("Мысал Банкке қош келдіңіз.", "kk-KZ")


def test_builtin_reprompts_follow_the_call() -> None:
    start = CallStarted("+7701", KAZAKH_LINE, at=1)
    _, actions = run(BANK, start, NoInput(at=2))
    assert prompts(actions)[0] == ("Кешіріңіз, мен ештеңе естімедім.", "kk-KZ")
    _, actions = run(BANK, CallStarted("+7701", RUSSIAN_LINE, at=1), Speech("один", at=2))
    assert prompts(actions)[0] == ("Извините, я не понял.", None)


def test_spoken_digits_in_kazakh_and_russian() -> None:
    start = CallStarted("+7701", KAZAKH_LINE, at=1)
    said = "бір екі үш төрт бес алты жеті төрт"
    session, actions = run(BANK, start, Digits("1", at=2), Speech(said, at=3))
    assert session.vars["account"] == "12345674"
    assert isinstance(actions[-1], act.Fetch)
    session, _ = run(
        BANK, start, Digits("1", at=2), Speech("один два три четыре пять шесть семь четыре", at=3)
    )
    assert session.vars["account"] == "12345674"


def test_backend_answer_in_kazakh_then_yes_in_kazakh() -> None:
    start = CallStarted("+7701", KAZAKH_LINE, at=1)
    fetched = FetchResult(200, {"balance": 1500}, at=4)
    session, actions = run(BANK, start, Digits("1", at=2), Digits("12345674#", at=3), fetched)
    assert prompts(actions)[0] == ("Сіздің балансыңыз: 1\xa0500,00 теңге.", "kk-KZ")
    session, actions = run(
        BANK, start, Digits("1", at=2), Digits("12345674#", at=3), fetched, Speech("иә", at=5)
    )
    assert session.node == "main"


def test_failure_apology_in_the_call_language() -> None:
    flow = parse_and_compile(
        "flow: f\nlanguages: [en-US, ru-RU]\nstart: s\nnodes:\n"
        "  s:\n    set: {language: \"'ru-RU'\"}\n    next: m\n"
        "  m:\n    menu:\n      prompt: {en-US: Hi, ru-RU: Привет}\n      retries: 0\n"
        "      options: {a: {dtmf: '1', goto: m}}\n"
    )
    session, actions = run(flow, CallStarted("", "", at=1), NoInput(at=2))
    assert session.outcome == "failed"
    assert prompts(actions)[-1] == (
        "Извините, на этот раз я не смог вам помочь. До свидания.",
        "ru-RU",  # not the flow's own: its voice is for en-US
    )


@pytest.mark.parametrize(
    ("chosen", "heard"),
    [("'ru-RU'", "Привет"), ("other", "Hi"), ("acct.lang", "Привет"), ("none_such", "Hi")],
)
def test_language_set_like_any_variable(chosen: str, heard: str) -> None:
    flow = parse_and_compile(
        "flow: f\nlanguages: [en-US, ru-RU]\nstart: s\n"
        "vars: {acct: {lang: ru-RU}, other: fr-FR}\nnodes:\n"
        f'  s:\n    set: {{language: "{chosen}"}}\n    next: e\n'
        "  e:\n    end: {say: {en-US: Hi, ru-RU: Привет}}\n"
    )
    _, actions = run(flow, CallStarted("", "", at=1))
    assert prompts(actions)[0][0] == heard  # an undeclared language: the flow's own


def test_a_hold_prompt_in_the_call_language() -> None:
    flow = parse_and_compile(
        "flow: f\nlanguages: [en-US, kk-KZ]\nlanguage_by_number: {'+77170000002': kk-KZ}\n"
        "start: h\nnodes:\n"
        "  h:\n    http: {url: 'http://bank/x', hold: {en-US: One moment., kk-KZ: Күте тұрыңыз.}}\n"
        "    next: e\n    on_error: e\n  e:\n    end: {}\n"
    )
    _, actions = run(flow, CallStarted("", KAZAKH_LINE, at=1))
    (fetch,) = actions
    assert isinstance(fetch, act.Fetch)
    assert fetch.hold == act.Prompt((act.Text("Күте тұрыңыз."),), "kk-KZ")


CONFIRMING = """\
flow: f
languages: [en-US, ru-RU]
start: s
nodes:
  s:
    set: {language: "'ru-RU'"}
    next: m
  m:
    menu:
      prompt: {en-US: Say balance., ru-RU: Скажите баланс.}
      confirm_below: 0.9
      CONFIRM
      options: {balance: {speech: [balance, баланс], goto: e}}
  e:
    end: {say: {en-US: Bye., ru-RU: До свидания.}}
"""


@pytest.mark.parametrize(
    ("confirm", "question"),
    [
        ("", "Вы имели в виду: баланс?"),  # built in, in the call's language
        ("confirm: {en-US: 'Did you say {{ phrase }}?', ru-RU: 'Вы сказали {{ phrase }}?'}",
         "Вы сказали баланс?"),
    ],
)  # fmt: skip
def test_a_confirmation_in_the_call_language(confirm: str, question: str) -> None:
    flow = parse_and_compile(CONFIRMING.replace("CONFIRM", confirm))
    start = CallStarted("", "", at=1)
    session, actions = run(flow, start, Speech("баланс", 0.5, at=2))
    assert session.waiting == "confirm"
    assert prompts(actions) == [(question, "ru-RU")]
    confirming = listen(actions)
    assert confirming.language == "ru-RU" and confirming.phrases[:2] == ("да", "ага")
    session, actions = run(flow, start, Speech("баланс", 0.5, at=2), Speech("да", at=3))
    assert session.outcome == "contained" and prompts(actions) == [("До свидания.", "ru-RU")]


OWN_APOLOGY = """\
flow: f
languages: [en-US, kk-KZ]
language_by_number: {"+77170000002": kk-KZ}
defaults:
  apology: {en-US: "Sorry, we broke.", kk-KZ: "Кешіріңіз, қате."}
  speech_down: {en-US: "Use your keys.", kk-KZ: "Пернелерді басыңыз."}
start: m
nodes:
  m:
    menu:
      prompt: {en-US: Hi, kk-KZ: Сәлем}
      retries: 0
      options: {a: {dtmf: '1', goto: m}}
"""


def test_the_flow_s_own_apology_in_the_call_language() -> None:
    from ivr.engine.engine import apology_of

    flow = parse_and_compile(OWN_APOLOGY)
    assert apology_of(flow, "kk-KZ") == act.Prompt((act.Text("Кешіріңіз, қате."),), "kk-KZ")
    assert apology_of(flow, "en-US") == act.Prompt((act.Text("Sorry, we broke."),))
    assert flow.own("speech_down", "kk-KZ") == (act.Text("Пернелерді басыңыз."),)
    assert flow.own("speech_down", None) == (act.Text("Use your keys."),)


def test_an_own_apology_by_language_may_not_be_templated() -> None:
    from ivr.errors import FlowError

    with pytest.raises(FlowError, match="no templates"):
        parse_and_compile(OWN_APOLOGY.replace("Кешіріңіз, қате.", "{{ caller }}"))
