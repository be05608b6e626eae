"""`ivr serve --demo` as a first run: the example flows reach the demo bank in-process."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from ivr import demo
from tests.conftest import free_port
from tests.functional.conftest import BANK, CALLER, REPO, TOKEN
from tests.functional.twilio_sim import TwilioSim

START_WAIT = 30.0  # seconds for the server to answer /healthz
STOP_WAIT = 15.0


def demo_ports_free() -> bool:
    for port in (demo.BANK_PORT, demo.SHOP_PORT):
        with socket.socket() as probe:
            try:
                probe.bind((demo.HOST, port))
            except OSError:
                return False
    return True


async def healthy(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + START_WAIT
    async with aiohttp.ClientSession() as http:
        while process.returncode is None:
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline, f"not ready in {START_WAIT:g} s\n{log.read_text()}"
            await asyncio.sleep(0.05)
    raise AssertionError(f"ivr serve exited: {process.returncode}\n{log.read_text()}")


@pytest.mark.skipif(not demo_ports_free(), reason="the demo's ports 8098/8099 are in use here")
async def test_a_first_run_tells_a_balance(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "ivr.log"
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env["TWILIO_AUTH_TOKEN"] = TOKEN  # and no IVR_HTTP_ALLOW: --demo allows its own hosts
    command = [sys.executable, "-m", "ivr", "serve", "--demo", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--public-url", url, "--data", str(tmp_path)]
    command += ["--flows", str(REPO / "flows"), "--audio", str(tmp_path), "--no-watch"]
    command += ["--admin", f"127.0.0.1:{free_port()}"]  # 8081 may be another server's
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL
        )
    try:
        await healthy(url, process, log)
        async with TwilioSim(url, TOKEN) as sim:
            # the repository's flows split the bank's callers: this one dials the keypad menu
            call = await sim.start(BANK, CALLER, voice_path="/twilio/voice?variant=telebanking")
            await call.press("1")
            heard = await call.press("12345674#")
        assert heard[0] == "Your balance is $1,234.50.", log.read_text()
        assert "demo bank API on http://127.0.0.1:8099: try accounts 12345674, " in (
            log.read_text()
        )
    finally:
        if process.returncode is None:
            process.terminate()
        code = await asyncio.wait_for(process.wait(), STOP_WAIT)
    assert code == 0, log.read_text()
    assert demo_ports_free()  # the demo stopped with the server
