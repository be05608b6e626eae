"""Call records over HTTP: one final outcome per call, at its status callback or from the
reaper when none comes; late signals update the record and never count twice."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ivr.server import HOOKS, KEYS
from tests.functional.conftest import BANK, CALLER, OPEN, MakeServer, Server, metric
from tests.functional.twilio_sim import TwilioSim, wait_until

ACCOUNT = "12345674"


def rollup_calls(server: Server) -> list[tuple[str, str, int, int]]:
    """(outcome, reason, resolved, calls) from the hourly rollup of the records database."""
    with sqlite3.connect(server.config.records_path) as db:
        rows = db.execute(
            "SELECT outcome, reason, resolved, SUM(calls) FROM hour_calls"
            " GROUP BY outcome, reason, resolved ORDER BY outcome"
        )
        return [tuple(r) for r in rows]


async def test_a_call_without_status_callback_is_closed_by_the_reaper(
    make_server: MakeServer,
) -> None:
    server = await make_server(reap_after=0.3)
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        await call.press("1")
        await call.press(ACCOUNT + "#")  # heard the balance, then the line went dead
    record = await server.record(call.sid)  # no status callback was sent
    assert (record.outcome, record.status) == ("abandoned", "unknown")
    assert record.after_task and record.resolved  # a success: the balance was heard
    assert record.last_node == "anything_else"
    assert record.duration < 60  # ended at its last webhook, not when the reaper came
    assert rollup_calls(server) == [("abandoned", "", 1, 1)]


async def test_the_reaper_leaves_calls_in_progress_alone(sim: TwilioSim, server: Server) -> None:
    server.set_hours(OPEN)
    call = await sim.start(BANK, CALLER)
    hooks = server.app[HOOKS]
    assert await hooks.reap(before=call._started - 3600) == 0  # heard of since
    await call.press("0")  # a zero-out: the agent, then the survey
    await call.press("5")  # the survey answered: goodbye, then the status callback
    assert await hooks.reap(before=call._started + 3600) == 0  # ended: nothing to close
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "global",
        "agent",
    )


async def test_late_signals_update_the_record_and_count_once(
    sim: TwilioSim, server: Server
) -> None:
    server.set_hours(OPEN)
    call = sim.new_call(BANK, CALLER)
    call.dial_status = "no-answer"
    await call.start()
    await call.press("0")  # transfer; the agent does not answer: a callback is offered
    await call.press("2")  # no thanks: goodbye; then the status callback
    assert call.status_sent is not None
    await call.send(call.status_request)  # Twilio retries the status callback
    await call.send(call.status_request)

    async def final() -> object:
        record = await server.record(call.sid)
        return record if record.status == "completed" else None

    record = await wait_until(final)
    assert (record.outcome, record.transfer_result) == ("transferred", "no-answer")
    assert rollup_calls(server) == [("transferred", "global", 0, 1)]


@pytest.mark.parametrize("sessions", [None, "memory://"])  # SQLite, memory
async def test_a_session_goes_once_the_record_is_final_and_a_retry_counts_nothing(
    sim: TwilioSim, server: Server
) -> None:
    hooks = server.app[HOOKS]
    call = await sim.start(BANK, CALLER)
    await call.press("1")
    await call.hangup()  # the status callback: abandoned, final

    async def gone() -> bool:
        return await hooks.sessions.load(call.sid) is None

    await wait_until(gone)  # not kept for ENDED_TTL (an hour: the soak's sessions grew)
    assert call.status_request is not None
    assert (await call.send(call.status_request)).status == 200  # a retry, after that
    assert await hooks.sessions.load(call.sid) is None
    assert metric(await server.metrics(), "ivr_calls_ended_total") == 1
    await server.stop()  # queued records are written
    record = await server.record(call.sid)
    assert (record.outcome, record.status) == ("abandoned", "completed")
    assert rollup_calls(server) == [("abandoned", "", 0, 1)]  # once


async def test_the_record_keeps_a_masked_transcript(sim: TwilioSim, server: Server) -> None:
    call = await sim.start(BANK, CALLER)
    await call.say("pizza", 0.4)
    await call.press("1")
    await call.press(ACCOUNT + "#")
    await call.press("2")
    record = await server.record(call.sid)
    transcript = json.loads(server.app[KEYS].open(record.transcript) or "")
    lines = [line[1:] for line in transcript]
    assert lines[:4] == [
        ["welcome", "say"],
        ["main", "prompt"],
        ["main", "speech", "no_match", "pizza", 0.4],
        ["main", "no_match:2"],
    ]
    assert ["ask_account", "dtmf", "match", "****"] in lines  # the account: masked
    assert ["lookup", "fetch", 200] in lines
    assert ACCOUNT not in json.dumps(transcript)
