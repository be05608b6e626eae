"""The soak run (reliability issue), shared by `tests/functional/test_soak.py` (short) and
`bench/soak.py` (long): a real `ivr serve` process, the functional tests' backend, and
many calls at once from the Twilio sim through the example flows, each call walking one
of `SCRIPTS` (keys, speech, silence, hang-ups, transfers, backend calls) to its status
callback, and among them SMS conversations (each from a number of its own) to their last
message. Afterwards every call's and conversation's record must be there with the outcome
(and, for conversations, the path) its script expects, and the sessions of ended calls and
conversations gone; the server's memory and data directory
are read at the start, the middle and the end."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis
from aiohttp import web

from tests.conftest import free_port
from tests.functional.conftest import BANK, OPEN, REPO, SHOP, Backend, backend_app, read_records
from tests.functional.processes import KEYS, TOKEN, Ivr, server_env
from tests.functional.twilio_sim import Call, Reply, Request, TwilioSim

RECORDS_WAIT = 120.0  # seconds for the last records to be written once the calls are over
SESSIONS_WAIT = 10.0  # and for the sessions of those calls to go
KEYPAD = "/twilio/voice?variant=telebanking"  # telebanking's experiment, one side each
VOICE = "/twilio/voice?variant=telebanking_voice"
ACCOUNT, BROKEN = "12345674", "44444446"  # the backend answers the second with a 500


@dataclass(frozen=True)
class Script:
    """What one caller does (steps as `TwilioSim.call` takes them: press, say, silence,
    hangup; or `text:` messages of an SMS conversation) and the outcome its record must
    have; a conversation's record has its `path` too (`tail`: the path ends so), and its
    last reply says `said`."""

    name: str
    to: str
    steps: tuple[str, ...]
    outcome: str
    voice_path: str = "/twilio/voice"
    path: tuple[str, ...] = ()
    tail: bool = False
    said: str = ""

    @property
    def channel(self) -> str:
        return "sms" if self.steps[0].startswith("text:") else "voice"


SCRIPTS = (
    Script(
        "balance by keys", BANK, ("press:1", f"press:{ACCOUNT}#", "press:2"), "contained", KEYPAD
    ),
    Script(
        "transactions by voice",
        BANK,
        ("say:last transactions", "say:2 2 2 2 2 2 2 8", "say:no thanks"),
        "contained",
        VOICE,  # the voice-first variant takes an account number spoken
    ),
    Script(
        "block a card",
        BANK,
        ("press:2", f"press:{ACCOUNT}#", "say:yes", "press:2"),
        "contained",
        KEYPAD,
    ),
    # an agent, then the survey after the agent
    Script("silence to an agent", BANK, ("silence",) * 3 + ("press:4",), "transferred", KEYPAD),
    Script("hang up at the account", BANK, ("press:1", "hangup"), "abandoned", KEYPAD),
    Script("zero out", BANK, ("press:0", "press:5"), "transferred", KEYPAD),
    Script(
        "backend error to an agent",
        BANK,
        ("press:1", f"press:{BROKEN}#", "press:3"),
        "transferred",
        KEYPAD,
    ),
    Script(
        "hang up after the balance",
        BANK,
        ("say:balance", f"press:{ACCOUNT}#", "hangup"),
        "abandoned",
        KEYPAD,
    ),
    Script(
        "voice-first balance",
        BANK,
        ("say:check my balance", f"press:{ACCOUNT}#", "say:no"),
        "contained",
        VOICE,
    ),
    Script("order shipped", SHOP, ("press:123456#", "press:2"), "contained"),
    Script("order the shop cannot find", SHOP, ("press:404404#",), "transferred"),
    Script("order, then someone else", SHOP, ("press:123456#", "say:someone else"), "transferred"),
    Script(
        "order by voice, then silence", SHOP, ("say:6 5 4 3 2 1",) + ("silence",) * 2, "contained"
    ),
    # SMS conversations: no status callback, the flow's end ends them
    Script(
        "order by SMS, in words",
        SHOP,
        ("text:hi", "text:it's 123 456 thanks", "text:no thanks"),
        "contained",
        path=(
            *("welcome", "ask_order", "lookup", "by_status", "shipped", "has_tracking"),
            *("anything_else", "goodbye"),
        ),
        said="Goodbye.",
    ),
    Script(
        "two orders by SMS, one mistyped",
        SHOP,
        (
            "text:where is my order?",
            "text:12",
            "text:order 123-456",
            "text:1",
            "text:654321",
            "text:2",
        ),
        "contained",
        path=(
            "welcome",
            "ask_order",
            "lookup",
            "by_status",
            "shipped",
            "has_tracking",
            "anything_else",
            "ask_order",
            "lookup",
            "by_status",
            "delivered",
            "anything_else",
            "goodbye",
        ),
        said="Goodbye.",
    ),
    Script(
        "an order the shop cannot find, by SMS",
        SHOP,
        ("text:hello", "text:404404"),
        "transferred",  # agents are reached by calling
        path=("welcome", "ask_order", "lookup", "backend_down", "agent"),
        said="call us",
    ),
    Script(
        "balance by SMS: told to call",
        BANK,
        ("text:balance",),
        "transferred",
        # the account number is not asked by text: told at the menu. The way to the menu
        # depends on the experiment's variant (a keyed hash of the number) and the flow
        path=("main",),
        tail=True,
        said="call us",
    ),
)


class TimedSim(TwilioSim):
    """The Twilio sim, timing each webhook: a turn as the caller waits for it."""

    latencies: list[float]

    async def send(self, request: Request, base_url: str | None = None, **kwargs: object) -> Reply:
        started = time.perf_counter()
        reply = await super().send(request, base_url, **kwargs)  # type: ignore[arg-type]
        self.latencies.append(time.perf_counter() - started)
        return reply


@dataclass(frozen=True)
class Snapshot:
    """The server process and its data directory at one moment."""

    calls_done: int
    rss: int  # bytes
    sessions: int  # rows of live or ended calls in the session store
    records: int  # rows of the records store
    files: dict[str, int]  # name -> bytes on disk, for the SQLite files of the data directory
    pages: dict[str, int]  # sessions.db, calls.db -> bytes of their pages, WAL's included

    def size(self, *names: str) -> int:
        return sum(self.files.get(name, 0) for name in names)


@dataclass
class Result:
    calls: int
    concurrency: int
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # calls that went wrong, as the sim saw
    server_errors: list[str] = field(default_factory=list)  # log lines at error level
    missing: list[str] = field(default_factory=list)  # calls with no record
    wrong: list[str] = field(default_factory=list)  # records with another outcome
    latencies: list[float] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)  # start, middle, end
    outcomes: dict[str, int] = field(default_factory=dict)
    expected: dict[str, Script] = field(default_factory=dict)  # call SID -> its script
    sessions: str | None = None  # the session store's URL (None: SQLite)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] if ordered else 0.0

    @property
    def record_bytes_per_call(self) -> float:
        """What the records database grew by, per call (its pages, wherever they are)."""
        start, end = self.snapshots[0], self.snapshots[-1]
        return (end.pages["calls.db"] - start.pages["calls.db"]) / max(1, self.calls)

    def lines(self) -> list[str]:
        """The figures, as `bench/soak.py` prints them."""
        out = [
            f"{self.calls} calls (SMS conversations among them), {self.concurrency} at a time, "
            f"in {self.seconds:.0f} s "
            f"({self.calls / max(self.seconds, 1e-9):.1f} calls/s, "
            f"{len(self.latencies)} webhooks), sessions in {self.sessions or 'SQLite'}",
            f"errors: {len(self.errors)} in calls, {len(self.server_errors)} logged by the server",
            f"records missing: {len(self.missing)}, with a wrong outcome: {len(self.wrong)}",
            "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
            f"turn latency: p50 {1000 * self.percentile(0.5):.1f} ms, "
            f"p99 {1000 * self.percentile(0.99):.1f} ms, max {1000 * self.percentile(1):.1f} ms",
            f"{'':8}{'calls':>8}{'RSS MB':>8}{'sessions':>10}{'pages KB':>10}{'WAL KB':>8}"
            f"{'records':>9}{'pages KB':>10}{'WAL KB':>8}",
        ]
        for name, s in zip(("start", "middle", "end"), self.snapshots, strict=False):
            out.append(
                f"{name:<8}{s.calls_done:>8}{s.rss / 2**20:>8.1f}{s.sessions:>10}"
                f"{s.pages['sessions.db'] / 1024:>10.0f}{s.size('sessions.db-wal') / 1024:>8.0f}"
                f"{s.records:>9}{s.pages['calls.db'] / 1024:>10.0f}"
                f"{s.size('calls.db-wal') / 1024:>8.0f}"
            )
        out.append(
            "(sessions: the session store's rows (Redis: keys), its database's pages and its "
            "WAL file; records: the same for calls.db)"
        )
        out.append(f"records grow by {self.record_bytes_per_call:.0f} bytes per call")
        for problem in (self.errors + self.server_errors + self.missing + self.wrong)[:5]:
            out.append(f"  {problem[:300]}")
        return out


def prepare_flows(target: Path) -> Path:
    """The repository's flows, with telebanking's agents always in (no clock in outcomes)."""
    shutil.copytree(REPO / "flows", target)
    path = target / "telebanking.yaml"
    text, found = re.subn(r"^  support: .*$", f"  {OPEN}", path.read_text(), flags=re.M)
    assert found == 1, "telebanking.yaml has no support hours"
    path.write_text(text)
    return target


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS for process {pid}")


def ask(path: Path, sql: str) -> int:
    """One number from a SQLite database the server is writing (0 when it is not there)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def session_rows(data: Path, sessions: str | None) -> int:
    """The sessions kept: SQLite's rows, or Redis's keys (sessions, outbox, locks) but for
    the links of text conversations, which outlive them by their flow's idle time."""
    if sessions is None:
        return ask(data / "sessions.db", "SELECT count(*) FROM sessions")
    with redis.Redis.from_url(sessions) as client:
        return int(client.dbsize()) - sum(1 for _ in client.scan_iter("ivr:link:*", 1000))


def record_rows(data: Path) -> int:
    return ask(data / "calls.db", "SELECT count(*) FROM calls")


def snapshot(server: Ivr, done: int, sessions: str | None) -> Snapshot:
    assert server.process is not None
    files = {p.name: p.stat().st_size for p in server.data.glob("*.db*")}
    pages = {
        name: ask(
            server.data / name,
            "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
        )
        for name in ("sessions.db", "calls.db")
    }
    return Snapshot(
        done,
        rss(server.process.pid),
        session_rows(server.data, sessions),
        record_rows(server.data),
        files,
        pages,
    )


def caller(n: int) -> str:
    """A number of its own for each call: one number may start only 20 calls a minute."""
    return f"+1555{n:07d}"


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def soak(workdir: Path, calls: int, concurrency: int, sessions: str | None = None) -> Result:
    """Run `calls` calls, `concurrency` at a time, against a new `ivr serve` under `workdir`
    (its data directory, log and flows), its sessions in SQLite or at `sessions` (a Redis
    URL: its database must be empty); the figures and what went wrong."""
    seen: list[str] = []
    backend = web.AppRunner(backend_app(seen), access_log=None)
    await backend.setup()
    port = free_port()
    await web.TCPSite(backend, "127.0.0.1", port).start()
    (workdir / "data").mkdir(parents=True)
    server = Ivr(free_port(), workdir / "data", workdir / "ivr.log")
    env = server_env(Backend(f"http://127.0.0.1:{port}", seen), sessions)
    env["IVR_LOG_LEVEL"] = "WARNING"
    result = Result(calls, concurrency, sessions=sessions)
    try:
        await server.start(prepare_flows(workdir / "flows"), server.url, env)
        await _drive(server, result)
        await _until(lambda: record_rows(server.data) >= calls, RECORDS_WAIT)
        await _until(lambda: session_rows(server.data, sessions) == 0, SESSIONS_WAIT)
        result.snapshots.append(snapshot(server, calls, sessions))
        await _check_records(server, result)
    finally:
        await server.kill()
        await backend.cleanup()
    result.server_errors = [
        line for line in server.logs.splitlines() if _level(line) in ("error", "critical")
    ]
    return result


async def _drive(server: Ivr, result: Result) -> None:
    # keep-alive connections, one per call in flight: 10,000 calls opening a connection
    # per webhook would leave tens of thousands of sockets in TIME_WAIT
    connector = aiohttp.TCPConnector(limit=result.concurrency)
    http = aiohttp.ClientSession(connector=connector)
    sim = TimedSim(server.url, TOKEN, server.url, session=http)
    sim.latencies = result.latencies
    result.snapshots.append(snapshot(server, 0, result.sessions))
    numbers = iter(range(result.calls))
    done = 0

    async def worker() -> None:
        nonlocal done
        for n in numbers:
            script = SCRIPTS[n % len(SCRIPTS)]
            try:
                if script.channel == "sms":
                    result.expected[f"sms:{KEYS.customer_id(caller(n))}"] = script
                    await _converse(sim, caller(n), script)
                else:
                    call = sim.new_call(script.to, caller(n), voice_path=script.voice_path)
                    result.expected[call.sid] = script
                    await _walk(call, script)
            except Exception as e:  # counted and shown: the run goes on
                result.errors.append(f"{script.name} ({caller(n)}): {type(e).__name__}: {e}")
            done += 1
            if done == result.calls // 2:
                result.snapshots.append(snapshot(server, done, result.sessions))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(result.concurrency)))
    finally:
        await http.close()
    result.seconds = time.perf_counter() - started


async def _walk(call: Call, script: Script) -> None:
    await call.start()
    for item in script.steps:
        if call.ended:
            raise AssertionError(f"the call ended before {item!r}; it heard {call.heard[-3:]}")
        kind, _, arg = item.partition(":")
        if kind == "press":
            await call.press(arg)
        elif kind == "say":
            await call.say(arg)
        elif kind == "silence":
            await call.silence()
        else:
            await call.hangup()
    if not call.ended:
        raise AssertionError(f"the call did not end; it heard {call.heard[-3:]}")


async def _converse(sim: TwilioSim, number: str, script: Script) -> None:
    """An SMS conversation from `number`: each message, then its last reply checked."""
    said: list[str] = []
    for item in script.steps:
        said = await sim.text(script.to, number, item.removeprefix("text:"))
    if not any(script.said in paragraph for paragraph in said):
        raise AssertionError(f"the last reply was {said}, not {script.said!r}")


async def _check_records(server: Ivr, result: Result) -> None:
    # a call by its SID; a conversation (its id is the server's) by its channel and customer
    records = {
        r.call_sid if r.channel == "voice" else f"{r.channel}:{r.customer}": r
        for r in await read_records(server.data / "calls.db")
    }
    expected = result.expected
    for sid, script in expected.items():
        record = records.get(sid)
        if record is None:
            result.missing.append(f"no record of {script.name} ({sid})")
            continue
        result.outcomes[record.outcome] = result.outcomes.get(record.outcome, 0) + 1
        status = "completed" if script.channel == "voice" else None  # no status by text
        path = tuple(record.path)
        if script.path:
            path = path[-len(script.path) :] if script.tail else path
        if (record.outcome, record.status, path) != (script.outcome, status, script.path or path):
            result.wrong.append(
                f"{script.name} ({sid}): {record.outcome}, status {record.status}, "
                f"expected {script.outcome}; path {' > '.join(record.path)}"
            )
    result.wrong += [f"a record of no call of this run: {sid}" for sid in records.keys() - expected]


def _level(line: str) -> str:
    try:
        return str(json.loads(line).get("level", ""))
    except ValueError:
        return "error" if line.startswith("Traceback") else ""
