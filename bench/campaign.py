"""Campaign benchmark: the campaign loop's own cost over a big file, Twilio and the clock
faked (no network, no real waiting), the attempts written to SQLite as `ivr notify` does.

Run: .venv/bin/python bench/campaign.py [--rows 10000] [--rate 600] [--concurrency 50]
Prints the wall time, attempts written per second, and the loop's CPU per call placed:
what a campaign costs the machine that runs it, beside the calls themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.keys import Keys  # noqa: E402
from ivr.notify.attempts import tally  # noqa: E402
from ivr.notify.callees import read_callees  # noqa: E402
from ivr.notify.campaign import Campaign, Plan  # noqa: E402
from ivr.store.campaigns import open_campaigns  # noqa: E402
from tests.unit.notify.fakes import FakeClock, FakeTwilio  # noqa: E402

MONDAY_NOON_NY = 1797267600.0  # 2026-12-14 12:00 -05:00


async def run(rows: int, rate: int, concurrency: int) -> None:
    text = "number,name\n" + "".join(f"+1212555{n % 10000:04d},c{n}\n" for n in range(rows))
    if rows > 10000:
        raise SystemExit("--rows: at most 10000 (the fake numbers are +1212555xxxx)")
    callees, _ = read_callees(text)
    busy = {c.number: ["busy", "completed"] for c in callees[::10]}  # a tenth retried once
    with tempfile.TemporaryDirectory() as tmp:
        store = open_campaigns(f"sqlite://{Path(tmp) / 'calls.db'}")
        twilio = FakeTwilio(FakeClock(MONDAY_NOON_NY), script=busy, rings=3)
        plan = Plan("bench", "reminder", rate=rate, concurrency=concurrency, retry_after=600)
        campaign = Campaign(
            plan, callees, store, Keys.for_tests(), twilio.dial, twilio.status, twilio.clock
        )
        wall, cpu = time.perf_counter(), time.process_time()
        await campaign.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        attempts = await store.attempts("bench")
        counts = tally(attempts, rows)
        await store.close()
    placed = len(twilio.calls)
    print(f"rows {rows}, rate {rate}/min, concurrency {concurrency}: {placed} calls placed")
    reached, pending = counts["reached"], counts["pending"]
    print(f"  reached {reached}, pending {pending}, most in flight {twilio.most_in_flight}")
    print(f"  campaign time (fake clock): {(twilio.clock.now() - MONDAY_NOON_NY) / 3600:.2f} h")
    print(f"  wall {wall:.2f} s, CPU {cpu:.2f} s: {cpu / placed * 1000:.2f} ms CPU a call placed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--rate", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.rate, args.concurrency))


if __name__ == "__main__":
    main()
