"""`ivr prompts FLOW`: the listing, its exit status, and placeholders made by espeak-ng."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from ivr.cli import main
from tests import tts
from tests.unit.speech.test_prompts import tone

FLOW = """
flow: shop
language: ko-KR
start: welcome
defaults: {no_input: "못 들었습니다.", speech_down: "버튼을 눌러 주세요."}
nodes:
  welcome:
    say: [{audio: chime.mp3}, "어서 오세요."]
    next: ask
  ask:
    ask: {prompt: "주문 번호를 눌러 주세요.", save_as: order}
    next: tell
  tell:
    say: "주문 {{ order | digits }} 금액은 {{ 12345 | currency }}입니다."
    next: again
  again:
    menu:
      prompt: [{audio: again.wav}]
      options: {yes: {dtmf: "1", goto: ask}, no: {dtmf: "2", goto: bye}}
  bye: {end: {say: "안녕히 가세요."}}
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(FLOW)
    audio = tmp_path / "audio"
    audio.mkdir()
    tone(audio / "chime.mp3", seconds=0.2)  # again.wav is missing
    return path


def test_prompts_lists_each_prompt_and_whether_it_is_recorded(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prompts", str(flow), "--audio", str(tmp_path / "audio")]) == 1  # missing one
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        "NODES ROLE RECORDING PROMPT",
        "welcome say yes chime.mp3",
        "welcome say no 어서 오세요.",
        "ask prompt no 주문 번호를 눌러 주세요.",
        "ask, again no_input no 못 들었습니다.",  # the flow's default, said by both
        "ask, again no_match no Sorry, I didn't catch that.",
        "tell say no 주문 {{ order | digits }} 금액은 {{ 12345 | currency }}입니다. "
        "(template: spoken on the turn)",
        "again prompt MISSING again.wav",
        "bye say no 안녕히 가세요.",
        "defaults speech_down no 버튼을 눌러 주세요.",
        "9 prompt part(s): 1 recorded, 6 text spoken by TTS, 1 templated, 1 recording(s) missing",
    ]


def test_prompts_synthesises_placeholders_named_where_they_are_said(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tts.espeak()
    out = tmp_path / "placeholders"
    audio = ["--audio", str(tmp_path / "audio")]
    assert main(["prompts", str(flow), *audio, "--synthesise", str(out)]) == 1
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "ask.no_input.wav",
        "ask.no_match.wav",
        "ask.prompt.wav",
        "bye.say.wav",
        "defaults.speech_down.wav",
        "welcome.say.2.wav",  # the second part of welcome's prompt
    ]
    for name in names:
        with wave.open(str(out / name)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() > 8000 * 0.3
    # a placeholder a designer replaced is kept, unless asked
    (out / "bye.say.wav").write_bytes(b"the designer's recording")
    capsys.readouterr()
    main(["prompts", str(flow), *audio, "--synthesise", str(out)])
    assert (out / "bye.say.wav").read_bytes() == b"the designer's recording"
    assert "kept " + str(out / "bye.say.wav") in capsys.readouterr().out
    main(["prompts", str(flow), *audio, "--synthesise", str(out), "--force"])
    assert (out / "bye.say.wav").read_bytes()[:4] == b"RIFF"


LANGUAGES = """
flow: hello
languages: [ru-RU, kk-KZ]
defaults: {apology: {ru-RU: "Извините.", kk-KZ: "Кешіріңіз."}}
start: hi
nodes:
  hi:
    say: {ru-RU: 'Здравствуйте. <break time="300ms"/> Это банк.', kk-KZ: "Сәлеметсіз бе."}
    next: bye
  bye: {end: {say: {ru-RU: "До свидания.", kk-KZ: "Сау болыңыз."}}}
"""


def test_prompts_in_several_languages_list_and_synthesise_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tts.espeak()
    flow = tmp_path / "hello.yaml"
    flow.write_text(LANGUAGES)
    out = tmp_path / "placeholders"
    assert main(["prompts", str(flow), "--audio", str(tmp_path), "--synthesise", str(out)]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[:5] == [
        "NODES ROLE LANG RECORDING PROMPT",
        "hi say ru-RU no Здравствуйте. Это банк.",  # the words: SSML is for Twilio's voice
        "hi say kk-KZ no Сәлеметсіз бе.",
        "bye say ru-RU no До свидания.",
        "bye say kk-KZ no Сау болыңыз.",
    ]
    assert lines[5:7] == [
        "defaults apology ru-RU no Извините.",
        "defaults apology kk-KZ no Кешіріңіз.",
    ]
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "bye.say.kk-KZ.wav",
        "bye.say.wav",
        "defaults.apology.kk-KZ.wav",
        "defaults.apology.wav",
        "hi.say.kk-KZ.wav",
        "hi.say.wav",
    ]
