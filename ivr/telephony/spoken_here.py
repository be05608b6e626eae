"""Prompts in a language Twilio has no voice for (Kazakh): spoken here, played by Twilio.

Twilio's `<Say>` would read a Kazakh prompt in a Russian stand-in voice; a caller who
chose Kazakh should hear Kazakh. So before a turn's TwiML is written, the text of such
prompts is spoken by this server's TTS (espeak-ng has a `kk` voice) into the prompt
cache and becomes `<Play>` of `/audio/tts/HASH.wav`. Inline SSML is not sent to the local
TTS: it reads the prompt's words (`Text.text`). Static prompts are made when the flow
loads (`PromptAudio.warm`), so a turn only speaks what its templates rendered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ivr.engine import actions as act
from ivr.flow.model import Flow, Part
from ivr.speech.prompts import PromptAudio
from ivr.speech.tts import TTSError
from ivr.telephony.voices import is_twilio_voice, twilio_speaks

log = logging.getLogger("ivr.prompts")


def spoken_here(flow: Flow, language: str) -> bool:
    """Whether `flow`'s prompts in `language` are spoken by this server, not by Twilio."""
    own = language == flow.language
    return not twilio_speaks(language, flow.voice if own else None)


async def localised(
    actions: Sequence[act.Action], flow: Flow | None, prompts: PromptAudio
) -> list[act.Action]:
    """`actions` with the text of prompts spoken here turned into recordings to play.
    When the TTS cannot speak it, the prompt is left to Twilio's stand-in voice."""
    out = list(actions)
    if flow is None:
        return out
    for i, action in enumerate(out):
        if isinstance(action, act.Prompt):
            language = action.language or flow.language
            if spoken_here(flow, language) and any(isinstance(p, act.Text) for p in action.parts):
                out[i] = await _played(action, flow, language, prompts)
    return out


async def _played(
    prompt: act.Prompt, flow: Flow, language: str, prompts: PromptAudio
) -> act.Prompt:
    own = language == flow.language and flow.voice and not is_twilio_voice(flow.voice)
    voice = flow.voice if own else None  # an espeak-ng voice the flow names (`kk+f3`)
    parts: list[Part] = []
    try:
        for part in prompt.parts:
            if isinstance(part, act.Audio):
                parts.append(part)
                continue
            name = await prompts.spoken_name(part.text, language, voice)
            if name is not None:
                parts.append(act.Audio(name))
    except TTSError as e:
        log.error("%s prompt not spoken here (Twilio's stand-in voice reads it): %s", language, e)
        return prompt
    return act.Prompt(tuple(parts), prompt.language)
