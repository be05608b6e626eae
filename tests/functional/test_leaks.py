"""Nothing leaks (issue 14): full calls enter account numbers by keys and by voice (a wrong
one too) from two callers, end, and the server is killed; then every byte the service
wrote (its log at DEBUG, the data directory with its WAL files, the metrics, `ivr
report`, `ivr calls list`) is searched for the account numbers and the callers' numbers.
The values are 8 digits or more, so a match is never a timestamp by chance."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.functional.conftest import BANK, Backend
from tests.functional.processes import IVR, Ivr, server_env, twilio

CALLERS = ("+15557654321", "+15559876543")
BY_KEYS, BY_VOICE, WRONG = "12345674", "22222228", "98765432"  # WRONG fails the Luhn check


def secrets() -> list[str]:
    return [BY_KEYS, BY_VOICE, WRONG, *(c.lstrip("+") for c in CALLERS)]


async def test_no_account_or_caller_number_in_anything_written(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("one")
    env = server_env(backend) | {"IVR_LOG_LEVEL": "DEBUG"}
    await server.start(flows_dir, server.url, env)
    sim = twilio(server.url, server.url)
    try:
        keyed = await sim.start(BANK, CALLERS[0])
        await keyed.press("1")
        await keyed.press(WRONG + "#")  # no match: said again
        assert "Your balance is $1,234.50." in await keyed.press(BY_KEYS + "#")
        await keyed.press("2")  # goodbye
        # telebanking's account entry is keys only (sensitive): the voice variant, opted in
        # to Twilio's recogniser (cloud_speech), takes it spoken
        spoken = await sim.start(
            BANK, CALLERS[1], voice_path="/twilio/voice?flow=telebanking_voice"
        )
        await spoken.say("balance")
        heard = await spoken.say(" ".join(BY_VOICE))  # "2 2 2 2 2 2 2 8", as Twilio hears it
        assert "Your balance is $310.00." in heard
        await spoken.hangup()
        async with aiohttp.ClientSession() as http:
            async with http.get(server.admin_url + "/metrics") as response:
                metrics = await response.text()
    finally:
        await sim.session.close()
    assert "balance_inquiry" in metrics  # the calls went where they should
    assert await server.kill(signal.SIGKILL) == -signal.SIGKILL  # no clean stop to tidy up

    tools = os.environ | {"IVR_DATA": str(server.data)}
    report = [
        subprocess.run([str(IVR), *args], env=tools, capture_output=True, text=True, check=True)
        for args in (["report", "--json"], ["calls", "list"], ["report"])
    ]
    written = {str(path): path.read_bytes() for path in server.data.rglob("*") if path.is_file()}
    assert any(name.endswith("-wal") for name in written)  # WAL files were written, and read
    written["log"] = server.log.read_bytes()
    written["metrics"] = metrics.encode()
    written |= {f"ivr {r.args[1:]}": (r.stdout + r.stderr).encode() for r in report}
    for value in secrets():
        leaks = [name for name, data in written.items() if value.encode() in data]
        assert not leaks, f"{value} in {leaks}"
