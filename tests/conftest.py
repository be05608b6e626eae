"""Shared fixtures: a real redis-server for the tests that need one, and free loopback ports."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_MISSING = (
    "redis-server is not installed: run `apt-get install -y redis-server` (make test does this)"
)
REDIS_START_WAIT = 10.0  # seconds for redis-server to answer PING before the fixture fails


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the whole test session; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    logfile = workdir / "redis.log"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--dir", str(workdir), "--logfile", str(logfile)]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_ping(url, process, logfile)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The shared redis-server's URL, its database emptied for this test."""
    with redis.Redis.from_url(redis_server) as client:
        client.flushdb()
    return redis_server


def _wait_for_ping(url: str, process: subprocess.Popen[bytes], logfile: Path) -> None:
    deadline = time.monotonic() + REDIS_START_WAIT
    with redis.Redis.from_url(url, socket_connect_timeout=0.5) as client:
        while True:
            if process.poll() is not None:
                log = logfile.read_text(errors="replace") if logfile.exists() else ""
                pytest.fail(f"redis-server exited with code {process.returncode}:\n{log}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING at {url} in {REDIS_START_WAIT:g} s")
            time.sleep(0.05)
