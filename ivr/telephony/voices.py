"""Which Twilio voice speaks a flow's prompts, and in which `<Say language>`. Pure.

Twilio's default `<Say>` voice speaks few languages: a Korean or Russian prompt
without a voice fails (the caller hears nothing), and a voice speaks only its own
language. So a flow that names no Twilio voice gets one that matches its
language, and `<Say language>` is always the voice's own.
"""

from __future__ import annotations

from functools import lru_cache

# Amazon Polly standard voices Twilio supports (`Polly.<Name>`), one per language tag
DEFAULT_VOICES: dict[str, str] = {
    "en-US": "Polly.Joanna",
    "en-GB": "Polly.Amy",
    "en-AU": "Polly.Nicole",
    "en-IN": "Polly.Raveena",
    "ko-KR": "Polly.Seoyeon",
    "ru-RU": "Polly.Tatyana",
    "de-DE": "Polly.Marlene",
    "fr-FR": "Polly.Celine",
    "fr-CA": "Polly.Chantal",
    "es-ES": "Polly.Conchita",
    "es-US": "Polly.Penelope",
    "es-MX": "Polly.Mia",
    "it-IT": "Polly.Carla",
    "pt-BR": "Polly.Vitoria",
    "pt-PT": "Polly.Ines",
    "nl-NL": "Polly.Lotte",
    "pl-PL": "Polly.Ewa",
    "tr-TR": "Polly.Filiz",
    "ja-JP": "Polly.Mizuki",
    "cmn-CN": "Polly.Zhiyu",
    "ar-AE": "Polly.Zeina",
}
# a language with no voice of its own is read by a voice that callers of it understand:
# Twilio has no Kazakh voice, and Kazakh is written in the Cyrillic script most Kazakh
# callers also read in Russian
SPOKEN_AS: dict[str, str] = {
    "kk": "ru-RU",
    "en": "en-US",
    "ko": "ko-KR",
    "ru": "ru-RU",
    "de": "de-DE",
    "fr": "fr-FR",
    "es": "es-ES",
    "it": "it-IT",
    "pt": "pt-BR",
    "nl": "nl-NL",
    "pl": "pl-PL",
    "tr": "tr-TR",
    "ja": "ja-JP",
    "zh": "cmn-CN",
    "ar": "ar-AE",
}
# what Twilio's `<Say voice>` takes: its legacy voices, or a Polly or Google voice
_LEGACY = ("man", "woman", "alice")
_PREFIXES = ("Polly.", "Google.")


def is_twilio_voice(name: str) -> bool:
    """Whether `name` is a voice Twilio's `<Say>` knows (not an espeak-ng voice such as
    `ko` or `en-us+f3`, which the Media Streams path speaks with)."""
    return name in _LEGACY or name.startswith(_PREFIXES)


@lru_cache(maxsize=256)
def speaker(language: str, voice: str | None) -> tuple[str | None, str]:
    """The `<Say>` voice and language for prompts in `language`: the flow's own Twilio
    voice when it names one; else the language's default voice (or that of a language
    its callers understand, in that voice's language); else no voice, in `language`."""
    if voice and is_twilio_voice(voice):
        return voice, language
    tag = language if language in DEFAULT_VOICES else SPOKEN_AS.get(_primary(language))
    if tag is None or tag not in DEFAULT_VOICES:
        return None, language
    return DEFAULT_VOICES[tag], tag


def twilio_speaks(language: str, voice: str | None = None) -> bool:
    """Whether Twilio says `language` in a voice of that language (the flow's own Twilio
    voice, or the language's default), not in a stand-in of another (Kazakh in Russian)."""
    name, tag = speaker(language, voice)
    if name is None:
        return False
    return is_twilio_voice(voice or "") or _primary(tag) == _primary(language)


def _primary(language: str) -> str:
    return language.replace("_", "-").split("-", 1)[0].lower()
