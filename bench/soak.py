"""The soak, long (reliability issue): many calls at once through the example flows against
a real `ivr serve`, each walking a script (keys, speech, silence, hang-ups, transfers,
backend calls) to its status callback, SMS conversations among them; then every record is
checked against its script.

It runs the code of the short soak in the tests (`tests/functional/soak.py`) at the size
given, and prints the errors, the records missing or wrong, the turn latency, the server's
memory (RSS) and data directory at the start, the middle and the end, and the bytes the
records take per call. See docs/reliability.md ("Soak").

    .venv/bin/python bench/soak.py [--calls 10000] [--concurrency 200]
        [--sessions redis://127.0.0.1:6379/15]  # an empty database: its keys are counted
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' helpers

from tests.functional.soak import soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200, help="calls in progress at once")
    parser.add_argument(
        "--keep", type=Path, help="a new directory to run in and keep (the server's log, data)"
    )
    parser.add_argument(
        "--sessions", help="a Redis URL for the sessions, its database empty (default: SQLite)"
    )
    args = parser.parse_args()
    if args.calls < 2 or args.concurrency < 1:
        parser.error("--calls at least 2, --concurrency at least 1")
    if args.keep:
        result = asyncio.run(soak(args.keep, args.calls, args.concurrency, args.sessions))
    else:
        with tempfile.TemporaryDirectory(prefix="ivr-soak-") as tmp:
            result = asyncio.run(soak(Path(tmp), args.calls, args.concurrency, args.sessions))
    print("\n".join(result.lines()))
    bad = result.errors or result.server_errors or result.missing or result.wrong
    left = result.snapshots[-1].sessions
    print(f"verdict: {'WRONG' if bad or left else 'correct'} (sessions left: {left})")
    return 1 if bad or left else 0


if __name__ == "__main__":
    sys.exit(main())
