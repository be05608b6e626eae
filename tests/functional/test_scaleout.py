"""Two `ivr serve` processes behind a real nginx, sharing Redis sessions and PostgreSQL
records: one is killed while calls run through the balancer, and every call goes on."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.functional.balancer import Nginx
from tests.functional.conftest import BANK, SLOW, Backend, read_records
from tests.functional.processes import Ivr, server_env, twilio
from tests.functional.twilio_sim import Call, TwilioSim, wait_until

CALLS = 20
SLOW_ACCOUNT = "55555551"  # its lookup is slowed: webhooks are in flight when one dies
AT_THE_KILL = 6  # slow lookups under way when a process is killed: some of them on it
GOODBYE = "Thank you for calling Example Bank. Goodbye."
PATH = (
    "welcome returning main ask_account lookup route balance anything_else main ask_account"
    " lookup route transactions anything_else goodbye"
).split()
DEADLINE = 180.0  # a bound on the whole run, not a measure of it


async def bank_call(sim: TwilioSim, caller: str) -> Call:
    """Seven turns: a balance (on the slow account), the menu again, transactions, done."""
    call = await sim.start(BANK, caller)
    assert call.last == ["Welcome to Example Bank.", call.last[1]], call.heard
    await call.press("1")
    assert (await call.press(SLOW_ACCOUNT + "#"))[0] == "Your balance is $80.00.", call.heard
    await call.press("1")
    await call.press("3")
    heard = await call.press("22222228#")
    assert heard[0].startswith("Your last transactions: $12.00 at Corner Coffee."), call.heard
    assert await call.press("2") == [GOODBYE], call.heard
    assert call.end == "hangup"
    return call


async def test_calls_go_on_when_a_process_behind_nginx_dies(
    processes: Callable[[str], Ivr],
    flows_dir: Path,
    backend: Backend,
    redis_url: str,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(SLOW, SLOW_ACCOUNT, 1.0)  # under the flow's 2 s timeout
    a, b = processes("a"), processes("b")
    nginx = Nginx(tmp_path / "nginx", [a.port, b.port])
    # Twilio signs the balancer's URL: both processes check signatures against it
    env = server_env(backend, sessions=redis_url) | {"IVR_RECORDS": postgres_url}
    sim = twilio(nginx.url, nginx.url)
    try:
        await asyncio.gather(a.start(flows_dir, nginx.url, env), b.start(flows_dir, nginx.url, env))
        await nginx.start()  # after them: a process it finds down is left out a while

        async def at_the_bank() -> bool:
            return backend.seen.count(f"GET /accounts/{SLOW_ACCOUNT}") >= AT_THE_KILL

        callers = [f"+1555700{i:04d}" for i in range(CALLS)]
        run = asyncio.gather(*(bank_call(sim, caller) for caller in callers))
        calls = asyncio.ensure_future(asyncio.wait_for(run, DEADLINE))
        watch = asyncio.ensure_future(wait_until(at_the_bank, timeout=DEADLINE))
        await asyncio.wait({calls, watch}, return_when=asyncio.FIRST_COMPLETED)
        if calls.done():  # a call failed before the kill
            watch.cancel()
            await calls
        await watch
        assert await a.kill(signal.SIGKILL) == -signal.SIGKILL
        done = await calls
        retried = nginx.retried()
        print(f"{len(done)} calls, 1 process killed, {retried} webhooks passed on by nginx")
        assert retried >= 1, nginx.logs  # some webhooks were in flight at the kill
    finally:
        await sim.session.close()
        await nginx.stop()
    assert await b.kill(signal.SIGTERM) == 0
    assert '"level": "error"' not in b.logs, b.logs

    records = await read_records(postgres_url)
    assert sorted(r.call_sid for r in records) == sorted(c.sid for c in done)  # once each
    for record in records:
        assert record.outcome == "contained", record
        assert record.tasks == ("balance_inquiry", "transactions"), record
        assert record.path == tuple(PATH), record


async def test_behind_nginx_the_forwarded_host_is_the_signed_one(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend, tmp_path: Path
) -> None:
    server = processes("proxied")
    nginx = Nginx(tmp_path / "nginx", [server.port])
    env = server_env(backend) | {"IVR_TRUST_PROXY": "1"}  # no public URL: Host says it
    sim = twilio(nginx.url, nginx.url)  # Twilio signs the balancer's URL
    try:
        await server.start(flows_dir, "", env)
        await nginx.start()
        call = await sim.call(BANK, "+15557100000", ["press:1", "press:12345674#", "press:2"])
        assert call.last == [GOODBYE]
        # the same signed request straight to the process: its own Host, not the signed one
        assert call.status_request is not None
        assert (await sim.send(call.status_request, server.url)).status == 403
    finally:
        await sim.session.close()
        await nginx.stop()
    assert await server.kill(signal.SIGTERM) == 0
