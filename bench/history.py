"""A customer's history at call start (`RecordStore.history`), on SQLite and PostgreSQL:
how long the one indexed query takes among many records, for a new caller and for a
frequent one.

Writes N calls (default 200,000) from 20,000 customers over 30 days through the stores'
own `add`, then times `history()` for random customers (most with ~10 calls, a few
heavy callers with hundreds) and prints the median, p99 and max. PostgreSQL is started by
this script (as the tests start it).

    .venv/bin/python bench/history.py
    .venv/bin/python bench/history.py --calls 50000 --stores sqlite

Not run in CI: bench/ is for long runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _postgres import postgres  # noqa: E402

from ivr.keys import Keys  # noqa: E402
from ivr.store import RecordStore, open_records  # noqa: E402
from ivr.store.records import CallRecord  # noqa: E402

DAYS = 30
HEAVY = 20  # customers who call hundreds of times
NOW = 1_795_000_000.0
TASKS = ("balance_inquiry", "card_blocked", "transactions")


def calls(n: int, customers: list[str]) -> list[CallRecord]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        heavy = rng.random() < 0.1
        who = customers[rng.randrange(HEAVY)] if heavy else rng.choice(customers)
        started = NOW - rng.random() * DAYS * 86400
        transferred = rng.random() < 0.3
        out.append(
            CallRecord(
                call_sid=f"CA{i:032x}",
                flow_id="telebanking",
                flow_version="1",
                started_at=started,
                ended_at=started + 60,
                duration=60.0,
                outcome="transferred" if transferred else "contained",
                channel=rng.choice(("voice", "voice", "sms", "whatsapp")),
                customer=who,
                queue="support" if transferred else None,
                tasks=(rng.choice(TASKS),) if rng.random() < 0.6 else (),
            )
        )
    return out


async def fill(store: RecordStore, records: list[CallRecord]) -> float:
    began = time.perf_counter()
    for i in range(0, len(records), 2000):
        await store.add(records[i : i + 2000])
    return time.perf_counter() - began


async def measure(store: RecordStore, customers: list[str], rounds: int) -> list[float]:
    rng = random.Random(11)
    took = []
    for i in range(rounds):
        heavy = customers[: min(HEAVY, len(customers))]
        who = rng.choice(heavy) if i % 10 == 0 else rng.choice(customers)
        began = time.perf_counter()
        await store.history(who, NOW, UTC)
        took.append(time.perf_counter() - began)
    return took


async def bench(url: str, n: int, customers: list[str], rounds: int) -> None:
    store = open_records(url)
    try:
        filled = await fill(store, calls(n, customers))
        took = await measure(store, customers, rounds)
        nobody = await measure(store, ["c_" + "a" * 24], 200)
    finally:
        await store.close()
    ms = sorted(t * 1000 for t in took)
    print(
        f"  {url.split(':')[0]:<10} {n:,} calls written in {filled:.1f} s; history of "
        f"{rounds} callers: median {statistics.median(ms):.2f} ms, "
        f"p99 {ms[int(len(ms) * 0.99) - 1]:.2f} ms, max {ms[-1]:.2f} ms; "
        f"a new caller: median {statistics.median(nobody) * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    keys = Keys.for_tests()
    customers = [str(keys.customer_id(f"+1555{i:07}")) for i in range(args.customers)]
    print(f"history(): {args.calls:,} records, {args.customers:,} customers")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            url = (
                f"sqlite://{Path(tmp) / 'calls.db'}"
                if kind == "sqlite"
                else stack.enter_context(postgres())
            )
            asyncio.run(bench(url, args.calls, customers, args.rounds))


if __name__ == "__main__":
    main()
