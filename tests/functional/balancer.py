"""nginx as the load balancer in front of several `ivr serve` processes, for functional
tests: its configuration written to a temporary directory, run in the foreground, on a
free loopback port, with nothing under /etc, /var or /run."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port

NGINX_MISSING = "nginx is not installed: run `apt-get install -y nginx` (make test does this)"
START_WAIT = 10.0  # seconds for nginx to accept connections

# How the balancer passes webhooks on. A webhook a process took but never answered (it was
# killed) goes to the next process, POSTs included (`non_idempotent`): that is safe because
# every turn of a call is idempotent in ivr. A turn's webhook carries its number (`t=N`);
# a process that finds the call already past turn N answers the reply it saved for it
# without stepping again, and one that finds it at turn N steps from the session saved
# before: nothing of the killed attempt counts. What may happen twice is a backend request
# the killed process had sent (a GET lookup here; a flow's POST must tolerate a repeat).
# `error timeout` only: ivr answers every webhook 200 with TwiML, so a 5xx is no sign of
# a dead process (a 503 is /healthz saying a store is away: all processes say so alike).
CONFIG = """\
{user}worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream ivr {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://ivr;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 2s;
            proxy_read_timeout 14s;  # under Twilio's 15 s
        }}
    }}
}}
"""
# a process that refused a connection is left out for this long before it is tried again
SERVER = "        server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;"


def nginx_binary() -> str:
    """The nginx executable (Debian puts it in /usr/sbin, off a plain user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(NGINX_MISSING, pytrace=False)
    return found


@dataclass
class Nginx:
    """One nginx in front of `ports`; `url` is the address Twilio would use."""

    dir: Path
    ports: list[int]
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        # run as root, nginx's workers would switch to `nobody`, who cannot use tmp_path
        user = "user root;\n" if os.geteuid() == 0 else ""
        servers = "\n".join(SERVER.format(port=p) for p in self.ports)
        return CONFIG.format(user=user, dir=self.dir, servers=servers, port=self.port)

    async def start(self) -> None:
        binary = nginx_binary()
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        command = [binary, "-p", str(self.dir), "-c", str(conf), "-g", "daemon off;"]
        with (self.dir / "stderr.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
            )
        await self._ready()

    async def _ready(self) -> None:
        deadline = time.monotonic() + START_WAIT
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError(f"nginx exited: {self.process.returncode}\n{self.logs}")
                try:
                    async with http.get(self.url + "/healthz"):
                        return  # nginx answers (whatever the processes behind it say)
                except aiohttp.ClientConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"nginx not ready in {START_WAIT:g} s\n{self.logs}")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()  # SIGTERM: nginx's fast shutdown
            await asyncio.wait_for(self.process.wait(), 10)
        self.process = None

    @property
    def logs(self) -> str:
        parts = [self.dir / "stderr.log", self.dir / "error.log"]
        return "".join(p.read_text(errors="replace") for p in parts if p.exists())

    def retried(self) -> int:
        """How many webhooks nginx passed to the next process after one failed."""
        log = self.dir / "error.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        # one error line per webhook a process failed (closed, reset, refused)
        return sum("[error]" in line and "upstream:" in line for line in text.splitlines())
