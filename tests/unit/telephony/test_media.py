"""The Media Streams codec against golden frames: Twilio's messages as its docs show them
(golden/in_*.json) in, ours (golden/out_*.json) out. `UPDATE_GOLDEN=1` rewrites the
outbound files (review the diff before committing it)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from ivr.speech.audio import ulaw_to_pcm
from ivr.telephony import media

GOLDEN = Path(__file__).parent / "golden"
SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL = "CA" + "c0ffee" * 5 + "cc"
ACCOUNT = "AC" + "0" * 31 + "1"
RAMP = bytes(range(0, 256, 2))[:80] + bytes(range(1, 256, 2))[:80]  # the golden payload


def inbound(name: str) -> str:
    return (GOLDEN / f"in_{name}.json").read_text()


def golden(name: str, message: str) -> None:
    """`message` is exactly the golden file's JSON (compact: what goes on the wire)."""
    path = GOLDEN / f"out_{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(message + "\n")
    assert message == path.read_text().rstrip("\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("connected", media.Connected("Call", "1.0.0")),
        (
            "start",
            media.Start(
                SID,
                CALL,
                ACCOUNT,
                ("inbound",),
                {
                    "flow": "telebanking_ko",
                    "version": "73c8ced85614",
                    "caller": "+821012345678",
                    "called": "+15550130",
                    "direction": "inbound",
                },
            ),
        ),
        ("media", media.Media(SID, RAMP, 5, 1, "inbound")),
        ("dtmf", media.Dtmf(SID, "1", "inbound_track")),
        ("mark", media.Mark(SID, "my label")),
        ("stop", media.Stop(SID, CALL, ACCOUNT)),
    ],
)
def test_parse_twilios_messages(name, expected):
    parsed = media.parse(inbound(name))
    assert parsed == expected
    if isinstance(parsed, media.Start):  # not part of equality (a mapping is no hash)
        assert parsed.custom == expected.custom
        assert (parsed.encoding, parsed.sample_rate, parsed.channels) == ("audio/x-mulaw", 8000, 1)


def test_parse_takes_bytes_and_numbers_as_numbers():
    message = json.loads(inbound("media"))
    message["media"] |= {"timestamp": 40, "chunk": 3}
    parsed = media.parse(json.dumps(message).encode())
    assert isinstance(parsed, media.Media)
    assert (parsed.timestamp, parsed.chunk) == (40, 3)


def test_an_event_nobody_knows_is_none():
    assert media.parse('{"event": "transcription", "streamSid": "MZ1"}') is None
    assert media.parse('{"streamSid": "MZ1"}') is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"event": "media", "media": {"timestamp": "5"}}',  # no payload
        '{"event": "media", "media": {"payload": "@@@", "timestamp": "5"}}',  # not base64
        '{"event": "media", "media": {"payload": "", "timestamp": "soon"}}',
        '{"event": "start", "start": {"streamSid": "MZ1"}}',  # no callSid
        '{"event": "dtmf", "dtmf": {}}',
        '{"event": "mark", "mark": null}',
        # shapes Twilio never sends (the tester's): each once crashed the call's handler
        '{"event": "stop", "stop": 7}',
        '{"event": "start", "start": [1, 2]}',
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "mediaFormat": 5}}',
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", '
        '"customParameters": "abc"}}',
        '{"event": "media", "media": [1]}',
        '{"event": "dtmf", "dtmf": "1"}',
    ],
)
def test_what_is_not_a_message_is_a_media_error(text):
    with pytest.raises(media.MediaError):
        media.parse(text)


def test_media_payload_decodes_to_pcm():
    parsed = media.parse(inbound("media"))
    assert isinstance(parsed, media.Media)
    assert parsed.pcm == ulaw_to_pcm(RAMP)
    assert len(parsed.pcm) == 2 * len(RAMP)


def test_what_we_send():
    frame = next(media.frames(RAMP))
    golden("media", media.media(SID, frame))
    golden("mark", media.mark(SID, "7"))
    golden("clear", media.clear(SID))
    sent = json.loads(media.media(SID, frame))
    assert base64.b64decode(sent["media"]["payload"]) == RAMP


def test_typed_speech_is_read_on_the_admin_socket_only():
    # Twilio's socket never takes the softphone's messages: unknown there, as Twilio's own
    # future events are
    assert media.parse(inbound("text")) is None
    assert media.parse(inbound("text"), extras=True) == media.Typed("예금 잔액")
    assert media.parse(inbound("media"), extras=True) == media.parse(inbound("media"))
    long = json.dumps({"event": "ivr.text", "text": "네" * 500})
    assert media.parse(long, extras=True) == media.Typed("네" * media.MAX_TYPED)


@pytest.mark.parametrize("text", ['{"event": "ivr.text"}', '{"event": "ivr.text", "text": 5}'])
def test_typed_speech_without_text_is_a_media_error(text):
    with pytest.raises(media.MediaError):
        media.parse(text, extras=True)


def test_the_softphones_transcript_lines():
    golden("transcript_heard", media.transcript(SID, "heard", text="예금 잔액", confidence=0.82))
    golden("transcript_end", media.transcript(SID, "end", outcome="transferred", to="+15550199"))


def test_frames_are_20_ms_the_last_padded_with_silence():
    audio = bytes(range(200)) * 2  # 400 bytes: 2.5 frames
    cut = list(media.frames(audio))
    assert [len(f) for f in cut] == [media.FRAME] * 3
    assert b"".join(cut)[:400] == audio
    assert cut[-1][80:] == media.SILENCE[:80]
    assert media.duration_ms(audio) == 60
    assert list(media.frames(b"")) == []


def test_silence_is_mu_law_zero_and_round_trips():
    assert media.SILENCE == b"\xff" * media.FRAME
    assert media.to_pcm(media.SILENCE) == b"\0\0" * media.FRAME
    codes = bytes(c for c in range(256) if c != 0x7F)  # 0x7F is -0, which encodes as +0
    assert media.to_ulaw(media.to_pcm(codes)) == codes
