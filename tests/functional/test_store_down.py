"""Redis down or stalled while calls run: callers hear the flow's apology and go to its
fallback transfer (failed without one) in time, `/healthz` says not ready meanwhile, and
every such call gets its record, once, when Redis is back.

Each test runs a redis-server of its own (append-only file on, as in production), so it
can be stopped (SIGTERM) and started again on the same port, or stalled (SIGSTOP) and
resumed (SIGCONT), under a real server driven over HTTP by the Twilio sim.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from ivr.config import TWILIO_WAIT
from ivr.store.records import CallRecord
from tests.conftest import REDIS_MISSING, free_port
from tests.functional.conftest import (
    BANK,
    CALLER,
    SHOP,
    SLOW,
    Backend,
    MakeServer,
    Server,
    edit_file,
    metric,
)
from tests.functional.twilio_sim import wait_until

ACCOUNT = "Please enter your eight digit account number, then press the pound key."
APOLOGY = "Sorry, something went wrong on our side."
AGENT = "Connecting you to an agent."
SHOP_APOLOGY = "Sorry, something went wrong on our side. Please call again later. Goodbye."
BUDGET = 10.0  # the default turn budget (IVR_TURN_BUDGET)
BACK_WITHIN = 30.0  # seconds for /healthz and the records to follow Redis (ping: every 1 s)
FALLBACK = f'  barge_in: true\n  apology: "{APOLOGY}"\n  fallback: agent\n'


class RedisProcess:
    """A redis-server of the test's own on a fixed port, that can be stopped, started
    again with its data (append-only file), stalled and resumed."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(REDIS_MISSING, pytrace=False)
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        command += ["--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]
        self.process = subprocess.Popen(command, cwd=self.workdir, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        with redis.Redis.from_url(self.url, socket_connect_timeout=0.5) as client:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                assert self.process.poll() is None, (self.workdir / "redis.log").read_text()
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def stall(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisProcess(workdir)
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def on_redis(
    make_server: MakeServer, own_redis: RedisProcess, flows_dir: Path
) -> AsyncIterator[Server]:
    """The app with sessions in `own_redis`; telebanking has an apology and a fallback
    (its agent transfer), order_status neither."""
    edit_file(flows_dir / "telebanking.yaml", "  barge_in: true\n", FALLBACK)
    yield await make_server(sessions=own_redis.url)


async def health(server: Server) -> tuple[int, dict[str, Any], int, dict[str, Any]]:
    """/healthz on the public listener and on the admin listener: (status, body) each."""
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz") as public:
            public_body = await public.json()
        async with http.get(server.admin_url + "/healthz") as admin:
            return public.status, public_body, admin.status, await admin.json()


async def healthy(server: Server, ready: bool) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status, body, admin_status, _ = await health(server)
        want = 200 if ready else 503
        return body if status == want and admin_status == want else None

    return await wait_until(check, timeout=BACK_WITHIN)


async def records_of(server: Server, *sids: str) -> dict[str, CallRecord]:
    async def found() -> dict[str, CallRecord] | None:
        records = {r.call_sid: r for r in await server.records()}
        return records if all(s in records for s in sids) else None

    return await wait_until(found, timeout=BACK_WITHIN)


def counted_calls(server: Server) -> int:
    """The calls the records' rollups count: each record once, or a call counted twice."""
    with sqlite3.connect(server.config.data / "calls.db") as db:
        return int(db.execute("SELECT SUM(calls) FROM hour_calls").fetchone()[0] or 0)


async def test_redis_down_callers_go_to_the_fallback_and_every_call_is_recorded(
    on_redis: Server, own_redis: RedisProcess
) -> None:
    server = on_redis
    assert (await health(server))[0] == 200
    async with server.twilio() as sim:
        midway = await sim.start(BANK, CALLER)  # at the account number when Redis stops
        assert await midway.press("1") == [ACCOUNT]
        leaving = await sim.start(BANK, CALLER)  # hangs up while Redis is away
        assert await leaving.press("1") == [ACCOUNT]

        own_redis.stop()
        started = time.monotonic()
        heard = await midway.press("12345674#")
        took = time.monotonic() - started
        assert heard == [APOLOGY, AGENT]
        assert took < BUDGET
        assert midway.transfer is not None and midway.transfer.tag == "Dial"
        assert midway.transfer.findtext("Number") == "+15550199"
        assert midway.end == "dial"  # the dial action and the status callback came meanwhile

        new = await sim.start(BANK, CALLER)  # a new call: its flow is found by its number
        assert new.heard == [APOLOGY, AGENT] and new.end == "dial"
        shop = await sim.start(SHOP, CALLER)  # order_status has no fallback
        assert shop.heard == [SHOP_APOLOGY] and shop.end == "hangup"
        await leaving.hangup()

        body = await healthy(server, ready=False)
        assert body["status"] == "store unreachable" and "sessions" in body["stores"]
        assert midway.sid not in {r.call_sid for r in await server.records()}
        spooled = server.config.data / "spool"
        assert len(list(spooled.glob("*.call"))) == 4
        for path in spooled.iterdir():  # sealed: no caller number, no account in clear
            data = path.read_bytes()
            assert CALLER.encode() not in data and b"5557654321" not in data
            assert b"12345674" not in data and b"telebanking" not in data

        own_redis.start()
        back = time.monotonic()
        await healthy(server, ready=True)
        ready = time.monotonic() - back
        sids = (midway.sid, new.sid, shop.sid, leaving.sid)
        records = await records_of(server, *sids)
        await wait_until(lambda: _emptied(spooled), timeout=BACK_WITHIN)
        print(
            f"Redis down: answered in {took:.3f} s; back: ready in {ready:.2f} s, "
            f"4 records in {time.monotonic() - back:.2f} s"
        )

    record = records[midway.sid]
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "on_error",
        "store",
    )
    # the call as Redis knew it, ended where the caller was when Redis went away
    assert record.path == ("welcome", "returning", "main", "ask_account", "agent")
    assert record.transfer_from == "ask_account" and record.queue == "support"
    assert (record.status, record.transfer_result) == ("completed", "completed")
    assert records[new.sid].outcome == "transferred" and records[new.sid].reason == "on_error"
    assert records[shop.sid].outcome == "failed" and "unreachable" in (
        records[shop.sid].error or ""
    )
    assert records[leaving.sid].outcome == "abandoned"
    assert records[leaving.sid].path == ("welcome", "returning", "main", "ask_account")
    assert records[leaving.sid].status == "completed"

    await asyncio.sleep(1.5)  # another round of pings and writes: nothing is written twice
    assert len(await server.records()) == 4 and counted_calls(server) == 4
    exposition = await server.metrics()
    assert metric(exposition, "ivr_store_errors_total", store="sessions") >= 1
    ended = metric(exposition, "ivr_calls_ended_total")
    assert ended == 4  # each call counted once: when it ended, not again when recorded


async def test_redis_stalled_the_webhook_answers_before_twilio_gives_up(
    on_redis: Server, own_redis: RedisProcess
) -> None:
    server = on_redis
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        assert await call.press("1") == [ACCOUNT]

        own_redis.stall()  # SIGSTOP: connections are accepted, nothing is answered
        try:
            started = time.monotonic()
            heard = await call.press("12345674#")
            took = time.monotonic() - started
            assert heard == [APOLOGY, AGENT] and call.end == "dial"
            assert took < TWILIO_WAIT  # answered before Twilio plays its error
            started = time.monotonic()
            new = await sim.start(BANK, CALLER)
            took_new = time.monotonic() - started
            assert new.heard == [APOLOGY, AGENT] and took_new < TWILIO_WAIT
            body = await healthy(server, ready=False)
            assert body["status"] == "store unreachable"
        finally:
            own_redis.resume()
        print(f"stalled Redis: answered in {took:.2f} s (a call in progress), {took_new:.2f} s")

        await healthy(server, ready=True)
        records = await records_of(server, call.sid, new.sid)
        assert _empty(server.config.data / "spool")
    record = records[call.sid]
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "on_error",
        "store",
    )
    assert record.path == ("welcome", "returning", "main", "ask_account", "agent")
    assert records[new.sid].outcome == "transferred"
    await asyncio.sleep(1.5)
    assert len(await server.records()) == 2 and counted_calls(server) == 2


async def test_redis_stalled_in_the_middle_of_a_turn(
    on_redis: Server, own_redis: RedisProcess, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis stalls while a turn waits for the bank: the turn cannot be saved, so the caller
    goes to the fallback; the record has the whole call, the balance task included."""
    monkeypatch.setitem(SLOW, "55555551", 1.0)  # the lookup: Redis stalls during it
    async with on_redis.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        assert await call.press("1") == [ACCOUNT]
        started = time.monotonic()
        pressed = asyncio.create_task(call.press("55555551#"))
        await wait_until(lambda: _asked(backend), timeout=5)
        own_redis.stall()
        try:
            heard = await pressed
            took = time.monotonic() - started
        finally:
            own_redis.resume()
        assert heard == [APOLOGY, AGENT] and took < TWILIO_WAIT
        print(f"Redis stalled mid-turn: answered in {took:.2f} s (the bank took 1 s)")
        records = await records_of(on_redis, call.sid)
    record = records[call.sid]
    assert (record.outcome, record.reason, record.reason_detail) == (
        "transferred",
        "on_error",
        "store",
    )
    assert record.tasks == ("balance_inquiry",) and record.transfer_from == "anything_else"
    assert record.path[-3:] == ("balance", "anything_else", "agent")


async def test_redis_down_a_retried_webhook_gets_the_same_answer(
    on_redis: Server, own_redis: RedisProcess
) -> None:
    """Twilio retrying a webhook the spool answered gets the same TwiML, and the call
    still has one record."""
    async with on_redis.twilio() as sim:
        own_redis.stop()
        call = await sim.start(BANK, CALLER)
        retried = await sim.start(BANK, CALLER, call_sid=call.sid)  # the same first webhook
        assert retried.documents[0][1] == call.documents[0][1]
        assert retried.heard == [APOLOGY, AGENT]
        own_redis.start()
        records = await records_of(on_redis, call.sid)
    assert records[call.sid].outcome == "transferred"
    await asyncio.sleep(1.5)
    assert len(await on_redis.records()) == 1 and counted_calls(on_redis) == 1


def _empty(directory: Path) -> bool:
    return not directory.exists() or not any(directory.glob("*.call"))


async def _emptied(directory: Path) -> bool:
    return _empty(directory)


async def _asked(backend: Backend) -> bool:
    """Whether the bank has been asked for account 55555551 (the lookup is under way)."""
    return any("55555551" in seen for seen in backend.seen)
