"""Call records from two servers into one PostgreSQL database: the calls of both are kept,
and a call whose webhooks reach both servers is written by both and counted once."""

from __future__ import annotations

import psycopg

from ivr.server import FLOWS
from tests.functional.conftest import BANK, CALLER, OPEN, TOKEN, MakeServer, read_records
from tests.functional.twilio_sim import TwilioSim

PUBLIC = "https://ivr.example.test"  # both servers behind one load balancer
ACCOUNT = "12345674"


async def test_two_servers_write_calls_into_one_database(
    make_server: MakeServer, postgres_url: str, redis_url: str
) -> None:
    shared = {"records": postgres_url, "sessions": redis_url, "public_url": PUBLIC}
    a, b = await make_server(**shared), await make_server(**shared)
    a.set_hours(OPEN)  # both read the same flow files: the agents are in
    assert b.app[FLOWS].reload() == ["telebanking"]
    async with TwilioSim(a.url, TOKEN, PUBLIC) as sim:
        # the flow ends on a (a writes the record); the dial result and the status callback
        # reach b, which writes the same call twice more, racing a's writer
        transfer = sim.new_call(BANK, CALLER)
        transfer.dial_status = "no-answer"
        await transfer.start()
        request = transfer.gather_request(keys="0")
        reply = await transfer.send(request, a.url)
        transfer.base_url = b.url
        await transfer.follow(request, reply)  # no answer: b offers a callback
        await transfer.press("2")  # no thanks: the flow ends on b

        served = sim.new_call(BANK, CALLER)  # on b from start to end
        served.base_url = b.url
        await served.start()
        for keys in ("1", ACCOUNT + "#", "2"):
            await served.press(keys)

        left = await sim.start(BANK, CALLER)  # on a: hangs up at the menu
        await left.hangup()
    await a.stop()  # what the writers hold is written before these return
    await b.stop()

    records = {r.call_sid: r for r in await read_records(postgres_url)}
    assert {sid: r.outcome for sid, r in records.items()} == {
        transfer.sid: "transferred",
        served.sid: "contained",
        left.sid: "abandoned",
    }
    moved = records[transfer.sid]
    assert (moved.reason, moved.transfer_result, moved.status) == (
        "global",
        "no-answer",
        "completed",
    )
    with psycopg.connect(postgres_url) as db:
        counted = db.execute(
            "SELECT outcome, SUM(calls) FROM hour_calls GROUP BY outcome ORDER BY outcome"
        ).fetchall()
    assert counted == [("abandoned", 1), ("contained", 1), ("transferred", 1)]
