"""The servers of the webhook benchmark as pinned subprocesses, and their CPU from /proc."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from _caller import PUBLIC_URL, TOKEN
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVER_CORE, DRIVER_CORE = 0, 1  # the bank backend shares the driver's core
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (found once: reading all of /proc takes milliseconds)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        tree.append(p := todo.pop())
        todo += children.get(p, [])
    return tree


def usage(pids: list[int]) -> tuple[float, float]:
    """CPU seconds (user+sys, all threads, reaped children too) of processes, and the seconds
    their threads spent runnable but waiting for a core."""
    cpu = wait = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        # fields[11:15] are utime, stime, cutime, cstime (stat fields 14-17)
        cpu += sum(int(f) for f in fields[11:15]) / CLK_TCK
        for task in tasks:
            with contextlib.suppress(OSError):  # schedstat: on-cpu ns, run-queue ns, slices
                wait += int(Path(f"/proc/{p}/task/{task}/schedstat").read_text().split()[1]) / 1e9
    return cpu, wait


def core_busy(core: int) -> float:
    """CPU seconds a core has spent busy (any process) since boot."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            user, nice, system, _, _, irq, softirq, steal = map(int, line.split()[1:9])
            return (user + nice + system + irq + softirq + steal) / CLK_TCK
    raise LookupError(f"no cpu{core} in /proc/stat")


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    log: Path
    core: int = SERVER_CORE
    proc: subprocess.Popen[bytes] | None = None

    def start(self, nice: int = 0) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(self.core), *self.argv],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=(lambda: os.setpriority(os.PRIO_PROCESS, 0, nice)) if nice else None,
            )
        if nice:
            # a new session is a new autogroup, which the scheduler weighs against other
            # sessions' groups by the group's own niceness, not by the process's
            Path(f"/proc/{self.proc.pid}/autogroup").write_text(str(nice))

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not come up on port {self.port}:\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # aiohttp shuts down cleanly on SIGTERM
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def servers(tmp: Path, sessions: str | None, extra_env: list[str]) -> tuple[Server, list[Server]]:
    """The bank backend, then ivr, bare and naive, ready to start."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TWILIO_AUTH_TOKEN": TOKEN}
    bank_port = free_port()
    bank = Server(
        "bank",
        [PYTHON, "bench/_bank.py", "--port", str(bank_port)],
        bank_port,
        env,
        tmp / "bank.log",
        core=DRIVER_CORE,
    )
    flows = tmp / "flows"
    # IVR_BENCH_FLOWS=bench/frozen: the frozen flow, to compare two versions of ivr on it
    shutil.copytree(Path(os.environ.get("IVR_BENCH_FLOWS", ROOT / "flows")), flows)
    ivr_port = free_port()
    ivr_env = {
        **env,
        "IVR_LOG_LEVEL": "WARNING",
        "IVR_HTTP_ALLOW": f"127.0.0.1:{bank_port}",
        "IVR_FLOW_BANK_API": f"http://127.0.0.1:{bank_port}",
        "IVR_DATA": str(tmp / "data"),
        # keys of this run's own (the server would make them, with a warning)
        "IVR_CUSTOMER_KEY": secrets.token_urlsafe(32),
        "IVR_DATA_KEY": Fernet.generate_key().decode(),
    }
    for name in ("IVR_SESSIONS", "IVR_RECORDS", "IVR_INSECURE", "IVR_TRUST_PROXY"):
        ivr_env.pop(name, None)  # this benchmark is of the defaults: SQLite, signatures checked
    for item in extra_env:
        name, _, value = item.partition("=")
        ivr_env[name] = value
    ivr = Server(
        "ivr",
        [
            str(Path(PYTHON).parent / "ivr"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(ivr_port),
            "--flows",
            str(flows),
            "--data",
            str(tmp / "data"),
            "--public-url",
            PUBLIC_URL,
            "--no-watch",
            "--admin",  # a free port: 8081 may be another server's
            f"127.0.0.1:{free_port()}",
            *(["--sessions", sessions] if sessions else []),
        ],
        ivr_port,
        ivr_env,
        tmp / "ivr.log",
    )
    bare_port, naive_port = free_port(), free_port()
    bare = Server(
        "bare",
        [PYTHON, "bench/_bare.py", "--port", str(bare_port)],
        bare_port,
        env,
        tmp / "bare.log",
    )
    naive = Server(
        "naive",
        [PYTHON, "bench/_naive.py", "--port", str(naive_port), "--public-url", PUBLIC_URL],
        naive_port,
        env,
        tmp / "naive.log",
    )
    return bank, [ivr, bare, naive]


@contextmanager
def running(all_servers: list[Server], nice: int) -> Iterator[None]:
    """Start every server; stop every one on the way out, whatever happened."""
    with ExitStack() as stack:
        for server in all_servers:
            stack.callback(server.stop)
            server.start(nice)
        for server in all_servers:
            server.wait_ready()
        yield


@contextmanager
def niceness(nice: int) -> Iterator[None]:
    """The driver's autogroup (its terminal session's) at `nice` while it runs, then as it was."""
    if not nice:
        yield
        return
    group = Path("/proc/self/autogroup")
    before = group.read_text().split()[-1]  # "/autogroup-42 nice 0"
    group.write_text(str(nice))
    try:
        yield
    finally:
        group.write_text(before)
