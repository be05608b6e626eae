"""Compiling prompts: every form of the grammar, inline SSML checked at compile time,
template values kept as text, `text:` for text channels, maps by language."""

from __future__ import annotations

import pytest

from ivr.errors import FlowError
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.model import Audio, Flow, PromptTemplate, Text
from ivr.flow.schema import check_schema
from ivr.flow.ssml import Tag

HEAD = "flow: f\nstart: a\n"


def compile_say(say: str, head: str = HEAD) -> tuple[Flow, list[str]]:
    doc = parse_flow(
        f"{head}nodes:\n  a:\n    say: {say}\n    next: b\n  b:\n    end: {{}}\n", "f.yaml", {}
    )
    assert [str(p) for p in check_schema(doc)] == []
    flow, problems = compile_flow(doc)
    return flow, [str(p) for p in problems]


def said(say: str, head: str = HEAD) -> PromptTemplate:
    prompt = compile_say(say, head)[0].nodes["a"].spec
    assert isinstance(prompt, PromptTemplate)
    return prompt


def errors(say: str, head: str = HEAD) -> list[str]:
    with pytest.raises(FlowError) as e:
        compile_say(say, head)
    return [str(p) for p in e.value.problems]


@pytest.mark.parametrize(
    ("say", "parts"),
    [
        ('"Hello."', (Text("Hello."),)),
        ("{say: Hello.}", (Text("Hello."),)),
        ("{audio: hi.wav}", (Audio("hi.wav"),)),
        ("[Hello., {audio: hi.wav}, {say: Bye.}]", (Text("Hello."), Audio("hi.wav"), Text("Bye."))),
        (
            "'Wait <break time=\"1s\"/> please.'",
            (Text("Wait please.", ("Wait ", Tag("break", (("time", "1s"),)), " please.")),),
        ),
    ],
)
def test_static_forms(say: str, parts: tuple[object, ...]) -> None:
    assert said(say).static == parts


def test_text_variant_is_kept_for_text_channels() -> None:
    prompt = said(
        "[{say: 'Press 1 <break/> or say yes.', text: 'Reply 1 or YES.'}, {audio: jingle.wav}]"
    )
    assert prompt.static is not None and prompt.static[0].text == "Press 1 or say yes."  # type: ignore[union-attr]
    assert prompt.shown is not None and prompt.shown.static == (Text("Reply 1 or YES."),)
    assert said("Hello.").shown is None  # text channels show the spoken words


def test_audio_with_text_shows_the_text() -> None:
    prompt = said("[{audio: logo.wav, text: 'Example Bank'}, Welcome.]")
    assert prompt.shown is not None
    assert prompt.shown.static == (Text("Example Bank"), Text("Welcome."))


def test_templated_text_variant_renders_and_spoken_ssml_shows_its_words() -> None:
    prompt = said(
        "[{say: 'Your code is <say-as interpret-as=\"digits\">{{ c }}</say-as>.'},"
        " {audio: beep.wav}, {say: 'Press 1.', text: 'Reply {{ n }}.'}]"
    )
    assert prompt.shown is not None and prompt.shown.static is None
    shown = prompt.shown.render({"c": "42", "n": 1})
    assert [p.text for p in shown if isinstance(p, Text)] == ["Your code is 42.", "Reply 1."]


def test_template_values_are_text_never_markup() -> None:
    prompt = said("'You said <emphasis>{{ what }}</emphasis>.'")
    assert prompt.static is None
    (part,) = prompt.render({"what": 'AT&T <break time="10s"/>'})
    assert isinstance(part, Text)
    assert part.ssml == ("You said ", Tag("emphasis", (), ('AT&T <break time="10s"/>',)), ".")
    assert part.text == 'You said AT&T <break time="10s"/>.'


@pytest.mark.parametrize(
    ("say", "message"),
    [
        ("'<speak>Hello</speak>'", "f.yaml:5:10: nodes.a.say: SSML: unknown tag <speak>"),
        ("[ok, '<emphasis>open']", "f.yaml:5:15: nodes.a.say[1]: SSML: <emphasis> is not closed"),
        ("{say: '<break time=\"soon\"/>'}", "SSML: <break time='soon'>: expected"),
    ],
)
def test_bad_ssml_is_a_located_error(say: str, message: str) -> None:
    found = errors(say)
    assert any(message in e for e in found), found


LANGS = "flow: f\nlanguages: [ru-RU, kk-KZ]\nstart: a\n"


def test_map_by_language() -> None:
    flow, problems = compile_say("{ru-RU: Привет., kk-KZ: Сәлем.}", LANGS)
    assert problems == []
    assert flow.language == "ru-RU" and flow.languages == ("ru-RU", "kk-KZ")
    prompt = flow.nodes["a"].spec
    assert prompt.static == (Text("Привет."),)
    assert prompt.in_language("kk-KZ").static == (Text("Сәлем."),)
    assert prompt.in_language("en-US").static == (Text("Привет."),)  # undeclared: the flow's


def test_map_values_spoken_in_their_language() -> None:
    head = "flow: f\nlanguages: [en-US, ru-RU]\nstart: a\n"
    prompt = said("{en-US: '{{ n | number }}', ru-RU: '{{ n | number }}'}", head)
    assert prompt.render({"n": 1234.5}) == (Text("1,234.5"),)
    assert prompt.in_language("ru-RU").render({"n": 1234.5}) == (Text("1\xa0234,5"),)


def test_language_missing_from_a_map_is_a_warning() -> None:
    _, problems = compile_say("{ru-RU: Привет.}", LANGS)
    assert problems == [
        "f.yaml:6:10: warning: nodes.a.say: no kk-KZ version: kk-KZ callers hear it in ru-RU"
    ]


@pytest.mark.parametrize(
    ("say", "message"),
    [
        ("{kk-KZ: Сәлем.}", "nodes.a.say: no ru-RU version"),
        (
            "{ru-RU: Привет., en-US: Hi.}",
            "'en-US' is not one of the flow's languages (ru-RU, kk-KZ)",
        ),
    ],
)
def test_map_errors(say: str, message: str) -> None:
    found = errors(say, LANGS)
    assert any(message in e for e in found), found


def test_language_by_number_must_be_declared() -> None:
    head = LANGS + 'language_by_number: {"+77170000002": ko-KR}\n'
    found = errors("Hi.", head)
    assert any("'ko-KR' is not one of the flow's languages" in e for e in found), found


def test_language_defaults_to_the_first_listed_and_leads() -> None:
    flow, _ = compile_say(
        "{kk-KZ: Сәлем., ru-RU: Привет.}",
        "flow: f\nlanguage: kk-KZ\nlanguages: [ru-RU, kk-KZ]\nstart: a\n",
    )
    assert flow.language == "kk-KZ" and flow.languages == ("kk-KZ", "ru-RU")
    assert flow.nodes["a"].spec.static == (Text("Сәлем."),)


def test_several_languages_get_builtin_reprompts_in_each() -> None:
    text = LANGS.replace("start: a", "start: m") + (
        "nodes:\n  m:\n    menu:\n      prompt: {ru-RU: Да?, kk-KZ: Иә?}\n"
        "      options: {y: {dtmf: '1', goto: m}}\n"
    )
    flow, _ = compile_flow(parse_flow(text, "f.yaml", {}))
    no_input = flow.nodes["m"].spec.listening.no_input[0]
    assert no_input.static == (Text("Извините, я ничего не услышал."),)
    assert no_input.in_language("kk-KZ").static == (Text("Кешіріңіз, мен ештеңе естімедім."),)


def test_a_language_set_by_name_must_be_declared() -> None:
    text = LANGS.replace("start: a", "start: s") + (
        "nodes:\n  s:\n    set: {language: \"'en-US'\"}\n    next: e\n  e:\n    end: {}\n"
    )
    with pytest.raises(FlowError) as e:
        compile_flow(parse_flow(text, "f.yaml", {}))
    assert [str(p) for p in e.value.problems] == [
        "f.yaml:6:21: nodes.s.set.language: 'en-US' is not one of the flow's languages "
        "(ru-RU, kk-KZ): add it to `languages`"
    ]
    ok = text.replace("'en-US'", "'kk-KZ'")
    assert compile_flow(parse_flow(ok, "f.yaml", {}))[0].nodes["s"].kind == "set"
