"""Faults while calls run: `ivr serve` SIGKILLed at random points (a replacement goes on
with every call), backends that fail in every way (the caller hears the flow's error
path), the records store down and back (no record lost).

The kill run is small in CI; `IVR_FAULT_CALLS=100 IVR_FAULT_KILLS=10 IVR_FAULT_SEED=7`
makes it the issue's size (see docs/reliability.md)."""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import pytest

from tests.conftest import free_port
from tests.functional.conftest import BANK, CALLER, OPEN, Backend, MakeServer, read_records
from tests.functional.processes import Ivr, server_env
from tests.functional.test_store_down import healthy, records_of
from tests.functional.twilio_sim import Reply, Request, TwilioSim, wait_until

CALLS = int(os.environ.get("IVR_FAULT_CALLS", "30"))
KILLS = int(os.environ.get("IVR_FAULT_KILLS", "2"))
DEADLINE = 600.0  # a bound on a whole run, not a measure of it
GOODBYE = "Thank you for calling Example Bank. Goodbye."


@dataclass(frozen=True)
class Script:
    """What a caller presses, and what the call's record must say after."""

    keys: tuple[str, ...]
    heard: str  # said somewhere in the call
    tasks: tuple[str, ...]
    path: str  # every node once per visit: a turn replayed after a kill is not stepped twice


SCRIPTS = (
    Script(
        ("1", "55555551#", "1", "3", "22222228#", "2"),
        "Your last transactions: $12.00 at Corner Coffee.",
        ("balance_inquiry", "transactions"),
        "welcome returning main ask_account lookup route balance anything_else main ask_account"
        " lookup route transactions anything_else goodbye",
    ),
    Script(
        ("2", "12345674#", "1", "2"),
        "Your card has been blocked. A new card will arrive in five working days.",
        ("card_blocked",),
        "welcome returning main ask_account lookup route confirm_block block_card blocked"
        " anything_else goodbye",
    ),
    Script(
        ("1", "12345674#", "2"),
        "Your balance is $1,234.50.",
        ("balance_inquiry",),
        "welcome returning main ask_account lookup route balance anything_else goodbye",
    ),
)


class PatientTwilio(TwilioSim):
    """Twilio in front of a process that may be dead: a webhook that gets no answer is
    sent again, the same, once the replacement is up (as a balancer passes it on).
    `answered` counts the webhooks answered, for the killer to pick its moments."""

    def __init__(self, server: Ivr) -> None:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        super().__init__(server.url, "test-token", server.url, session=http)
        self.up = asyncio.Event()
        self.up.set()
        self.answered = 0
        self.resent = 0

    async def send(self, request: Request, base_url: str | None = None, **kwargs: object) -> Reply:
        while True:
            await self.up.wait()
            try:
                reply = await super().send(request, base_url, **kwargs)  # type: ignore[arg-type]
            except aiohttp.ClientError:  # killed before it answered
                self.resent += 1
                await asyncio.sleep(0.05)
                continue
            self.answered += 1
            return reply


async def caller(sim: TwilioSim, number: str, script: Script) -> str:
    call = await sim.start(BANK, number)
    for keys in script.keys:
        await call.press(keys)
    assert any(script.heard in said for said in call.heard), call.heard
    assert call.last == [GOODBYE] and call.end == "hangup", call.heard
    return call.sid


@pytest.mark.parametrize("sessions", ["sqlite", "redis"])
async def test_calls_go_on_across_random_kills(
    processes: Callable[[str], Ivr],
    flows_dir: Path,
    backend: Backend,
    sessions: str,
    request: pytest.FixtureRequest,
) -> None:
    seed = int(os.environ.get("IVR_FAULT_SEED") or random.randrange(10**6))
    print(f"seed {seed} (IVR_FAULT_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    url = request.getfixturevalue("redis_url") if sessions == "redis" else None
    env = server_env(backend, sessions=url)  # None: SQLite under --data
    server = processes(sessions)
    await server.start(flows_dir, server.url, env)
    sim = PatientTwilio(server)
    plan = [rng.choice(SCRIPTS) for _ in range(CALLS)]
    webhooks = sum(len(s.keys) + 2 for s in plan)  # each turn, the first and the status
    kill_at = sorted(rng.sample(range(1, webhooks), KILLS))

    async def killer() -> None:
        for at in kill_at:
            await wait_until(lambda at=at: _past(sim, at), timeout=DEADLINE)
            sim.up.clear()
            assert await server.kill(signal.SIGKILL) == -signal.SIGKILL
            await server.start(flows_dir, server.url, env)  # the same --data, the same Redis
            sim.up.set()

    try:
        calls = [caller(sim, f"+1555800{i:04d}", s) for i, s in enumerate(plan)]
        sids, _ = await asyncio.wait_for(asyncio.gather(asyncio.gather(*calls), killer()), DEADLINE)
    finally:
        await sim.session.close()
    assert await server.kill(signal.SIGTERM) == 0
    print(f"{CALLS} calls, {KILLS} kills at webhooks {kill_at} of {webhooks}, {sim.resent} resent")

    records = {r.call_sid: r for r in await read_records(server.data / "calls.db")}
    assert len(records) == CALLS and set(records) == set(sids)  # one each, none lost
    for sid, script in zip(sids, plan, strict=True):
        assert records[sid].outcome == "contained", records[sid]
        assert records[sid].tasks == script.tasks, records[sid]
        assert records[sid].path == tuple(script.path.split()), records[sid]


async def _past(sim: PatientTwilio, at: int) -> bool:
    return sim.answered >= at


# -- backends failing every way --------------------------------------------------------------

DOWN = "Sorry, our systems are not answering right now."
AGENT = "Connecting you to an agent."
LOOKUP_TIMEOUT = 2.0  # telebanking's lookup node: `timeout: 2`
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
BALANCE = b'{"balance": 80, "card_last4": "9876", "transactions": []}'


async def answer(mode: str, writer: asyncio.StreamWriter) -> None:
    """What a broken bank does once it has read a request."""
    if mode == "hang":  # takes the connection, never answers
        await asyncio.sleep(10 * LOOKUP_TIMEOUT)
    elif mode == "slow":  # a good answer, after the node's timeout
        await asyncio.sleep(1.5 * LOOKUP_TIMEOUT)
        writer.write(HEAD % len(BALANCE) + BALANCE)
    elif mode == "drip":  # headers at once, then the body byte by byte, past the timeout
        writer.write(HEAD % len(BALANCE))
        for byte in BALANCE:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(2 * LOOKUP_TIMEOUT / len(BALANCE))
    elif mode == "invalid json":
        writer.write(HEAD % 9 + b"{balance:")
    elif mode == "500":
        body = b'{"error": "internal"}'
        writer.write(HEAD.replace(b"200 OK", b"500 Internal Server Error") % len(body) + body)
    elif mode == "cut":  # half an answer, then the connection closes
        writer.write(HEAD % len(BALANCE) + BALANCE[:10])
    await writer.drain()


@pytest.fixture
async def broken_bank() -> AsyncIterator[Callable[[str], str]]:
    """A bank on loopback that answers each request as its URL's first segment says
    (`/hang/accounts/...`); "refused" is an address nothing listens on."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            mode = head.split(b" ")[1].split(b"/")[1].decode().replace("%20", " ")
            await answer(mode, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # ivr gave up on the answer: what the test is about
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    nobody = free_port()

    def url(mode: str) -> str:
        if mode == "refused":
            return f"http://127.0.0.1:{nobody}"
        return f"http://127.0.0.1:{port}/{mode.replace(' ', '%20')}"

    yield url
    server.close()


TIMED_OUT = f"timed out after {LOOKUP_TIMEOUT:g} s"
FAULTS = [  # (what the bank does, why ivr's log says the lookup failed)
    ("hang", TIMED_OUT),
    ("slow", TIMED_OUT),
    ("drip", TIMED_OUT),
    ("refused", "ClientConnectorError"),
    ("invalid json", "the answer is not JSON"),
    ("500", "failed: 500"),
    ("cut", "ClientPayloadError"),
]


@pytest.mark.parametrize(("mode", "why"), FAULTS)
async def test_a_broken_backend_sends_the_caller_down_the_error_path(
    make_server: MakeServer,
    broken_bank: Callable[[str], str],
    mode: str,
    why: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("IVR_FLOW_BANK_API", broken_bank(mode))  # read when the flows load
    server = await make_server()
    server.set_hours(OPEN)
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        await call.press("1")
        heard = await asyncio.wait_for(call.press("55555551#"), 8 * LOOKUP_TIMEOUT)
        assert heard[:2] == [DOWN, AGENT]  # then the survey, after the agent
        await call.press("4")
    failed = [r.getMessage() for r in caplog.records if "backend call at lookup" in r.getMessage()]
    assert len(failed) == 1 and why in failed[0], failed  # tried once, failed for that reason
    record = await server.record(call.sid)
    assert (record.outcome, record.reason, record.transfer_from) == (
        "transferred",
        "on_error",
        "lookup",
    )


# -- the records store down and back -----------------------------------------------------------


class StoppedPostgres:
    """Stops the shared test PostgreSQL server (`postgres_server`) and starts it again with
    the options it ran with (its `postmaster.opts`), on the same port and data."""

    def __init__(self, url: str) -> None:
        with psycopg.connect(url) as db:
            row = db.execute("SHOW data_directory").fetchone()
        assert row is not None
        self.data = Path(row[0])
        binary, *args = shlex.split((self.data / "postmaster.opts").read_text())
        at = args.index("-D")
        self.options = shlex.join(args[:at] + args[at + 2 :])
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        pg_ctl = str(Path(binary).with_name("pg_ctl"))
        self.pg_ctl = [*as_postgres, pg_ctl, "-D", str(self.data), "-s", "-w", "-t", "30"]

    def stop(self) -> None:
        subprocess.run([*self.pg_ctl, "-m", "fast", "stop"], check=True, capture_output=True)

    def start(self) -> None:
        log = self.data.parent / "server.log"
        command = [*self.pg_ctl, "-l", str(log), "-o", self.options, "start"]
        subprocess.run(command, check=True, capture_output=True)


async def test_records_wait_for_postgres_and_none_is_lost(
    make_server: MakeServer, postgres_url: str
) -> None:
    server = await make_server(records=postgres_url, sessions=None)  # sessions in SQLite
    postgres = StoppedPostgres(postgres_url)
    async with server.twilio() as sim:
        before = await sim.call(BANK, CALLER, ["press:1", "press:12345674#", "press:2"])
        await server.record(before.sid)
        in_progress = await sim.start(BANK, "+15558100000")
        await in_progress.press("1")
        postgres.stop()
        try:
            # callers hear nothing of it: the records store is not on a call's path
            calls = [
                await sim.call(BANK, f"+1555810{i:04d}", ["press:1", "press:12345674#", "press:2"])
                for i in range(1, 4)
            ]
            await in_progress.press("12345674#")
            assert await in_progress.press("2") == [GOODBYE]
            assert all(c.last == [GOODBYE] for c in calls)
            down = await healthy(server, ready=False)  # a failed write: not ready
            assert down["stores"]["records"] != "ok", down
        finally:
            postgres.start()
        await healthy(server, ready=True)  # a write went through: the queued ones
        after = await sim.call(BANK, "+15558200000", ["press:1", "press:12345674#", "press:2"])
    sids = [c.sid for c in (before, in_progress, *calls, after)]
    records = await records_of(server, *sids)
    assert sorted(records) == sorted(sids)
    for record in records.values():
        assert (record.outcome, record.tasks) == ("contained", ("balance_inquiry",)), record
    with psycopg.connect(postgres_url) as db:  # each call counted once in the rollups
        row = db.execute("SELECT SUM(calls) FROM hour_calls").fetchone()
    assert row is not None and row[0] == len(sids)
