"""`ivr report` over a million call records, on SQLite and on PostgreSQL: the target is the
whole report (every section) under 2 s on each, aggregated in SQL.

Generates N calls (default 1,000,000) over 30 days with the variety of a real bank line:
telebanking's two versions and its voice variant in the voice_vs_dtmf experiment, the
order line, walks through their nodes (menus, account numbers, backend failures,
zero-outs, callbacks, hang-ups anywhere, repeats), DTMF and speech inputs with misses,
and writes them through the stores' own `add` in batches, as the server's writer does, so
the rollups are what a server would have written. PostgreSQL is started by this script
(as the tests start it). Then it times `ivr report` (the command, and the queries alone)
and `ivr calls list` with filters, on each store.

    .venv/bin/python bench/report.py                  # 1M calls, both stores, ~15 min
    .venv/bin/python bench/report.py --calls 100000 --stores sqlite
    .venv/bin/python bench/report.py --dir /tmp/rb    # keep the databases; reused next time

Not run in CI: bench/ is for long runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _postgres import postgres  # noqa: E402

from ivr.keys import Keys  # noqa: E402
from ivr.report import compose  # noqa: E402
from ivr.report.calls import Listing, latest  # noqa: E402
from ivr.report.query import Filters, connect  # noqa: E402
from ivr.store import open_records  # noqa: E402
from ivr.store.records import CallRecord  # noqa: E402

TARGET = 2.0  # seconds for the whole report
DAYS = 30
START = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
NEW_VERSION_DAY = 15  # telebanking version 4 from this day on
HOURLY = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 12, 13, 13, 12, 11, 9, 7, 5, 4, 3, 2, 1]


class Walk:
    """One call's way through a flow: the path, inputs, tasks, time, and how it ended."""

    def __init__(self, rng: random.Random, speech: float) -> None:
        self.rng, self.speech = rng, speech
        self.path: list[str] = []
        self.inputs: dict[str, int] = {}
        self.tasks: list[str] = []
        self.seconds = 0.0
        self.outcome: str | None = None
        self.reason: str | None = None
        self.reason_at: str | None = None
        self.queue: str | None = None
        self.error: str | None = None

    def go(self, node: str, talk: float = 3.0) -> None:
        self.path.append(node)
        self.seconds += self.rng.uniform(0.5, 1.5) * talk

    def listen(self, node: str, miss: float = 0.1, hangup: float = 0.02) -> str:
        """'match', 'hangup' or 'fail' (retries ran out), counting every input."""
        rng = self.rng
        for _ in range(3):
            self.seconds += rng.uniform(1.5, 6.0)
            if rng.random() < hangup:
                self.outcome = "abandoned"
                return "hangup"
            mode = "speech" if rng.random() < self.speech else "dtmf"
            roll = rng.random()
            if roll < 0.05:
                key = f"{node}:no_input"
                self.seconds += 5
            elif roll < 0.05 + miss * (1.6 if mode == "speech" else 1.0):
                key = f"{node}:{mode}:no_match"
            else:
                self.inputs[f"{node}:{mode}:match"] = self.inputs.get(f"{node}:{mode}:match", 0) + 1
                return "match"
            self.inputs[key] = self.inputs.get(key, 0) + 1
        self.reason, self.reason_at = "on_fail", node
        return "fail"

    def agent(self) -> None:
        """check_hours, then an agent, or the voicemail when closed."""
        self.go("check_hours", 0.1)
        if self.rng.random() < 0.85:
            self.go("agent", 2)
            self.outcome, self.queue = "transferred", "support"
            return
        self.go("closed", 8)
        roll = self.rng.random()
        if roll < 0.6:  # a callback request
            self.tasks.append("callback_requested")
            self.outcome, self.reason, self.reason_at = "transferred", "callback", "closed"
        elif roll < 0.85:
            self.outcome = "contained"
        else:
            self.outcome = "abandoned"


def bank(w: Walk) -> None:
    rng = w.rng
    w.go("welcome")
    loops = 0
    while w.outcome is None:
        w.go("main", 6)
        heard = w.listen("main", miss=0.12, hangup=0.04)
        if heard == "hangup":
            return
        if heard == "fail":
            return w.agent()
        roll = rng.random()
        if roll < 0.16:  # zero-out
            w.reason, w.reason_at = "global", "main"
            return w.agent()
        task = "balance" if roll < 0.58 else "block" if roll < 0.72 else "transactions"
        w.go("ask_account", 4)
        heard = w.listen("ask_account", miss=0.15, hangup=0.03)
        if heard != "match":
            return w.agent() if heard == "fail" else None
        w.go("lookup", 0.2)
        if rng.random() < 0.03:
            w.reason, w.reason_at = "on_error", "lookup"
            w.go("backend_down", 2)
            return w.agent()
        w.go("route", 0)
        if task == "block":
            w.go("confirm_block", 5)
            heard = w.listen("confirm_block", miss=0.05)
            if heard != "match":
                return w.agent() if heard == "fail" else None
            if rng.random() < 0.85:
                w.go("block_card", 0.3)
                w.go("blocked", 4)
                w.tasks.append("card_blocked")
        else:
            w.go("balance" if task == "balance" else "transactions", 5)
            w.tasks.append("balance_inquiry" if task == "balance" else "transactions")
        w.go("anything_else", 4)
        if rng.random() < 0.3:  # heard what they called for and hung up
            w.outcome = "abandoned"
            return
        heard = w.listen("anything_else", miss=0.05, hangup=0.0)
        if heard == "fail" or rng.random() > 0.12 or loops >= 2:
            w.go("goodbye", 2)
            w.outcome = "contained"
            return
        loops += 1


def orders(w: Walk) -> None:
    rng = w.rng
    w.go("welcome")
    w.go("ask_order", 4)
    heard = w.listen("ask_order", miss=0.12, hangup=0.04)
    if heard != "match":
        if heard == "fail":
            w.go("agent", 2)
            w.outcome, w.queue = "transferred", "orders"
        return
    w.go("lookup", 0.2)
    if rng.random() < 0.04:
        w.reason, w.reason_at = "on_error", "lookup"
        w.go("backend_down", 2)
        w.go("agent", 2)
        w.outcome, w.queue = "transferred", "orders"
        return
    w.go("by_status", 0)
    w.go(rng.choice(("shipped", "shipped", "delivered", "processing", "unknown")), 6)
    w.tasks.append("order_status")
    w.go("anything_else", 4)
    if rng.random() < 0.25:
        w.outcome = "abandoned"
        return
    w.listen("anything_else", miss=0.05, hangup=0.0)
    w.go("goodbye", 2)
    w.outcome = "contained"


class Generator:
    """Calls with the variety of a real line; the same seed gives the same calls."""

    def __init__(self, keys: Keys, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        # sealing is ~30 µs a field: a few sealed values stand for a million callers
        self.callers = [keys.seal(f"+1555{n:07d}") for n in range(64)]
        self.customers = [keys.customer_id(f"+1555{n:07d}") for n in range(64)]
        lines = [
            [0.0, "welcome", "say"],
            [0.4, "main", "prompt"],
            [6.1, "main", "dtmf", "match", "1"],
        ]
        self.transcripts = [keys.seal(json.dumps(lines[: i + 1])) for i in range(3)]
        self.hours = [h for h, weight in enumerate(HOURLY) for _ in range(weight)]

    def calls(self, count: int) -> Iterator[CallRecord]:
        for n in range(count):
            yield self.call(n)

    def call(self, n: int) -> CallRecord:
        rng = self.rng
        day = rng.randrange(DAYS)
        started = START + day * 86400 + rng.choice(self.hours) * 3600 + rng.uniform(0, 3600)
        experiment = variant = ""
        if rng.random() < 0.7:
            experiment = "voice_vs_dtmf"
            variant = "telebanking" if rng.random() < 0.5 else "telebanking_voice"
            flow_id, walk_of = variant, bank
            version = ("3" if day < NEW_VERSION_DAY else "4") if variant == "telebanking" else "1"
            speech = 0.15 if variant == "telebanking" else 0.75
        else:
            flow_id, version, walk_of, speech = "order_status", "2", orders, 0.3
        walk = Walk(rng, speech)
        walk_of(walk)
        if rng.random() < 0.005:  # a technical failure somewhere along the way
            walk.outcome, walk.error = "failed", "backend answer could not be read"
        who = rng.randrange(len(self.callers))
        transferred = walk.outcome == "transferred"
        return CallRecord(
            call_sid=f"CA{n:032x}",
            flow_id=flow_id,
            flow_version=version,
            started_at=started,
            ended_at=started + walk.seconds,
            duration=round(walk.seconds, 3),
            outcome=walk.outcome or "failed",
            channel="sms" if flow_id == "order_status" and rng.random() < 0.05 else "voice",
            direction="outbound" if rng.random() < 0.03 else "inbound",
            experiment=experiment,
            variant=variant,
            customer=self.customers[who],
            caller=self.callers[who],
            reason=(walk.reason or "node") if transferred else None,
            reason_detail=walk.reason_at if transferred else None,
            transfer_from=(walk.reason_at or walk.path[-2]) if transferred else None,
            queue=walk.queue,
            tasks=tuple(walk.tasks),
            path=tuple(walk.path),
            inputs=walk.inputs,
            status="completed",
            error=walk.error,
            transcript=self.transcripts[min(len(walk.path), 3) - 1],
        )


def count(url: str) -> int:
    try:
        with connect(url) as reader:
            return int(reader.rows("SELECT COUNT(*) FROM calls")[0][0])
    except Exception:
        return 0


async def fill(urls: list[str], calls: int, batch: int, keys: Keys) -> dict[str, float]:
    """Write `calls` records to every store in `urls`, in batches through `add`; the seconds
    each store's writes took."""
    stores = [open_records(url) for url in urls]
    spent = dict.fromkeys(urls, 0.0)
    generated = Generator(keys).calls(calls)
    done = 0
    began = time.monotonic()
    try:
        while done < calls:
            records = [next(generated) for _ in range(min(batch, calls - done))]
            for url, store in zip(urls, stores, strict=True):
                t0 = time.perf_counter()
                await store.add(records)
                spent[url] += time.perf_counter() - t0
            done += len(records)
            if done % (batch * 50) == 0 or done == calls:
                rate = done / (time.monotonic() - began)
                print(f"  {done:>9,} calls written ({rate:,.0f}/s)", flush=True)
    finally:
        for store in stores:
            await store.close()
    return spent


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(first, median of the rest or the first) seconds of `fn`."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times[1:] or times)


def command(*args: str) -> Callable[[], object]:
    def run() -> None:
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "ivr"), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "IVR_FLOWS": str(ROOT / "flows")},
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"ivr {' '.join(args)} failed: {done.stderr}")

    return run


def measure(url: str, name: str, rounds: int, tmp: Path) -> list[tuple[str, str, float, float]]:
    flows = ROOT / "flows"
    last_week = datetime.fromtimestamp(START + (DAYS - 7) * 86400, UTC).strftime("%Y-%m-%d")
    rows: list[tuple[str, str, float, float]] = []

    def add(what: str, fn: Callable[[], object]) -> None:
        first, median = timed(fn, rounds)
        rows.append((name, what, first, median))
        print(f"  {name:<10} {what:<62} {first:7.3f} s  {median:7.3f} s", flush=True)

    with connect(url) as reader:
        add("report, queries only (all sections)", lambda: compose.report(reader, Filters(), flows))
        add(
            "report, queries only: --flow telebanking --since last week",
            lambda: compose.report(
                reader,
                Filters(
                    window=compose.Window.of(START + (DAYS - 7) * 86400, None),
                    flow_id="telebanking",
                ),
                flows,
            ),
        )
    add("ivr report (the command, all sections)", command("report", "--records", url))
    add("ivr report --json", command("report", "--records", url, "--json"))
    add(
        "ivr report --html (with charts)",
        command("report", "--records", url, "--html", str(tmp / f"{name}.html")),
    )
    add(
        "ivr report --experiment voice_vs_dtmf",
        command("report", "--records", url, "--experiment", "voice_vs_dtmf"),
    )
    add(
        "ivr report --flow telebanking --compare 3 4",
        command("report", "--records", url, "--flow", "telebanking", "--compare", "3", "4"),
    )
    with connect(url) as reader:
        add(
            "calls list, queries only: abandoned at ask_account since last week",
            lambda: latest(
                reader,
                Listing(
                    outcome="abandoned",
                    flow_id="telebanking",
                    node="ask_account",
                    since=START + (DAYS - 7) * 86400,
                ),
            ),
        )
        add(
            "calls list, queries only: failed calls",
            lambda: latest(reader, Listing(outcome="failed")),
        )
    add(
        "ivr calls list --outcome abandoned --flow telebanking --node ask_account --since",
        command(
            "calls",
            "list",
            "--records",
            url,
            "--outcome",
            "abandoned",
            "--flow",
            "telebanking",
            "--node",
            "ask_account",
            "--since",
            last_week,
        ),
    )
    add("ivr calls list (the latest 50)", command("calls", "list", "--records", url))
    add("ivr calls show", command("calls", "show", f"CA{12345:032x}", "--records", url))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000, help="records per add()")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each timing")
    parser.add_argument("--dir", type=Path, help="keep the databases here, reuse them next time")
    args = parser.parse_args()
    stores = args.stores.split(",")
    with ExitStack() as stack:
        import tempfile

        base = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base.mkdir(parents=True, exist_ok=True)
        keys = Keys.load(base, env={})
        os.environ["IVR_DATA"] = str(base)  # `ivr calls` finds the keys there
        urls = {}
        if "sqlite" in stores:
            urls["sqlite"] = f"sqlite://{base / 'calls.db'}"
        if "postgresql" in stores:
            urls["postgresql"] = stack.enter_context(postgres(base / "pg" if args.dir else None))
        wanted = [url for url in urls.values() if count(url) != args.calls]
        for url in wanted:
            if count(url):
                raise SystemExit(f"{url} holds another number of calls: remove it first")
        if wanted:
            print(f"writing {args.calls:,} calls through the stores' add(), {args.batch:,} a batch")
            spent = asyncio.run(fill(wanted, args.calls, args.batch, keys))
            for url, seconds in spent.items():
                print(f"  {url}: {seconds:,.0f} s of writes ({args.calls / seconds:,.0f} calls/s)")
        sizes(urls)
        print(f"\ntimings ({args.rounds} runs: the first, then the median of the rest)")
        rows = []
        for name, url in urls.items():
            rows += measure(url, name, args.rounds, base)
        verdict(rows)


def sizes(urls: dict[str, str]) -> None:
    for name, url in urls.items():
        with connect(url) as reader:
            tables = [
                "calls",
                "hour_calls",
                "hour_durations",
                "hour_tasks",
                "hour_nodes",
                "hour_inputs",
                "hour_edges",
            ]
            counts = {t: int(reader.rows(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}
        print(f"  {name}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))


def verdict(rows: list[tuple[str, str, float, float]]) -> None:
    print(f"\nagainst the target (whole report under {TARGET:g} s):")
    for name, what, first, median in rows:
        if what.startswith("ivr report (the command"):
            ok = "met" if median < TARGET else "MISSED"
            print(f"  {name}: ivr report {median:.2f} s (first run {first:.2f} s): {ok}")


if __name__ == "__main__":
    main()
