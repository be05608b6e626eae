"""The stream driver's pure helpers: what the softphone's transcript is told."""

from __future__ import annotations

import pytest

from ivr.engine import actions as act
from ivr.engine.session import Session
from ivr.telephony.stream import _ending, _new_lines

A = [0.1, "main", "prompt"]
B = [1.0, "main", "dtmf", "match", "3"]
C = [1.0, "hours", "say"]
D = [2.0, "end", "hangup"]


@pytest.mark.parametrize(
    ("before", "after", "new"),
    [
        ([], [A, B], [A, B]),
        ([A], [A, B, C], [B, C]),
        ([A, B], [A, B], []),
        ([A, B, C], [B, C, D], [D]),  # the engine kept the last lines only: A left
        ([A, B], [C, D], [C, D]),  # all of them left
        ([A, A], [A, A, A], [A]),  # the same line twice is still two lines
    ],
)
def test_new_lines_of_a_transcript(before, after, new):
    assert _new_lines(before, after) == new


def test_how_a_call_ended():
    session = Session("CA1", "telebanking_ko", "v1", outcome="transferred", reason="global:agent")
    transfer = act.Transfer("+15550199", "support", "global")
    assert _ending(session, [transfer]) == {
        "outcome": "transferred",
        "reason": "global:agent",
        "to": "+15550199",
        "queue": "support",
    }
    session.outcome, session.reason = "contained", None
    assert _ending(session, [act.Hangup("contained")]) == {"outcome": "contained", "reason": None}


class Recognition:
    """The speech service's part a stream uses: sessions opened by language (only the
    languages given have a model), and closed."""

    def __init__(self, *languages: str) -> None:
        self.languages, self.opened, self.closed = languages, list[str](), list[str]()

    def open(self, language: str) -> Opened | None:
        self.opened.append(language)
        return Opened(self, language) if language in self.languages else None


class Opened:
    def __init__(self, service: Recognition, language: str) -> None:
        self.service, self.language = service, language

    def close(self) -> None:
        self.service.closed.append(self.language)


def test_a_call_that_changes_language_hears_with_that_language_s_model():
    from types import SimpleNamespace

    from ivr.flow import parse_and_compile
    from ivr.telephony.stream import StreamCall

    flow = parse_and_compile(
        "flow: f\nlanguages: [ko-KR, ru-RU]\nspeech: vosk\nstart: m\nnodes:\n  m:\n    menu:\n"
        "      prompt: {ko-KR: 네?, ru-RU: Да?}\n"
        "      options: {a: {dtmf: '1', speech: [네, да], goto: m}}\n"
    )
    service = Recognition("ko-KR", "ru-RU")
    streams = SimpleNamespace(calls=None, rehearsals=None, recognition=service, rate=0)
    call = StreamCall(streams, ws=None)  # type: ignore[arg-type]
    call.flow, call.heard_in = flow, "ko-KR"
    call.recognition = service.open("ko-KR")  # type: ignore[assignment]
    call.hear_in("ko-KR")  # the same language: the same session
    assert service.opened == ["ko-KR"]
    call.hear_in("ru-RU")
    assert (service.opened, service.closed) == (["ko-KR", "ru-RU"], ["ko-KR"])
    assert call.recognition.language == "ru-RU" and not call.speech_failed  # type: ignore[union-attr]


class Prompts:
    """The prompt audio a stream asks for: what, in which language and voice."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str | None]] = []

    async def mulaw(self, parts, language, voice):
        self.asked.append((" ".join(p.text for p in parts), language, voice))
        return b""


async def test_a_stream_speaks_each_prompt_in_its_language():
    from types import SimpleNamespace

    from ivr.flow import parse_and_compile
    from ivr.telephony.stream import StreamCall

    flow = parse_and_compile(
        "flow: f\nlanguages: [ru-RU, kk-KZ]\nvoice: ru+f3\nspeech: vosk\nstart: e\nnodes:\n"
        "  e: {end: {say: {ru-RU: Пока., kk-KZ: Сау болыңыз.}}}\n"
    )
    prompts = Prompts()
    streams = SimpleNamespace(calls=None, rehearsals=None, prompts=prompts, rate=0)
    call = StreamCall(streams, ws=None)  # type: ignore[arg-type]
    call.flow = flow
    call.say(act.Prompt((act.Text("Пока."),)))
    call.say(act.Prompt((act.Text("Сау болыңыз."),), "kk-KZ"))
    for task, _ in call.rendering:
        await task
    # the flow's espeak-ng voice is for its own language; Kazakh gets kk's own
    assert prompts.asked == [("Пока.", "ru-RU", "ru+f3"), ("Сау болыңыз.", "kk-KZ", None)]
