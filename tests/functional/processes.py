"""`ivr serve` as real processes for functional tests: started, killed, and given the
environment that points them at the test backend."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ivr.keys import Keys
from tests.conftest import free_port
from tests.functional.conftest import TOKEN, Backend
from tests.functional.twilio_sim import TwilioSim

IVR = Path(sys.executable).with_name("ivr")
# seconds for a server process to answer /healthz: importing takes 20 s on a busy machine
START_WAIT = 60.0
STOP_WAIT = 15.0


@dataclass
class Ivr:
    """One `ivr serve` process."""

    port: int
    data: Path
    log: Path
    process: asyncio.subprocess.Process | None = None
    admin_port: int = field(default_factory=free_port)  # its own: processes run side by side

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    async def start(
        self, flows: Path, public_url: str, env: dict[str, str], watch: bool = False
    ) -> None:
        command = [str(IVR), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--admin", f"127.0.0.1:{self.admin_port}"]
        command += ["--data", str(self.data), "--flows", str(flows), "--audio", str(self.data)]
        command += ["--public-url", public_url] + ([] if watch else ["--no-watch"])
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command, env=env, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
            )
        await self._ready()

    async def _ready(self) -> None:
        deadline = time.monotonic() + START_WAIT
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"ivr serve exited: {self.process.returncode}\n{self.logs}"
                    )
                try:
                    async with http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"ivr serve not ready in {START_WAIT:g} s\n{self.logs}")
                await asyncio.sleep(0.05)

    async def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await self.exited()

    async def exited(self) -> int:
        """The exit code, once the process has ended (a second signal would cut its shutdown)."""
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), STOP_WAIT)
        self.process = None
        return code

    @property
    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# processes sharing sessions share the keys that seal them, as they must in production
KEYS = Keys.for_tests()


def server_env(backend: Backend, sessions: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        TWILIO_AUTH_TOKEN=TOKEN,
        IVR_CUSTOMER_KEY=KEYS.customer.decode(),
        IVR_DATA_KEY=KEYS.data.decode(),
        IVR_HTTP_ALLOW="127.0.0.1:*",
        IVR_FLOW_BANK_API=backend.url,
        IVR_FLOW_ORDERS_API=backend.url,
        IVR_LOG_LEVEL="INFO",
    )
    if sessions:
        env["IVR_SESSIONS"] = sessions
    return env


def twilio(base_url: str, public_url: str) -> TwilioSim:
    # a new connection per webhook, as Twilio does: none outlives a killed server
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    return TwilioSim(base_url, TOKEN, public_url, session=http)
