"""`ivr serve` as real processes: a call survives a SIGKILL, and two processes share calls
through Redis."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.functional.conftest import (
    BANK,
    CALLER,
    Backend,
    metric,
    read_records,
)
from tests.functional.processes import Ivr, server_env, twilio
from tests.functional.twilio_sim import TwilioSim, wait_until

ACCOUNT = "Please enter your eight digit account number, then press the pound key."
GOODBYE = "Thank you for calling Example Bank. Goodbye."


async def turns(sim: TwilioSim, base_urls: Sequence[str]) -> float:
    total = 0.0
    for url in base_urls:
        async with sim.session.get(url + "/metrics") as response:
            total += metric(await response.text(), "ivr_turns_total", flow="telebanking")
    return total


async def test_a_call_survives_a_crash(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("one")
    env = server_env(backend)  # sessions in SQLite under --data, the default
    await server.start(flows_dir, server.url, env)
    sim = twilio(server.url, server.url)
    try:
        call = await sim.start(BANK, CALLER)
        assert await call.press("1") == [ACCOUNT]
        assert "t=2" in call.gather.get("action", "")

        # a second call ends just before the crash: its record may be in the outbox only
        other = await sim.call(BANK, CALLER, ["press:1", "press:12345674#", "press:2"])
        assert other.end == "hangup"

        assert await server.kill(signal.SIGKILL) == -signal.SIGKILL
        await server.start(flows_dir, server.url, env)

        heard = await call.press("12345674#")  # turn 2 goes on where the call was
        assert heard[0] == "Your balance is $1,234.50."
        assert await call.press("2") == [GOODBYE]
        assert call.end == "hangup"
    finally:
        await sim.session.close()

    assert await server.kill(signal.SIGTERM) == 0
    assert '"level": "error"' not in server.logs
    assert "12345674" not in server.logs  # a sensitive answer is never logged
    assert call.sid in server.logs  # but every line of a call carries its SID

    records = {r.call_sid: r for r in await read_records(server.data / "calls.db")}
    assert set(records) == {call.sid, other.sid}  # no record lost
    record = records[call.sid]
    assert record.outcome == "contained"
    assert record.tasks == ("balance_inquiry",)
    assert record.path == (
        "welcome",
        "returning",  # a first-time caller: on to the menu
        "main",
        "ask_account",
        "lookup",
        "route",
        "balance",
        "anything_else",
        "goodbye",
    )
    assert records[other.sid].outcome == "contained"


async def test_sigterm_lets_the_turn_in_flight_finish(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("term")
    env = server_env(backend)
    await server.start(flows_dir, server.url, env)
    sim = twilio(server.url, server.url)
    try:
        call = await sim.start(BANK, CALLER)
        await call.press("1")
        request = call.gather_request(keys="55555551#")  # the bank takes 0.3 s to answer
        in_flight = asyncio.create_task(call.send(request))

        async def at_the_bank() -> bool:
            return backend.seen == ["GET /accounts/55555551"]

        await wait_until(at_the_bank)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)  # while the turn waits on the bank
        reply = await in_flight
        assert reply.status == 200
        assert (await call.follow(request, reply))[0] == "Your balance is $80.00."
        assert await server.exited() == 0, server.logs

        await server.start(flows_dir, server.url, env)  # the finished turn was saved
        assert await call.press("2") == [GOODBYE]
    finally:
        await sim.session.close()
    assert await server.kill(signal.SIGTERM) == 0
    assert '"level": "error"' not in server.logs


async def test_two_processes_share_calls_through_redis(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend, redis_url: str
) -> None:
    a, b = processes("a"), processes("b")
    public = "https://ivr.example.test"  # both behind one load balancer
    env = server_env(backend, sessions=redis_url)
    await asyncio.gather(a.start(flows_dir, public, env), b.start(flows_dir, public, env))
    sim = twilio(a.url, public)
    try:
        call = sim.new_call(BANK, CALLER)
        call.base_url = a.url
        await call.start()
        assert call.last[0] == "Welcome to Example Bank."
        call.base_url = b.url
        assert await call.press("1") == [ACCOUNT]
        assert await turns(sim, [a.admin_url, b.admin_url]) == 2

        # the same webhook reaches both processes at once: one step, the same answer
        request = call.gather_request(keys="55555551#")  # a slow bank: a wide window
        replies = await asyncio.gather(call.send(request, a.url), call.send(request, b.url))
        assert replies[0].status == replies[1].status == 200
        assert replies[0].text == replies[1].text
        heard = await call.follow(request, replies[0])
        assert heard[0] == "Your balance is $80.00."
        assert backend.seen == ["GET /accounts/55555551"]  # the bank was asked once
        assert await turns(sim, [a.admin_url, b.admin_url]) == 3

        call.base_url = a.url
        assert await call.press("2") == [GOODBYE]
    finally:
        await sim.session.close()

    assert await a.kill(signal.SIGTERM) == 0
    assert await b.kill(signal.SIGTERM) == 0
    records = [r for s in (a, b) for r in await read_records(s.data / "calls.db")]
    assert [(r.call_sid, r.outcome) for r in records] == [(call.sid, "contained")]
    assert records[0].tasks == ("balance_inquiry",)


async def test_sighup_reloads_flows(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("hup")
    await server.start(flows_dir, server.url, server_env(backend))  # --no-watch: SIGHUP only
    sim = twilio(server.url, server.url)
    try:
        before = await versions(sim, server.url)
        old = await sim.start(BANK, CALLER)
        path = flows_dir / "telebanking.yaml"
        path.write_text(path.read_text().replace("Your balance is", "You have"))
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            return await versions(sim, server.url) != before

        await wait_until(reloaded)
        new = await sim.call(BANK, CALLER, ["press:1", "press:12345674#"])
        assert new.last[0] == "You have $1,234.50."
        await old.press("1")
        assert (await old.press("12345674#"))[0] == "Your balance is $1,234.50."
    finally:
        await sim.session.close()
    assert await server.kill(signal.SIGTERM) == 0


async def test_the_watcher_reloads_edits_and_refuses_broken_ones(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("watch")
    await server.start(flows_dir, server.url, server_env(backend), watch=True)
    sim = twilio(server.url, server.url)
    path = flows_dir / "telebanking.yaml"
    try:
        before = await versions(sim, server.url)
        old = await sim.start(BANK, CALLER)
        path.write_text(path.read_text().replace("Your balance is", "You have"))

        async def reloaded() -> dict[str, str] | None:
            now = await versions(sim, server.url)
            return now if now != before else None

        edited = await wait_until(reloaded)
        new = await sim.call(BANK, CALLER, ["press:1", "press:12345674#"])
        assert new.last[0] == "You have $1,234.50."
        await old.press("1")
        assert (await old.press("12345674#"))[0] == "Your balance is $1,234.50."

        path.write_text(path.read_text().replace("nodes:\n", "nodes:\n  welcome: [unclosed\n"))

        async def refused() -> bool:
            return f"still serving version {edited['telebanking']}" in server.logs

        await wait_until(refused)
        assert re.search(r"telebanking\.yaml:\d+:\d+", server.logs), server.logs  # file:line:col
        assert await versions(sim, server.url) == edited
        third = await sim.call(BANK, CALLER, ["press:1", "press:12345674#"])
        assert third.last[0] == "You have $1,234.50."
    finally:
        await sim.session.close()
    assert await server.kill(signal.SIGTERM) == 0


async def versions(sim: TwilioSim, base_url: str) -> dict[str, str]:
    async with sim.session.get(base_url + "/healthz") as response:
        return dict((await response.json())["flows"])
