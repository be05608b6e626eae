"""Prompts in a language Twilio has no voice for become audio made here, played by Twilio."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.engine import actions as act
from ivr.flow import parse_and_compile
from ivr.flow.ssml import parse, plain
from ivr.speech.prompts import PromptAudio, PromptError
from ivr.speech.tts import TTSError
from ivr.telephony.spoken_here import localised, spoken_here
from ivr.telephony.voices import twilio_speaks
from tests.tts import CountingTTS

FLOW = parse_and_compile(
    "flow: f\nlanguages: [ru-RU, kk-KZ]\nstart: e\nnodes:\n  e: {end: {say: Сау болыңыз.}}\n"
)


@pytest.mark.parametrize(
    ("language", "voice", "twilio"),
    [
        ("en-US", None, True),
        ("en-NZ", None, True),  # another English voice reads it
        ("ru-RU", None, True),
        ("kk-KZ", None, False),  # only a Russian stand-in
        ("kk-KZ", "Polly.Tatyana", True),  # the flow chose that voice itself
        ("sw-KE", None, False),  # no voice known
    ],
)
def test_twilio_speaks(language: str, voice: str | None, twilio: bool) -> None:
    assert twilio_speaks(language, voice) is twilio


def test_which_languages_of_a_flow_are_spoken_here() -> None:
    assert not spoken_here(FLOW, "ru-RU")
    assert spoken_here(FLOW, "kk-KZ")


async def test_kazakh_text_becomes_audio_made_here_ssml_words_only(tmp_path: Path) -> None:
    tts = CountingTTS()
    prompts = PromptAudio(tmp_path, tmp_path / "cache", tts)
    tree = parse('Сәлеметсіз бе. <break time="1s"/> <emphasis>Мысал</emphasis> банк.')
    kazakh = act.Prompt((act.Text(plain(tree), tree), act.Audio("logo.wav")), "kk-KZ")
    russian = act.Prompt((act.Text("Здравствуйте."),))
    out = await localised([russian, kazakh, act.Hangup("contained")], FLOW, prompts)
    assert out[0] == russian and out[2] == act.Hangup("contained")  # Twilio says Russian
    said = out[1]
    assert isinstance(said, act.Prompt) and said.language == "kk-KZ"
    first, logo = said.parts
    assert logo == act.Audio("logo.wav")
    assert isinstance(first, act.Audio) and first.file.startswith("tts/")
    # espeak-ng gets the words: tags it would read out are not sent
    assert tts.asked == [("Сәлеметсіз бе. Мысал банк.", "kk-KZ", None)]
    assert (await prompts.wav_file(first.file)).is_file()
    # made once: the next call's same prompt is the same file, not spoken again
    again = await localised([kazakh], FLOW, prompts)
    assert again == [said] and len(tts.asked) == 1
    with pytest.raises(PromptError):
        prompts.spoken_file("tts/../../etc/passwd")


class Mute:
    name = "mute"

    def synthesise(self, text: str, language: str, voice: str | None) -> object:
        raise TTSError("no voice for kk")


async def test_when_the_tts_fails_twilio_stand_in_reads_it(tmp_path: Path) -> None:
    prompts = PromptAudio(tmp_path, tmp_path / "cache", Mute())  # type: ignore[arg-type]
    kazakh = act.Prompt((act.Text("Сәлем."),), "kk-KZ")
    assert await localised([kazakh], FLOW, prompts) == [kazakh]
