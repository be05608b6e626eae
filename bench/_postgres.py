"""A throwaway PostgreSQL server for the benchmarks, started as the tests' fixture starts
one (tests/conftest.py): initdb into a temporary directory, the `postgres` user when run
as root, loopback only, durability off."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_WAIT = 30  # seconds for pg_ctl to see the server accept connections
# a throwaway server: durability off, as in the tests; memory for a million-row table
SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=4GB"
)


def bindir() -> Path:
    """The newest installed PostgreSQL server's binaries: Debian keeps them off PATH."""
    found = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    versions = sorted((int(p.parts[-3]), p.parent) for p in found if p.parts[-3].isdigit())
    if versions:
        return versions[-1][1]
    initdb = shutil.which("initdb")
    if initdb is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql")
    return Path(initdb).resolve().parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres(keep: Path | None = None) -> Iterator[str]:
    """A running server; yields the URL of its `postgres` database. With `keep`, its data
    directory lives there and is kept for the next run."""
    binaries = bindir()
    workdir = keep or Path(tempfile.mkdtemp(prefix="ivr-bench-pg-"))
    workdir.mkdir(parents=True, exist_ok=True)
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log, port = workdir / "data", workdir / "server.log", _port()
    pg_ctl = [*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-s", "-w"]
    listen = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} {SETTINGS}"
    try:
        if not (data / "PG_VERSION").exists():
            initdb = [*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "postgres"]
            subprocess.run(
                [*initdb, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                check=True,
                capture_output=True,
            )
        start = ["-t", str(START_WAIT), "-l", str(log), "-o", listen, "start"]
        subprocess.run(pg_ctl + start, check=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True)
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
