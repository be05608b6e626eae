"""A flow in several languages over the webhooks (flows/bank_ru_kk.yaml): Russian is said
by Twilio's Russian voice, with its inline SSML; Kazakh, which Twilio has no voice for,
is spoken here by espeak-ng and played from /audio. The real app on loopback, driven by
signed requests, and the audio fetched as Twilio fetches it."""

from __future__ import annotations

import io
import wave
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from tests import tts
from tests.functional.conftest import CALLER, Server
from tests.functional.twilio_sim import TwilioSim

RUSSIAN_LINE, KAZAKH_LINE = "+77270000001", "+77170000002"


def spoken(element: ET.Element) -> list[tuple[str, str | None, str | None]]:
    """(verb, voice, language) of each <Say> and <Play> in `element`."""
    return [(v.tag, v.get("voice"), v.get("language")) for v in element if v.tag in ("Say", "Play")]


async def fetch_audio(sim: TwilioSim, url: str) -> wave.Wave_read:
    async with sim.session.get(sim.base_url + urlsplit(url).path) as response:
        assert response.status == 200, url
        assert response.headers["Content-Type"] == "audio/wav"
        return wave.open(io.BytesIO(await response.read()))


async def test_russian_by_twilio_kazakh_played_from_here(sim: TwilioSim, server: Server) -> None:
    tts.espeak()
    call = await sim.start(RUSSIAN_LINE, CALLER)
    gather = call.gather
    assert gather.get("language") == "ru-RU"
    (say,) = gather.findall("Say")
    assert (say.get("voice"), say.get("language")) == ("Polly.Tatyana", "ru-RU")
    # the inline <break> is SSML for Twilio's voice, not text read aloud
    assert [(e.tag, e.get("time")) for e in say] == [("break", "300ms")]
    assert "".join(say.itertext()) == "Для русского языка нажмите 1.  Қазақ тілі үшін 2 басыңыз."

    await call.press("2")  # Kazakh
    gather = call.gather
    assert gather.get("language") == "kk-KZ"
    assert gather.get("hints") == "баланс, оператор, операторға"
    assert spoken(gather) == [("Play", None, None), ("Play", None, None)]
    for url in call.last:
        assert urlsplit(url).path.startswith("/audio/tts/")
        with await fetch_audio(sim, url) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (
                8000,
                1,
                2,
            )
            assert audio.getnframes() > 8000 * 0.5  # a sentence, not silence
    await call.press("0")
    assert call.transfer is not None and call.transfer.tag == "Dial"
    # "Операторға қосып жатырмын." before the <Dial>: played too
    assert [urlsplit(u).path[:11] for u in call.last] == ["/audio/tts/"]


async def test_the_kazakh_line_and_the_russian_choice(sim: TwilioSim, server: Server) -> None:
    tts.espeak()
    kazakh = await sim.start(KAZAKH_LINE, CALLER)
    assert kazakh.gather.get("language") == "kk-KZ"
    assert [urlsplit(u).path[:11] for u in kazakh.last] == ["/audio/tts/", "/audio/tts/"]

    russian = await sim.start(RUSSIAN_LINE, CALLER)
    await russian.press("1")
    gather = russian.gather
    assert gather.get("language") == "ru-RU"
    assert spoken(gather) == [("Say", "Polly.Tatyana", "ru-RU")] * 2
    welcome = gather.find("Say")
    assert welcome is not None and [e.tag for e in welcome] == ["emphasis"]
    assert russian.last[1].startswith("Чтобы узнать баланс")


async def test_audio_not_spoken_here_is_not_found(sim: TwilioSim, server: Server) -> None:
    for path in ("/audio/tts/" + "0" * 32 + ".wav", "/audio/tts/../flows/bank_ru_kk.yaml"):
        status, _ = await sim.get(path)
        assert status == 404, path
