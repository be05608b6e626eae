"""Containment by channel after a known mix of voice calls and SMS and WhatsApp
conversations through the running server (signed as Twilio signs them): `ivr report`'s
exact figures per channel, and `--channel` for a text channel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ivr.server import TEXTS
from tests.functional.conftest import BANK, OPEN, Backend, MakeServer
from tests.functional.test_report import report, written

SHOP = "+15550110"
CUSTOMER = "+15557770002"


async def test_containment_by_channel_of_a_known_mix(
    make_server: MakeServer,
    flows_dir: Path,
    backend: Backend,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVR_FLOWS", str(flows_dir))
    server = await make_server()
    server.set_hours(OPEN)
    async with server.twilio() as sim:
        # voice: a balance heard (contained), a zero-out then the survey (transferred)
        served = await sim.start(BANK, "+15557770010")
        for keys in ("1", "12345674#", "2"):
            await served.press(keys)
        agent = await sim.start(BANK, "+15557770011")
        for keys in ("0", "5"):
            await agent.press(keys)
        # sms: an order's status (contained); a balance asked by message (transferred:
        # the account number is asked on voice only)
        assert (await sim.text(SHOP, CUSTOMER, "hi"))[-1].startswith("Please send")
        assert (await sim.text(SHOP, CUSTOMER, "123456"))[0].startswith("Order 123456")
        await sim.text(SHOP, CUSTOMER, "that's all")
        refused = await sim.text(BANK, CUSTOMER, "balance")
        assert refused[-1].endswith("Please call us at +15550100.")
        # whatsapp: a customer who never answers the question (abandoned when idle)
        await sim.text(SHOP, f"whatsapp:{CUSTOMER}", "hello")
        assert await server.app[TEXTS].expire(time.time() + 3600) == 1
    url = f"sqlite://{server.config.records_path}"
    await written(url, 5)

    found = await report(url, capsys=capsys)
    counts = {
        name: tuple(c[k] for k in ("calls", "contained", "transferred", "abandoned", "failed"))
        for name, c in found["channels"].items()
    }
    assert counts == {
        "voice": (2, 1, 1, 0, 0),
        "sms": (2, 1, 1, 0, 0),
        "whatsapp": (1, 0, 0, 1, 0),
        "chat": (0, 0, 0, 0, 0),
    }
    assert [found["channels"][c]["containment"] for c in ("voice", "sms", "whatsapp")] == [
        0.5,
        0.5,
        0.0,
    ]
    assert found["channels"]["chat"]["containment"] is None

    sms = await report(url, "--channel", "sms", capsys=capsys)
    assert (sms["calls"], sms["containment"]["calls"], sms["filters"]["channel"]) == (2, 1, "sms")
    assert sms["transfers"]["by_reason"]["channel"]["calls"] == 1  # told to call
    assert sms["tasks"] == {"order_status": {"calls": 1, "rate": 0.5}}
    assert set(sms["funnel"]) == {"order_status", "telebanking"}
