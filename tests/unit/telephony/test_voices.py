"""The Twilio voice a flow's prompts are spoken in, by its language and voice."""

from __future__ import annotations

import pytest

from ivr.telephony.voices import DEFAULT_VOICES, is_twilio_voice, speaker


@pytest.mark.parametrize(
    ("language", "voice", "spoken"),
    [
        ("en-US", None, ("Polly.Joanna", "en-US")),
        ("en-GB", None, ("Polly.Amy", "en-GB")),
        ("ko-KR", None, ("Polly.Seoyeon", "ko-KR")),
        ("ru-RU", None, ("Polly.Tatyana", "ru-RU")),
        # no Kazakh voice: the Russian one reads the Cyrillic, in its own language
        ("kk-KZ", None, ("Polly.Tatyana", "ru-RU")),
        ("ko", None, ("Polly.Seoyeon", "ko-KR")),  # a language without region
        ("en-NZ", None, ("Polly.Joanna", "en-US")),  # a region without a voice of its own
        ("en-US", "Polly.Matthew", ("Polly.Matthew", "en-US")),  # the flow's own voice
        ("en-GB", "Google.en-GB-Standard-A", ("Google.en-GB-Standard-A", "en-GB")),
        ("en-US", "alice", ("alice", "en-US")),
        ("ru-RU", "ru+f3", ("Polly.Tatyana", "ru-RU")),  # espeak-ng's: not Twilio's
        ("sw-KE", None, (None, "sw-KE")),  # no voice known: Twilio chooses
    ],
)
def test_speaker(language: str, voice: str | None, spoken: tuple[str | None, str]) -> None:
    assert speaker(language, voice) == spoken


def test_every_default_voice_is_a_twilio_voice() -> None:
    assert all(is_twilio_voice(name) for name in DEFAULT_VOICES.values())
    assert not is_twilio_voice("en-us+f3") and not is_twilio_voice("ko")
