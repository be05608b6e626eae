"""An outbound call (placed through Twilio's API, as a campaign places them) is recorded
`outbound` by the running server, and `ivr report` keeps it out of inbound containment:
over HTTP, signed as Twilio signs, records in SQLite."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ivr.cli import main
from tests.functional.conftest import BANK, CALLER, MakeServer
from tests.functional.test_report import written


async def test_outbound_calls_are_counted_apart(
    make_server: MakeServer, backend: object, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await make_server()
    async with server.twilio() as sim:
        served = sim.new_call(BANK, CALLER)  # inbound: the balance, then goodbye
        await served.start()
        for keys in ("1", "12345674#", "2"):
            await served.press(keys)
        left = await sim.start(BANK, CALLER)  # inbound: hangs up at the menu
        await left.hangup()
        for _ in range(2):  # a campaign's calls: the callee hears the balance, goodbye
            reminder = sim.new_call(BANK, CALLER)
            reminder.direction = "outbound-api"
            await reminder.start()
            for keys in ("1", "12345674#", "2"):
                await reminder.press(keys)
    url = f"sqlite://{server.config.records_path}"
    await written(url, 4)

    def report(*more: str) -> dict[str, Any]:
        assert main(["report", "--records", url, "--json", *more]) == 0
        found: dict[str, Any] = json.loads(capsys.readouterr().out)
        return found

    inbound = await asyncio.to_thread(report)
    assert (inbound["calls"], inbound["containment"]["calls"]) == (2, 1)
    assert {d: v["calls"] for d, v in inbound["directions"].items()} == {
        "inbound": 2,
        "outbound": 2,
    }
    outbound = await asyncio.to_thread(report, "--direction", "outbound")
    assert (outbound["calls"], outbound["containment"]["calls"]) == (2, 2)
