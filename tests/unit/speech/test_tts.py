"""Local text-to-speech: real espeak-ng, and Piper's command line through a stand-in binary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import Config
from ivr.errors import ConfigError
from ivr.speech.tts import EspeakTTS, PiperTTS, TTSError, from_setting
from tests import tts


@pytest.fixture(scope="session")
def espeak() -> EspeakTTS:
    return tts.espeak()


@pytest.mark.parametrize(
    ("language", "voice", "chosen"),
    [
        ("ko-KR", None, "ko"),
        ("en-US", None, "en-us"),
        ("en-GB", None, "en-gb"),
        ("pt-BR", None, "pt-br"),
        ("de-AT", None, "de"),  # no Austrian voice: the language's
        ("en-US", "Polly.Joanna", "en-us"),  # a Twilio voice: not espeak-ng's
        ("en-US", "en-us+f3", "en-us+f3"),  # an espeak-ng voice with a variant
        ("ko-KR", "en-gb", "en-gb"),
    ],
)
def test_the_voice_comes_from_the_flows_language_or_voice(
    espeak: EspeakTTS, language: str, voice: str | None, chosen: str
) -> None:
    assert espeak.voice_for(language, voice) == chosen


def test_espeak_speaks_korean_and_english(espeak: EspeakTTS) -> None:
    korean = espeak.synthesise("잔액은 12,345원입니다.", "ko-KR", None)
    english = espeak.synthesise("-5 is read, not taken for an option", "en-US", None)
    for pcm in (korean, english):
        assert pcm.rate == 22050
        assert 0.5 < len(pcm.data) / 2 / pcm.rate < 10  # seconds of speech


def test_korean_amounts_read_best_as_number_then_won(espeak: EspeakTTS) -> None:
    """Why the ko-KR `currency` writes "12,345원": espeak-ng reads it as Korean numerals and
    won, whereas "₩12,345" is read "won" in English before the number, and "-" is dropped."""

    def phonemes(text: str) -> str:
        command = ["espeak-ng", "-v", "ko", "-q", "--ipa", "--stdin"]
        return subprocess.run(command, input=text, capture_output=True, text=True).stdout

    assert phonemes("12,345원").split()[-1] == "wˈʌn"
    assert "(en)" in phonemes("₩12,345")
    assert phonemes("-12,345원") == phonemes("12,345원")
    assert phonemes("마이너스 12,345원") != phonemes("12,345원")


def test_a_language_espeak_does_not_have_is_an_error(espeak: EspeakTTS) -> None:
    with pytest.raises(TTSError, match="no voice for 'tlh-QO'"):
        espeak.synthesise("Qapla'", "tlh-QO", None)


def test_espeak_missing_says_how_to_install_it() -> None:
    with pytest.raises(TTSError, match="apt-get install -y espeak-ng"):
        EspeakTTS(binary="no-such-espeak-ng").synthesise("hello", "en-US", None)


# -- Piper: a stand-in `piper` that records its arguments and answers raw samples ------------

FAKE_PIPER = """#!{python}
import json, sys
text = sys.stdin.read()
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "text": text}}) + "\\n")
sys.stdout.buffer.write(b"\\x01\\x00" * 16000)
"""


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    model = tmp_path / "en_US-test-medium.onnx"
    model.write_bytes(b"not a real model")
    config = {"audio": {"sample_rate": 16000}, "language": {"code": "en_US"}}
    Path(f"{model}.json").write_text(json.dumps(config))
    return model


@pytest.fixture
def piper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `piper` on PATH that logs each run's arguments and text to the returned file."""
    bin_dir, log = tmp_path / "bin", tmp_path / "piper.log"
    bin_dir.mkdir()
    script = bin_dir / "piper"
    script.write_text(FAKE_PIPER.format(python=sys.executable, log=str(log)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    return log


def test_piper_runs_its_model_and_reads_raw_samples_at_the_models_rate(
    voice: Path, piper: Path
) -> None:
    engine = PiperTTS(voice)
    pcm = engine.synthesise("Your balance is\n$1,234.50.", "en-US", "3")
    assert (pcm.rate, len(pcm.data)) == (16000, 32000)
    (run,) = [json.loads(line) for line in piper.read_text().splitlines()]
    assert run == {
        "argv": ["--model", str(voice), "--output_raw", "--speaker", "3"],
        "text": "Your balance is $1,234.50.\n",  # one line: piper speaks lines apart
    }
    assert engine.name == "piper:en_US-test-medium.onnx"


def test_piper_leaves_other_languages_to_espeak(
    espeak: EspeakTTS, voice: Path, piper: Path
) -> None:
    pcm = PiperTTS(voice).synthesise("안녕하세요", "ko-KR", None)
    assert pcm.rate == 22050 and not piper.exists()  # espeak-ng's


def test_piper_missing_binary_or_model_is_an_error(
    voice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(TTSError, match="pip install piper-tts"):
        PiperTTS(voice).synthesise("hello", "en-US", None)
    with pytest.raises(TTSError, match="no Piper voice model at"):
        PiperTTS(tmp_path / "missing.onnx").synthesise("hello", "en-US", None)
    (tmp_path / "bare.onnx").write_bytes(b"")
    with pytest.raises(TTSError, match="no readable Piper voice config"):
        PiperTTS(tmp_path / "bare.onnx").synthesise("hello", "en-US", None)


def test_ivr_tts_names_the_engine(voice: Path) -> None:
    assert isinstance(from_setting("espeak"), EspeakTTS)
    engine = from_setting(f"piper:{voice}")
    assert isinstance(engine, PiperTTS) and engine.model == voice
    assert Config.from_env({"IVR_TTS": f"piper:{voice}"}).tts == f"piper:{voice}"
    assert Config.from_env({}).tts == "espeak"
    with pytest.raises(ConfigError, match="IVR_TTS: expected espeak or piper:"):
        Config.from_env({"IVR_TTS": "festival"})
    with pytest.raises(ConfigError, match="IVR_TTS: no Piper voice model at /no/such.onnx"):
        Config.from_env({"IVR_TTS": "piper:/no/such.onnx"})
