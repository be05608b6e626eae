"""Functional fixtures: the real app on loopback, a fake bank/shop backend, and a Twilio sim.

The flows are a copy of the repository's `flows/` (tests edit them), and point at the
local backend through `IVR_FLOW_BANK_API` / `IVR_FLOW_ORDERS_API`, set before the flows load.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ivr.config import Config
from ivr.keys import KEY_FILE
from ivr.server import ADMIN, FLOWS, build_app
from ivr.store import open_records
from ivr.store.records import CallRecord
from tests.conftest import free_port
from tests.functional.twilio_sim import TwilioSim, wait_until

if TYPE_CHECKING:
    from tests.functional.processes import Ivr

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
BANK = "+15550100"  # telebanking's number
SHOP = "+15550110"  # order_status's number
CALLER = "+15557654321"
OPEN = 'support: {tz: UTC, mon-sun: "00:00-24:00"}'  # telebanking's agents, always in
CLOSED = "support: {tz: UTC, mon-sun: closed}"  # and never: the voicemail path
# telebanking's A/B split, taken out of the flows' copy: the tests drive the bank's keypad
# menu, which half the callers would not get; test_experiment.py puts it back
EXPERIMENT = "experiment: {name: voice_vs_dtmf, split: {telebanking: 50, telebanking_voice: 50}}\n"

ACCOUNTS: dict[str, tuple[int, Any]] = {
    "12345674": (200, {"balance": 1234.5, "card_last4": "4321", "transactions": []}),
    "55555551": (200, {"balance": 80, "card_last4": "9876", "transactions": []}),
    "22222228": (
        200,
        {
            "balance": 310,
            "card_last4": "1111",
            "transactions": [
                {"amount": 12, "merchant": "Corner Coffee"},
                {"amount": -45.9, "merchant": "City Power"},
            ],
        },
    ),
    "99999997": (404, {"error": "not found"}),
    "44444446": (500, {"error": "internal error"}),
}
SLOW = {"55555551": 0.3}  # seconds this account's lookup takes: a window for racing webhooks
SLOW_BLOCK: dict[str, float] = {}  # seconds blocking this account's card takes (tests set it)
TRACKING = "https://shop.example/t/777888"  # order 777888's: order_status texts it
ORDERS: dict[str, tuple[int, Any]] = {
    "123456": (200, {"status": "shipped", "carrier": "UPS", "eta": "Friday, November 27"}),
    "654321": (200, {"status": "delivered", "delivered_on": "Monday, November 23"}),
    "777888": (
        200,
        {"status": "shipped", "carrier": "DHL", "eta": "Monday", "tracking": TRACKING},
    ),
    "404404": (404, {"error": "no such order"}),
}


# -- the backend the flows call ----------------------------------------------------------------


@dataclass
class Backend:
    url: str
    seen: list[str] = field(default_factory=list)  # "GET /accounts/12345674", ...
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # requests as posted


def backend_app(seen: list[str], callbacks: list[dict[str, Any]] | None = None) -> web.Application:
    callbacks = [] if callbacks is None else callbacks

    async def account(request: web.Request) -> web.Response:
        seen.append(f"GET {request.path}")
        await asyncio.sleep(SLOW.get(request.match_info["n"], 0))
        status, body = ACCOUNTS.get(request.match_info["n"], (404, {"error": "not found"}))
        return web.json_response(body, status=status)

    async def block(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(f"POST {request.path} {body.get('account')}")
        await asyncio.sleep(SLOW_BLOCK.get(body.get("account"), 0))
        return web.json_response({"blocked": True})

    async def order(request: web.Request) -> web.Response:
        seen.append(f"GET {request.path}")
        status, body = ORDERS.get(request.match_info["n"], (404, {"error": "no such order"}))
        return web.json_response(body, status=status)

    async def callback(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(f"POST {request.path} {body.get('queue')} {body.get('window')}")
        callbacks.append(body)
        return web.json_response({"booked": True}, status=201)

    app = web.Application()
    app.router.add_get("/accounts/{n}", account)
    app.router.add_post("/cards/block", block)
    app.router.add_post("/callbacks", callback)
    app.router.add_get("/orders/{n}", order)
    return app


@pytest.fixture
async def backend(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Backend]:
    """The bank and shop APIs on loopback; IVR_FLOW_BANK_API and IVR_FLOW_ORDERS_API point
    at them."""
    seen: list[str] = []
    callbacks: list[dict[str, Any]] = []
    runner = web.AppRunner(backend_app(seen, callbacks), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("IVR_FLOW_BANK_API", url)
    monkeypatch.setenv("IVR_FLOW_ORDERS_API", url)
    yield Backend(url, seen, callbacks)
    await runner.cleanup()


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the repository's flows, for tests that edit them; telebanking's experiment
    is left out (`EXPERIMENT`)."""
    target = tmp_path / "flows"
    target.mkdir()
    for path in sorted((REPO / "flows").glob("*.yaml")):
        shutil.copy2(path, target / path.name)
    shutil.copytree(REPO / "flows" / "calendars", target / "calendars")  # holidays they name
    edit_file(target / "telebanking.yaml", EXPERIMENT, "")
    return target


# -- the server under test ---------------------------------------------------------------------


@dataclass
class Server:
    url: str
    app: web.Application
    config: Config
    runner: web.AppRunner
    admin_url: str  # the admin listener: /metrics, /healthz
    admin: web.AppRunner
    stopped: bool = False

    async def stop(self) -> None:
        """Stop the app: queued call records are written before this returns."""
        if not self.stopped:
            self.stopped = True
            await self.admin.cleanup()
            await self.runner.cleanup()

    async def metrics(self) -> str:
        """The Prometheus exposition, read from the admin listener."""
        headers = {"Authorization": f"Bearer {self.config.admin_token}"}
        async with aiohttp.ClientSession(
            headers=headers if self.config.admin_token else None
        ) as http:
            async with http.get(self.admin_url + "/metrics") as response:
                assert response.status == 200, await response.text()
                return await response.text()

    def edit_flow(self, name: str, old: str, new: str) -> list[str]:
        """Change a flow file of this server and reload; the ids of the flows that changed."""
        edit_file(self.config.flows / name, old, new)
        return self.app[FLOWS].reload()

    def set_hours(self, hours: str) -> None:
        """Telebanking's support hours (OPEN or CLOSED), so zero-out does not hang on the clock."""
        set_hours(self.config.flows, hours)
        assert self.app[FLOWS].reload() == ["telebanking"]

    def twilio(self) -> TwilioSim:
        assert self.config.auth_token is not None
        return TwilioSim(self.url, self.config.auth_token, self.config.public_url)

    async def records(self) -> list[CallRecord]:
        return await read_records(self.config.records_url)

    async def record(self, call_sid: str) -> CallRecord:
        """The call record of `call_sid`, once the background writer has written it."""

        async def find() -> CallRecord | None:
            return next((r for r in await self.records() if r.call_sid == call_sid), None)

        return await wait_until(find)


def set_hours(flows: Path, hours: str, name: str = "telebanking.yaml") -> None:
    """Telebanking's support hours in the flows directory `flows` (OPEN or CLOSED): tests
    of agents and of voicemail must not depend on the time they run at."""
    path = flows / name
    text, found = re.subn(r"^  support: .*$", f"  {hours}", path.read_text(), flags=re.M)
    assert found == 1, f"{name} has no support hours"
    write_file(path, text)


def edit_file(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must be there) by `new`; the file's mtime always moves on."""
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    write_file(path, text.replace(old, new))


def write_file(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    # a coarse file system clock could keep the mtime, and reload() compares mtimes
    os.utime(path, ns=(before, max(path.stat().st_mtime_ns, before + 1_000_000)))


async def read_records(where: Path | str) -> list[CallRecord]:
    """The call records in a SQLite file or behind a records URL (`IVR_RECORDS`); none
    while a SQLite file is not there yet."""
    url = f"sqlite://{where}" if isinstance(where, Path) else where
    if url.startswith("sqlite://") and not Path(url.removeprefix("sqlite://")).exists():
        return []
    records = open_records(url)
    try:
        return await records.all()
    finally:
        await records.close()


async def start_server(config: Config) -> Server:
    """The app on config's host and port, and its admin app on config's admin listener."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    admin = web.AppRunner(app[ADMIN], access_log=None)
    await admin.setup()
    await web.TCPSite(admin, *config.admin).start()
    url, admin_url = f"http://{config.host}:{config.port}", "http://{}:{}".format(*config.admin)
    return Server(url, app, config, runner, admin_url, admin)


MakeServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def make_server(
    backend: Backend, flows_dir: Path, tmp_path: Path
) -> AsyncIterator[MakeServer]:
    """Starts the real app on 127.0.0.1 and a free port: Config fields may be overridden.
    Records go to SQLite under tmp_path; every server started is stopped at the end."""
    started: list[Server] = []
    audio = tmp_path / "audio"
    audio.mkdir()
    write_wav(audio / "welcome.wav")

    async def make(**overrides: Any) -> Server:
        port = free_port()
        data = tmp_path / f"data{len(started) or ''}"
        first = tmp_path / "data" / KEY_FILE
        if started and first.exists():  # servers sharing sessions share the keys sealing them
            data.mkdir(exist_ok=True)
            shutil.copy2(first, data / KEY_FILE)
        config = Config(
            host="127.0.0.1",
            port=port,
            flows=flows_dir,
            audio=audio,
            data=data,
            auth_token=TOKEN,
            public_url=f"http://127.0.0.1:{port}",
            sessions="memory://",
            http_allow=("127.0.0.1:*",),
            watch=False,  # tests call app[FLOWS].reload() themselves: no timing
            admin=("127.0.0.1", free_port()),
            ws_rate=0,  # stream_sim streams faster than real time (tests set a rate to test it)
        )
        running = await start_server(replace(config, **overrides))
        started.append(running)
        return running

    yield make
    for running in started:
        await running.stop()


@pytest.fixture
def sessions() -> str | None:
    """The `server` fixture's session store; parametrize `sessions` to change it
    (None: the default, SQLite under the data directory)."""
    return "memory://"


@pytest.fixture
async def server(make_server: MakeServer, sessions: str | None) -> Server:
    return await make_server(sessions=sessions)


@pytest.fixture
async def sim(server: Server) -> AsyncIterator[TwilioSim]:
    async with server.twilio() as twilio:
        yield twilio


def write_wav(path: Path, seconds: float = 0.1) -> None:
    """A prompt recording as the audio directory holds them: 8 kHz mono, 16-bit."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


def metric(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` with these labels (among others) in a Prometheus
    text exposition; 0 when there is none. Series start at 0, so a first match alone could
    be a zero beside the one that counted."""
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += float(sample.value)
    return total


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Callable[[str], Ivr]]:
    """Makes `ivr serve` processes (not started); kills what is left at the end."""
    from tests.functional.processes import Ivr  # it imports this module's backend

    made: list[Ivr] = []

    def make(name: str) -> Ivr:
        data = tmp_path / name
        data.mkdir()
        server = Ivr(free_port(), data, tmp_path / f"{name}.log")
        made.append(server)
        return server

    yield make
    for server in made:
        if server.process is not None:
            await server.kill()
