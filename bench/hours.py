"""Opening hours benchmark: what `open('support')` costs with a calendar, and what laying
ops' closures over a flow costs the runner at each turn (none, and one closure).

Run: .venv/bin/python bench/hours.py
"""

from __future__ import annotations

import os
import timeit
from pathlib import Path

from ivr.flow import load_flow
from ivr.flow.hours import Closure
from ivr.runner import Runner

FLOWS = Path(__file__).resolve().parents[1] / "flows"


def per_call(statement: object, number: int) -> float:
    """Microseconds per call, the best of five runs."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    os.environ.setdefault("IVR_FLOW_BANK_API", "http://127.0.0.1:9")
    flow = load_flow(FLOWS / "telebanking.yaml")
    support = flow.hours["support"]
    at = 1_798_797_600.0  # 2027-01-01 10:00 UTC: a holiday in the calendar
    took = per_call(lambda: support.is_open(at), 100_000)
    print(f"open('support') with the kz_banking calendar: {took:.2f} us")

    none: list[Closure] = []
    one = [Closure("support", message="Closed for a training.")]
    idle = Runner(backend=None, closures=lambda: none)  # type: ignore[arg-type]
    closed = Runner(backend=None, closures=lambda: one)  # type: ignore[arg-type]
    for name, runner in (("no closure", idle), ("one closure", closed)):
        took = per_call(lambda: runner.overlaid(flow), 100_000)  # noqa: B023 - run at once
        print(f"runner overlay, {name}: {took:.2f} us a turn")

    def made_again() -> None:
        closed._overlaid.clear()  # as after each refresh that read something new
        closed.overlaid(flow)

    took = per_call(made_again, 20_000)
    print(f"runner overlay, one closure, made again after a refresh: {took:.2f} us")


if __name__ == "__main__":
    main()
