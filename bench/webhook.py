"""Webhook benchmark: server CPU per Twilio turn of `ivr serve`, beside a bare and a naive app.

One run starts three servers pinned to core 0 -- `ivr serve` (the real CLI:
SQLite sessions, signature checks, the telebanking flow), a bare aiohttp app
answering constant TwiML (`_bare.py`) and a naive aiohttp app that checks each
signature and builds each `<Gather>` with the twilio library (`_naive.py`) --
then drives each in turn from core 1 with the same simulated Twilio calls.
Every call has its own CallSid, every request is signed the way Twilio signs
it, and each call walks a real multi-turn path of flows/telebanking.yaml (DTMF,
speech, silence, mistyped input, a transfer), following the action URL of each
TwiML reply, and ends with a status callback.

`ivr+short` and `naive+short` are short calls (the menu, a silence, 0 for an agent):
the calls where per-call work (a session made, a record written) weighs most.

`ivr` walks the phone tree: the path the targets are set for (signature check,
session read and write, engine step, TwiML, metrics), which is also all the bare
and naive apps are asked to do. `ivr+api` is the same server on self-service
paths whose `http` nodes call a local bank backend (0.24 calls a turn): shown
for what backend calls cost, with no target.

The figure that matters is server CPU (user+sys of all its threads, from /proc)
per turn served in a measured window with every call slot busy, after a
warm-up, compared with the bare app's in the same run; see docs/performance.md.

    .venv/bin/python bench/webhook.py [--calls N] [--concurrency 50] [--rounds R]
        [--think 0,50]  # load phases: callers' mean pause before each webhook, in ms
        [--nice -10]  # root, on a shared machine: other sessions yield the cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _caller import PHONE_TREE, SELF_SERVICE, SHORT, drive
from _servers import (
    DRIVER_CORE,
    SERVER_CORE,
    Server,
    core_busy,
    niceness,
    process_tree,
    running,
    servers,
    usage,
)

MIXES = {"": PHONE_TREE, "api": SELF_SERVICE, "short": SHORT}  # by the label's +suffix
TARGET_VS_BARE = 2.5  # ivr CPU per turn at most this many times the bare app's
TARGET_P99_MS = 25.0


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    turns: int
    errors: int
    seconds: float
    server_cpu: float
    driver_cpu: float
    bank_cpu: float
    others_cpu: float  # what other processes took from the server's core meanwhile
    waited: float  # the server's threads runnable but not running
    p50_ms: float
    p99_ms: float
    problems: list[str]

    @property
    def cpu_us_per_turn(self) -> float:
        return 1e6 * self.server_cpu / max(1, self.turns)

    @property
    def turns_per_s(self) -> float:
        return self.turns / self.seconds


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] if ordered else 0.0


@dataclass(frozen=True)
class Snapshot:
    at: float
    server_cpu: float
    server_wait: float
    bank_cpu: float
    core_busy: float
    driver_cpu: float


def measure(
    server: Server,
    bank: Server,
    args: argparse.Namespace,
    first: int,
    think_ms: float,
    label: str,
    warmup: int,
) -> Result:
    trees = process_tree(server.pid), process_tree(bank.pid)
    marks: list[Snapshot] = []

    def window(opens: bool) -> None:
        (cpu, wait), (bank_cpu, _) = usage(trees[0]), usage(trees[1])
        busy, driver = core_busy(SERVER_CORE), time.process_time()
        marks.append(Snapshot(time.perf_counter(), cpu, wait, bank_cpu, busy, driver))

    check, think = server.name == "ivr", think_ms / 1000
    mix = MIXES[label.partition("+")[2]]
    load = asyncio.run(
        drive(server.port, warmup, args.calls, args.concurrency, check, window, first, think, mix)
    )
    a, b = marks
    cpu = b.server_cpu - a.server_cpu
    return Result(
        label,
        load.turns,
        load.errors,
        b.at - a.at,
        cpu,
        b.driver_cpu - a.driver_cpu,
        b.bank_cpu - a.bank_cpu,
        max(0.0, b.core_busy - a.core_busy - cpu),
        b.server_wait - a.server_wait,
        1000 * percentile(load.latencies, 0.50),
        1000 * percentile(load.latencies, 0.99),
        load.problems,
    )


def table(results: list[Result]) -> str:
    head = (
        f"{'server':<12}{'turns':>8}{'errors':>8}{'turns/s':>9}{'CPU µs/turn':>13}"
        f"{'server core':>13}{'others':>8}{'waited':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'driver':>8}{'bank':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.server:<12}{r.turns:>8}{r.errors:>8}{r.turns_per_s:>9.0f}"
            f"{r.cpu_us_per_turn:>13.0f}{100 * r.server_cpu / r.seconds:>12.0f}%"
            f"{100 * r.others_cpu / r.seconds:>7.0f}%{100 * r.waited / r.seconds:>7.0f}%"
            f"{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{100 * r.driver_cpu / r.seconds:>7.0f}%"
            f"{100 * r.bank_cpu / r.seconds:>6.0f}%"
        )
    return "\n".join(lines)


def ratios(results: list[Result]) -> tuple[float, float]:
    """ivr's CPU per turn over bare's and over naive's."""
    by = {r.server: r.cpu_us_per_turn for r in results}
    return by["ivr"] / by["bare"], by["ivr"] / by["naive"]


def verdict(results: list[Result], concurrency: int, think: float) -> tuple[list[str], bool]:
    ivr = next(r for r in results if r.server == "ivr")
    vs_bare, vs_naive = ratios(results)
    # with no pause, each call posts again as soon as it is answered: by Little's law
    # the mean latency is then the calls in flight over the throughput, whatever the server
    queued = 1000 * concurrency / ivr.turns_per_s
    checks = [
        (f"ivr/bare CPU per turn   {vs_bare:5.2f}x  (target <= {TARGET_VS_BARE}x)",
         vs_bare <= TARGET_VS_BARE),
        (f"ivr/naive CPU per turn  {vs_naive:5.2f}x  (target < 1x)", vs_naive < 1.0),
        (f"ivr p99 latency        {ivr.p99_ms:5.1f} ms (target < {TARGET_P99_MS:g} ms "
         f"at {concurrency} concurrent calls)", ivr.p99_ms < TARGET_P99_MS),
    ]  # fmt: skip
    lines = [f"{'PASS' if ok else 'MISS'}  {text}" for text, ok in checks]
    by = {r.server: r for r in results}
    if {"ivr+short", "naive+short"} <= by.keys():
        short = by["ivr+short"].cpu_us_per_turn / by["naive+short"].cpu_us_per_turn
        checks.append((f"short calls, ivr/naive  {short:5.2f}x  (target < 1x)", short < 1.0))
        lines.insert(2, f"{'PASS' if short < 1 else 'MISS'}  {checks[-1][0]}")
    if "ivr+api" in by:
        api = by["ivr+api"]
        lines.append(
            f"      ivr+api/bare {api.cpu_us_per_turn / by['bare'].cpu_us_per_turn:.2f}x, p99 "
            f"{api.p99_ms:.1f} ms: with backend calls (no target; neither app makes any)"
        )
    if think == 0:
        lines.append(f"      ({concurrency} calls / ivr's turns/s = {queued:.1f} ms: the mean "
                     "latency of this closed loop, whatever the server does)")  # fmt: skip
    return lines, all(ok for _, ok in checks)


def call_records(data: Path) -> int:
    with sqlite3.connect(data / "calls.db") as db:
        return int(db.execute("SELECT count(*) FROM calls").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1500, help="calls per load phase")
    parser.add_argument("--warmup", type=int, default=150, help="calls before each phase")
    parser.add_argument(
        "--settle",
        type=int,
        default=1500,
        help="more warm-up calls before a server's first measurement: a fresh process spends "
        "its first seconds growing its heap, its SQLite files and the WAL (+40%% CPU a turn)",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="calls in progress at once")
    parser.add_argument(
        "--think",
        default="0,50",
        metavar="MS[,MS...]",
        help="mean pause of a caller before each webhook after the first (exponential), one "
        "load phase per value; 0: each call posts its next turn as soon as it is answered "
        "(saturation), 50: the server about 80%% busy (a real caller pauses for seconds)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="each server this many times per phase"
    )
    parser.add_argument(
        "--only",
        default="ivr,ivr+api,ivr+short,bare,naive,naive+short",
        help="servers to drive, in order (+api: self-service mix, +short: short calls)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the servers and the driver (process and autogroup); below 0 (root "
        "only) keeps a shared machine's other processes from taking their cores",
    )
    parser.add_argument(
        "--sessions", help="ivr's session store (default: SQLite in a temporary directory)"
    )
    parser.add_argument(
        "--ivr-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for ivr serve, for experiments (IVR_INSECURE=1)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    try:
        thinks = [float(t) for t in args.think.split(",")]
    except ValueError:
        parser.error("--think takes milliseconds, comma-separated")
    if args.calls < 1 or args.concurrency < 1 or min(args.warmup, args.settle, *thinks) < 0:
        parser.error("--calls, --concurrency at least 1; --warmup, --settle, --think 0+")
    if len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset"):
        print("needs two cores and taskset (util-linux)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {DRIVER_CORE})
    # Ctrl-C and SIGTERM both unwind through `running`, which stops every server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    wanted = args.only.split(",")
    phases: dict[float, list[list[Result]]] = {think: [] for think in thinks}
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp, niceness(args.nice):
        bank, targets = servers(Path(tmp), args.sessions, args.ivr_env)
        by_name = {s.name: s for s in targets}
        if unknown := [n for n in wanted if n.partition("+")[0] not in by_name]:
            parser.error(f"--only: no server {', '.join(unknown)}")
        drives = [(name, by_name[name.partition("+")[0]]) for name in wanted]
        targets = list({id(s): s for _, s in drives}.values())
        started = time.perf_counter()
        with running([bank, *targets], args.nice):
            print(
                f"servers on core {SERVER_CORE}: "
                + ", ".join(f"{s.name} pid {s.pid}" for s in targets)
                + f"; driver pid {os.getpid()} and bank pid {bank.pid} on core {DRIVER_CORE}",
                flush=True,
            )
            first, settled, warmed = 0, set(), 0
            for think, rounds in phases.items():
                for n in range(args.rounds):
                    results = []
                    for label, server in drives:
                        warmup = args.warmup + (0 if server.name in settled else args.settle)
                        settled.add(server.name)
                        results.append(measure(server, bank, args, first, think, label, warmup))
                        first += warmup + args.calls
                        warmed += warmup if server.name == "ivr" else 0
                    rounds.append(results)
                    if args.rounds > 1:
                        print(f"\n{_phase(think)}, round {n + 1}\n{table(results)}", flush=True)
        records, ivr_log = 0, []
        ivr_drives = sum(server.name == "ivr" for _, server in drives)
        if ivr_drives:
            records = call_records(Path(tmp) / "data")
            ivr_log = (Path(tmp) / "ivr.log").read_text(errors="replace").splitlines()

    total = time.perf_counter() - started
    print(
        f"\n{args.concurrency} calls at a time; per server and round {args.warmup} warm-up "
        f"calls (and {args.settle} more before a server's first), then {args.calls} measured "
        f"ones; {total:.0f} s in all"
    )
    compared = {"ivr", "bare", "naive"} <= set(wanted)
    met = True
    for think, rounds in phases.items():
        met = report(think, rounds, args, compared) and met
    print(
        f"\nserver core: server CPU / wall time (core {SERVER_CORE}); others: other processes'\n"
        "CPU on that core; waited: the server's threads runnable but not running (behind other\n"
        f"processes or each other); driver: the driver's CPU / wall time (core {DRIVER_CORE}; "
        "near\n100% means the driver, not the server, set the pace); bank: the backend (same core)"
    )
    # wrong answers or lost records fail the run; missed targets only with --strict
    correct = all(r.errors == 0 for rounds in phases.values() for rs in rounds for r in rs)
    if ivr_drives:
        expected = ivr_drives * len(thinks) * args.rounds * args.calls + warmed
        print(f"ivr call records written: {records} of {expected} calls")
        print(f"ivr serve logged {len(ivr_log)} line(s) at WARNING and above")
        for line in ivr_log[:3]:
            print(f"  {line[:300]}")
        correct = correct and records == expected
    print(f"answers and records: {'correct' if correct else 'WRONG (see above)'}")
    if args.json:
        rows = {
            str(think): [
                [{**r.__dict__, "cpu_us_per_turn": r.cpu_us_per_turn} for r in rs] for rs in rounds
            ]
            for think, rounds in phases.items()
        }
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if correct and (met or not args.strict) else 1


def _phase(think: float) -> str:
    if think == 0:
        return "no pause between a call's webhooks (saturation)"
    return f"callers pausing {think:g} ms on average before each webhook"


def report(
    think: float, rounds: list[list[Result]], args: argparse.Namespace, compared: bool
) -> bool:
    """One phase's table (its median round by ivr/bare) and verdict; True when targets are met."""
    final = rounds[-1]
    if compared and len(rounds) > 1:
        final = sorted(rounds, key=lambda rs: ratios(rs)[0])[(len(rounds) - 1) // 2]
    median = f"; the round with the median ivr/bare of {len(rounds)}" if len(rounds) > 1 else ""
    print(f"\n== {_phase(think)}{median}")
    print(table(final))
    if any(min(r.others_cpu, r.waited) > 0.1 * r.seconds for r in final):
        hint = f"even at --nice {args.nice}" if args.nice else "try --nice -10 as root"
        print(
            "warning: other processes kept the servers waiting for their core: figures are "
            f"noisy ({hint}); compare ratios from one run, or use --rounds"
        )
    for r in final:
        for problem in r.problems:
            print(f"  {r.server}: {problem}")
    if not compared:
        return True
    lines, met = verdict(final, args.concurrency, think)
    print("\n".join(lines))
    if len(rounds) > 1:
        print("ivr/bare per round: " + ", ".join(f"{ratios(rs)[0]:.2f}" for rs in rounds))
        print("ivr/naive per round: " + ", ".join(f"{ratios(rs)[1]:.2f}" for rs in rounds))
    return met


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers are stopped by then
        sys.exit(130)
