"""The pure core imports no I/O library: a fresh interpreter imports it and lists its modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = (
    "aiohttp",
    "vosk",
    "prometheus_client",
    "sqlite3",
    "_sqlite3",
    "redis",
    "twilio",
    "numpy",  # stream audio (ivr.speech.audio): the engine never sees audio
    "webrtcvad",
)
PURE = ("ivr.flow", "ivr.engine", "ivr.engine.actions", "ivr.engine.events", "ivr.speech.intent")
# campaigns' decisions: the file, the windows, the statuses, the SMS keywords
PURE += ("ivr.notify.callees", "ivr.notify.windows", "ivr.notify.attempts", "ivr.notify.optout")


def modules_after_importing(*names: str) -> set[str]:
    code = "import sys\n" + "".join(f"import {n}\n" for n in names)
    code += "print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_the_probe_sees_what_is_imported():
    assert "sqlite3" in modules_after_importing("sqlite3")


def test_core_imports_no_io_library():
    loaded = modules_after_importing(*PURE)
    assert set(PURE) <= loaded
    assert sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN) == []


@pytest.mark.parametrize("name", PURE)
def test_each_core_module_alone(name):
    loaded = modules_after_importing(name)
    assert sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN) == []
