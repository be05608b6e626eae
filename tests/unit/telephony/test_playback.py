"""Prompt audio paced by the stream's clock, marks after prompts, barge-in."""

from __future__ import annotations

from ivr.telephony.media import FRAME
from ivr.telephony.playback import MARK_SLACK, Playback


def audio(frames: int, byte: int = 0x10) -> bytes:
    return bytes([byte]) * (FRAME * frames)


def kinds(items: list[bytes | str]) -> list[str]:
    return [item if isinstance(item, str) else "frame" for item in items]


def test_sends_no_more_than_the_lead_ahead_of_the_clock():
    playback = Playback(lead=0.1)
    playback.add(audio(20), "1")
    assert kinds(playback.due(0.0)) == ["frame"] * 5  # 100 ms ahead
    assert playback.due(0.0) == []
    assert kinds(playback.due(0.02)) == ["frame"]  # one frame a frame of the caller's
    assert kinds(playback.due(0.1)) == ["frame"] * 4
    assert not playback.idle


def test_a_mark_follows_the_last_frame_of_its_prompt():
    playback = Playback(lead=0.1)
    playback.add(audio(2), "1")
    playback.add(audio(1), "2")
    assert kinds(playback.due(5.0)) == ["frame", "frame", "1", "frame", "2"]
    assert not playback.idle  # sent, not played
    assert playback.echoed("1")
    assert not playback.idle
    assert playback.echoed("2")
    assert playback.idle


def test_an_echo_means_every_mark_before_it_played_too():
    playback = Playback(lead=1.0)
    playback.add(audio(1), "1")
    playback.add(audio(1), "2")
    playback.due(0.0)
    assert playback.echoed("2")
    assert playback.idle
    assert not playback.echoed("1")  # old news, not ours any more
    assert not playback.echoed("other")


def test_after_idling_the_next_prompt_starts_at_the_clock():
    playback = Playback(lead=0.1)
    playback.add(audio(1), "1")
    playback.due(0.0)
    playback.echoed("1")
    playback.add(audio(10), "2")
    assert kinds(playback.due(30.0)) == ["frame"] * 5  # not 30 s of audio at once


def test_clear_drops_what_was_not_sent():
    playback = Playback(lead=0.1)
    playback.add(audio(20), "1")
    playback.add(audio(5), "2")
    playback.due(0.0)
    assert playback.clear()
    assert playback.due(1.0) == []
    assert playback.idle  # no mark was sent: none will come back


def test_clear_when_all_was_sent_waits_for_the_echo():
    playback = Playback(lead=1.0)
    playback.add(audio(2), "1")
    playback.due(0.0)
    assert playback.clear()
    assert not playback.idle
    assert playback.echoed("1")  # Twilio echoes the marks it held at a clear
    assert playback.idle
    assert not playback.clear()  # nothing played: nothing to clear


def test_empty_audio_is_only_its_mark():
    playback = Playback()
    playback.add(b"", "1")
    assert playback.due(0.0) == ["1"]


def test_a_mark_that_never_comes_back_is_taken_as_played_after_a_while():
    playback = Playback(lead=0.1)
    playback.add(audio(50), "1")  # one second of prompt
    for step in range(60):
        playback.due(step * 0.02)
    assert playback.overdue(1.2) is None  # still playing, or its echo on the way
    assert playback.overdue(1.0 + MARK_SLACK - 0.01) is None
    assert playback.overdue(1.0 + MARK_SLACK) == "1"
    assert playback.echoed("1") and playback.overdue(10.0) is None
