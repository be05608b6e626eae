"""Message node benchmark: what sending an SMS costs a turn, through the twilio library's
client and aiohttp, against the fake Twilio API on loopback (tests/twilio_api.py).

Three figures, each the median of N sends: the REST client alone (`send_message`), a
whole turn that reaches a `message` node (the runner: engine step, send, step on), and
the same turn with the messages kept by an `Outbox` (no HTTP): the difference is what
the request costs. The fake answers at once; Twilio's own time comes on top.

Run: .venv/bin/python bench/message.py [--sends 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.backend import Backend  # noqa: E402
from ivr.engine import new_session, step  # noqa: E402
from ivr.engine.events import CallStarted, Digits  # noqa: E402
from ivr.flow import parse_and_compile  # noqa: E402
from ivr.runner import Messenger, Outbox, Runner  # noqa: E402
from ivr.telephony.rest import TwilioRest  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.twilio_api import ACCOUNT, AUTH_TOKEN, TwilioApi  # noqa: E402

FLOW = """
flow: texting
start: ask
nodes:
  ask:
    ask: {prompt: "Your order?", digits: {min: 6, max: 6}, save_as: order}
    next: send
  send:
    message: {text: "Order {{ order }}: https://shop.example/t/{{ order }}"}
    resolves: link_sent
    next: bye
  bye: {end: {say: "Sent."}}
"""


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.2f} ms, p90 " + (
        f"{statistics.quantiles(samples, n=10)[-1] * 1000:.2f} ms"
    )


async def turns(messenger: Messenger, sends: int) -> list[float]:
    flow = parse_and_compile(FLOW, "texting.yaml")
    runner = Runner(Backend(), messenger=messenger)
    took = []
    for i in range(sends):
        session = new_session(flow, f"CA{i:032x}")
        session, _ = step(flow, session, CallStarted("+15557654321", "+15550110", at=0.0))
        started = time.perf_counter()
        turn = await runner.run(flow, session, Digits("123456", at=1.0))
        took.append(time.perf_counter() - started)
        assert turn.session.tasks == ["link_sent"], turn.session.transcript
    return took


async def main(sends: int) -> None:
    api = TwilioApi()
    site = web.AppRunner(api.app(), access_log=None)
    await site.setup()
    port = free_port()
    await web.TCPSite(site, "127.0.0.1", port).start()
    rest = TwilioRest(ACCOUNT, AUTH_TOKEN, base_url=f"http://127.0.0.1:{port}")
    try:
        await rest.send_message("+15557654321", "warm-up", "+15550110")  # the connection
        alone = []
        for _ in range(sends):
            started = time.perf_counter()
            sent = await rest.send_message("+15557654321", "Your code is 1234", "+15550110")
            alone.append(time.perf_counter() - started)
            assert sent.ok, sent
        through = await turns(rest, sends)
        kept = await turns(Outbox(), sends)
    finally:
        await rest.close()
        await site.cleanup()
    print(f"{sends} sends to the fake API on loopback (the fake's own time included)")
    print(f"  send_message alone:            {ms(alone)}")
    print(f"  turn to a message node (HTTP): {ms(through)}")
    print(f"  turn to a message node (kept): {ms(kept)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=500)
    asyncio.run(main(parser.parse_args().sends))
