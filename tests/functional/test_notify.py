"""`ivr notify --csv` end to end: the command runs a campaign through a small dialer over
HTTP against a fake Calls endpoint on loopback (a real aiohttp server in a thread, as
`ivr` runs its own event loop), then resumes it without calling anyone again; `--dry-run`
calls nobody and writes nothing; `ivr optout` keeps keys, never numbers.

The dialer here is this test's: the Twilio REST module's fake API replaces it once both
are merged (`ivr.notify.commands.make_dialer` is the seam).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ivr.cli import main
from ivr.notify import commands
from ivr.notify.campaign import CallState, Dial, Outbound, Placed, Status

ACCOUNT = "AC00000000000000000000000000000000"
BUSY, REFUSED = "+12125550102", "+12125550103"  # the fake answers busy, refuses this one


@dataclass
class FakeCalls:
    """Twilio's Calls resource, as much as a campaign uses: create, then fetch (ringing,
    then completed by a human; busy for BUSY); a 400 for REFUSED."""

    url: str = ""
    created: list[dict[str, str]] = field(default_factory=list)
    fetches: dict[str, int] = field(default_factory=dict)
    to: dict[str, str] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        base = f"/2010-04-01/Accounts/{ACCOUNT}/Calls"
        app.router.add_post(f"{base}.json", self.create)
        app.router.add_get(base + "/{sid}.json", self.fetch)
        return app

    async def create(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        if form["To"] == REFUSED:
            return web.json_response({"code": 21211, "message": "Invalid 'To'"}, status=400)
        sid = f"CA{len(self.created):032x}"
        self.created.append({k: str(v) for k, v in form.items()})
        self.to[sid], self.fetches[sid] = str(form["To"]), 0
        return web.json_response({"sid": sid, "status": "queued"}, status=201)

    async def fetch(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        self.fetches[sid] += 1
        if self.fetches[sid] == 1:
            return web.json_response({"sid": sid, "status": "ringing", "answered_by": None})
        status = "busy" if self.to[sid] == BUSY else "completed"
        answered = "human" if status == "completed" else None
        return web.json_response({"sid": sid, "status": status, "answered_by": answered})

    def numbers(self) -> list[str]:
        return [call["To"] for call in self.created]


@pytest.fixture
def fake_calls() -> Iterator[FakeCalls]:
    """The fake on a free loopback port, served by a loop of its own in a thread."""
    fake, loop, ready = FakeCalls(), asyncio.new_event_loop(), threading.Event()
    runner = web.AppRunner(fake.app())

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        fake.url = f"http://127.0.0.1:{port}"
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    assert ready.is_set()
    yield fake
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=30)
    loop.close()


def http_dialer(base: str) -> tuple[Dial, Status]:
    """A minimal Calls API client (this test's): POST to create, GET to fetch."""
    calls = f"{base}/2010-04-01/Accounts/{ACCOUNT}/Calls"

    async def dial(outbound: Outbound) -> Placed:
        form = {
            "To": outbound.to,
            "From": "+15550100",
            "Url": f"https://ivr.example.test/twilio/voice?flow={outbound.flow}",
            "MachineDetection": "Enable",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{calls}.json", data=form) as r,
        ):
            body = await r.json()
            if r.status >= 400:
                raise RuntimeError(f"HTTP {r.status}: {body['message']}")
            return Placed(body["sid"], body["status"])

    async def status(sid: str) -> CallState:
        async with aiohttp.ClientSession() as session, session.get(f"{calls}/{sid}.json") as r:
            body = await r.json()
            return CallState(body["status"], body["answered_by"])

    return dial, status


@pytest.fixture
def place(fake_calls: FakeCalls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The common flags of a run against the fake: records and keys under tmp_path."""
    dialer = commands.Dialer(*http_dialer(fake_calls.url))
    monkeypatch.setattr(commands, "make_dialer", lambda channel, flows=None: dialer)
    monkeypatch.delenv("IVR_RECORDS", raising=False)
    monkeypatch.delenv("IVR_CUSTOMER_KEY", raising=False)
    monkeypatch.delenv("IVR_DATA_KEY", raising=False)
    return ["--data", str(tmp_path / "data"), "--flows", str(Path("flows").resolve())]


CSV = f"""number,tz,name
+12125550100,,Ann
+12125550101,America/Chicago,Bob
{BUSY},,Cy
12125550109,,Bad
{REFUSED},,Di
+12125550104,,Ed
"""


def test_a_campaign_runs_then_resumes_without_calling_anyone_again(
    place: list[str], fake_calls: FakeCalls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    due = tmp_path / "due.csv"
    due.write_text(CSV)
    assert main(["optout", "add", "+12125550104", *place[:2]]) == 0  # Ed said STOP
    capsys.readouterr()
    fast = ["--rate", "600", "--poll", "0.2", "--retries", "1", "--retry-after", "1s"]
    run = ["notify", "--flow", "telebanking", "--csv", str(due), *fast, *place]
    assert main(run) == 0
    out, err = capsys.readouterr()
    assert f"{due}:5: number: expected E.164" in err
    # every valid number once, the busy one and the refused one twice (one retry); the
    # refused one never reached the fake's list; Ed (opted out) never
    assert sorted(fake_calls.numbers()) == sorted(["+12125550100", "+12125550101", BUSY, BUSY])
    assert all(call["MachineDetection"] == "Enable" for call in fake_calls.created)
    campaign = out.split()[1].rstrip(":")
    assert "line 6, attempt 2: failed: not placed: HTTP 400: Invalid 'To'" in out

    assert main(run) == 0  # the same file again: resumes a finished campaign
    assert len(fake_calls.created) == 4
    capsys.readouterr()

    assert main(["campaigns", "show", campaign, "--json", *place[:2]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["by_status"] == {
        "reached": 2,
        "machine": 0,
        "busy": 1,
        "no-answer": 0,
        "failed": 1,
        "opted-out": 1,
        "outside-window": 0,
        "invalid": 1,
        "pending": 0,
    }
    assert (shown["rows"], shown["calls_placed"], shown["flow"]) == (6, 4, "telebanking")
    assert main(["notify", "--report", campaign, *place[:2]]) == 0
    assert "  reached              2" in capsys.readouterr().out


def test_a_dry_run_calls_nobody_and_writes_nothing(
    place: list[str], fake_calls: FakeCalls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    due = tmp_path / "due.csv"
    due.write_text(CSV)
    window = ["--window", "00:00-24:00"]
    assert (
        main(["notify", "--flow", "telebanking", "--csv", str(due), "--dry-run", *window, *place])
        == 0
    )
    out, err = capsys.readouterr()
    assert fake_calls.created == []
    assert "rows: 6, invalid: 1, opted out: 0" in out and "callable now: 5" in out
    assert f"{due}:5: number: expected E.164" in err
    with sqlite3.connect(tmp_path / "data" / "calls.db") as db:
        assert db.execute("SELECT count(*) FROM campaign_attempts").fetchone() == (0,)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flow", "nope"], "--flow: no flow 'nope' in"),
        (["--flow", "telebanking", "--window", "9-5"], "--window: expected a time HH:MM"),
        (["--flow", "telebanking", "--tz", "Mars/Base"], "--tz: 'Mars/Base' is not an IANA"),
    ],
)
def test_bad_flags_are_said_in_one_line(
    place: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    due = tmp_path / "due.csv"
    due.write_text(CSV)
    assert main(["notify", "--csv", str(due), *argv, *place]) == 2
    assert capsys.readouterr().err.startswith(f"ivr: {message}")


def test_optout_keeps_keys_not_numbers(
    place: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["optout", "add", "+12125550100", "+1 212 555 0101", *place[:2]]) == 0
    assert main(["optout", "add", "+12125550100", *place[:2]]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "opted out: 2 new, 0 already",
        "opted out: 0 new, 1 already",
    ]
    assert main(["optout", "list", *place[:2]]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("opted out: 2 (ops 2)") and "555" not in listed
    assert main(["optout", "remove", "+12125550101", *place[:2]]) == 0
    assert main(["optout", "remove", "+12125550101", *place[:2]]) == 1  # not on it any more
    assert main(["optout", "add", "0101", *place[:2]]) == 2
    assert "optout: argument 1: expected E.164" in capsys.readouterr().err
    for path in (tmp_path / "data").iterdir():
        assert b"2125550101" not in path.read_bytes()
