"""Where a webhook turn's CPU goes: `ivr serve`'s app in this process under cProfile.

The real app (`build_app` behind ivr serve's runner, so the connection guard watches:
SQLite sessions and records, signatures checked, the telebanking flow) on loopback, on
asyncio's loop (ivr serve runs uvloop), driven by the webhook benchmark's simulated
Twilio calls (`_caller.py`, the phone-tree mix) from the same loop, profiled over the
measured window only. It prints the Python function calls a turn (server and driver:
deterministic, so a change's count is comparable across runs on a noisy machine, where
CPU figures are not) and the functions that take the most time. cProfile slows what it
sees unevenly: compare runs of this script with each other, never with bench/webhook.py.

    .venv/bin/python bench/turn_profile.py [--calls 1000] [--top 25] [--save out.prof]
    .venv/bin/python bench/turn_profile.py --plain 3   # no profiler: process CPU a turn
    .venv/bin/python bench/turn_profile.py --seal      # timeit: sealing a turn's session
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
import timeit
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _caller import PHONE_TREE, PUBLIC_URL, TOKEN, drive  # noqa: E402

from ivr.config import Config  # noqa: E402
from ivr.server import _Runner, build_app  # noqa: E402
from tests.conftest import free_port  # noqa: E402

Profile = cProfile.Profile


async def run(calls: int, concurrency: int, profile: Profile | None) -> tuple[int, float]:
    """Drive `calls` calls (after a fifth as many to warm up); the turns measured and the
    process CPU seconds they took."""
    with tempfile.TemporaryDirectory() as tmp:
        flows = Path(tmp) / "flows"
        shutil.copytree(ROOT / "flows", flows)
        port = free_port()
        config = Config(
            host="127.0.0.1",
            port=port,
            flows=flows,
            data=Path(tmp) / "data",
            public_url=PUBLIC_URL,
            auth_token=TOKEN,
            watch=False,
            admin=("127.0.0.1", free_port()),
        )
        runner = _Runner(build_app(config), access_log=None)
        await runner.setup()
        await runner_site(runner, port)
        marks: list[float] = []

        def window(opens: bool) -> None:
            if profile is not None and not opens:
                profile.disable()
            marks.append(time.process_time())
            if profile is not None and opens:
                profile.enable()

        try:
            load = await drive(port, calls // 5, calls, concurrency, True, window, mix=PHONE_TREE)
        finally:
            await runner.cleanup()
        if load.errors:
            raise SystemExit(f"{load.errors} errors: {load.problems}")
        return load.turns, marks[1] - marks[0]


async def runner_site(runner: _Runner, port: int) -> None:
    await web.TCPSite(runner, "127.0.0.1", port).start()


def seal() -> None:
    """timeit of what a turn seals: a real session and reply of telebanking's menu, as two
    fields (`seal_session` twice) and as one pair (`seal_pair`); best of 7."""
    from ivr.engine import new_session, step
    from ivr.engine.events import CallStarted, Digits
    from ivr.flow import load_flow
    from ivr.keys import Keys
    from ivr.telephony import twiml

    flow = load_flow(ROOT / "flows" / "telebanking.yaml")
    session = new_session(flow, "CA" + os.urandom(16).hex())
    session, _ = step(flow, session, CallStarted("+15551234567", "+15550100", at=1.0))
    session, actions = step(flow, session, Digits("9", at=2.0))  # a mistyped option
    text, reply = session.to_json(), twiml.render(actions, twiml.Voice("en-US"), session.turn)
    keys, sid, n = Keys.for_tests(), session.call_id, 20_000

    def best(work: object) -> float:
        return 1e6 * min(timeit.repeat(work, number=n, repeat=7)) / n  # type: ignore[arg-type]

    pair = keys.seal_pair(sid, text, reply)
    one, other = keys.seal_session(sid, text), keys.seal_session(sid, reply)
    two = best(lambda: (keys.seal_session(sid, text), keys.seal_session(sid, reply)))
    paired = best(lambda: keys.seal_pair(sid, text, reply))
    opened = best(lambda: (keys.open_session(sid, one), keys.open_session(sid, other)))
    opened_pair = best(lambda: keys.open_pair(sid, pair))
    print(f"a session of {len(text)} characters and a reply of {len(reply)}:")
    print(f"  seal as two fields {two:.1f} µs, as one pair {paired:.1f} µs")
    print(f"  open as two fields {opened:.1f} µs, as one pair {opened_pair:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--save", help="write the profile here (for snakeviz, pstats)")
    parser.add_argument("--plain", type=int, metavar="N", help="N runs without the profiler")
    parser.add_argument("--seal", action="store_true", help="time the sealing of a turn")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.seal:
        seal()
        return
    for _ in range(args.plain or 0):
        turns, cpu = asyncio.run(run(args.calls, args.concurrency, None))
        print(f"{turns} turns: process CPU (server and driver) {1e6 * cpu / turns:.0f} µs a turn")
    if args.plain:
        return
    profile = Profile()
    turns, _ = asyncio.run(run(args.calls, args.concurrency, profile))
    stats = pstats.Stats(profile)
    if args.save:
        stats.dump_stats(args.save)
    print(f"{turns} turns: {stats.total_calls / turns:.1f} function calls a turn (server, driver)")  # type: ignore[attr-defined]
    entries = stats.stats  # type: ignore[attr-defined]
    rows = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[: args.top]
    print(f"{'µs/turn':>8} {'cum':>8} {'calls/turn':>10}  function (by own time, profiled)")
    for (path, line, name), (_, calls, own, cum, _) in rows:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else path
        own, cum, calls = 1e6 * own / turns, 1e6 * cum / turns, calls / turns
        print(f"{own:8.1f} {cum:8.1f} {calls:10.2f}  {name} {where}")


if __name__ == "__main__":
    main()
