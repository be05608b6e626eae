"""The endpointer on espeak-ng Korean as Twilio streams it: speech starts where the voice
does, and ends within the hang-over + 100 ms of the true end of the voice (found from
the audio's energy, tests/voices.py)."""

from __future__ import annotations

import pytest

from ivr.speech.vad import Endpointer, SpeechEnded, SpeechStarted, VadEvent
from tests.voices import LEAD, Utterance

PHRASES = ["예금 잔액", "내역 조회", "상담원 연결 해 주세요", "네", "오늘 날씨가 정말 좋네요"]


def events(utterance: Utterance | bytes, endpointer: Endpointer | None = None) -> list[VadEvent]:
    endpointer = endpointer or Endpointer()
    pcm = utterance.pcm if isinstance(utterance, Utterance) else utterance
    out = []
    for i in range(0, len(pcm), 320):
        out += endpointer.feed(pcm[i : i + 320])
    return out


@pytest.mark.parametrize("text", PHRASES)
def test_end_within_the_hang_over_and_100_ms_of_the_voice(voices, text):
    said = voices.say(text)
    found = events(said)
    assert [type(e) for e in found] == [SpeechStarted, SpeechEnded]
    started, ended = found
    assert LEAD - 0.02 <= started.at <= LEAD + 0.1
    assert said.voice_end <= ended.at <= said.voice_end + 0.25 + 0.1
    assert abs(ended.voice_end - said.voice_end) <= 0.06
    assert 0.25 <= ended.at - ended.voice_end < 0.25 + 0.02  # whole 20 ms frames of silence


@pytest.mark.parametrize("hang_over", [0.2, 0.3, 0.5])
def test_hang_over_is_the_silence_waited_for(voices, hang_over):
    said = voices.say("영업 시간")
    ended = events(said, Endpointer(hang_over))[-1]
    assert isinstance(ended, SpeechEnded)
    assert said.voice_end <= ended.at <= said.voice_end + hang_over + 0.1


def test_line_noise_is_not_speech(voices):
    assert events(voices.silence(2.0)) == []


def test_a_voice_in_the_first_100_ms_starts_nothing_until_then(voices):
    pcm = voices.say("영업 시간").pcm
    late = pcm[int(0.25 * 16000) :]  # the voice starts 50 ms into the listen
    started = events(late)[0]
    assert isinstance(started, SpeechStarted)
    assert started.at >= 0.1


def test_chunk_sizes_do_not_matter(voices):
    pcm = voices.say("내역 조회").pcm
    endpointer, odd = Endpointer(), []
    for i in range(0, len(pcm), 70):
        odd += endpointer.feed(pcm[i : i + 70])
    assert odd == events(pcm)


def test_reset_starts_a_new_listen(voices):
    said = voices.say("네")
    endpointer = Endpointer()
    first = events(said, endpointer)
    endpointer.reset()
    assert not endpointer.speaking
    assert events(said, endpointer) == first


def test_speaking_between_start_and_end(voices):
    pcm = voices.say("상담원 연결").pcm
    endpointer, states = Endpointer(), []
    for i in range(0, len(pcm), 320):
        for event in endpointer.feed(pcm[i : i + 320]):
            states.append((type(event), endpointer.speaking))
    assert states == [(SpeechStarted, True), (SpeechEnded, False)]
