"""Engine benchmark: steps/s on flows/telebanking.yaml, and load time of a 1,000-node flow.

Run: .venv/bin/python bench/engine.py [--profile]
Two versions of ivr on one frozen flow (docs/performance.md):
    PYTHONPATH=TREE IVR_BENCH_FLOWS=bench/frozen .venv/bin/python bench/engine.py
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ivr.engine import new_session, step
from ivr.engine.events import (
    CallStarted,
    Digits,
    Event,
    FetchResult,
    HangUp,
    NoInput,
    Recorded,
    Speech,
)
from ivr.flow import Flow, check_flow, load_flow
from ivr.flow import templates as flow_templates
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import read_flow_file
from ivr.flow.schema import check_schema

try:  # the recording stored (Twilio's recordingStatusCallback): the outcome is final
    from ivr.engine.events import RecordingStatus

    STORED: tuple[Event, ...] = (RecordingStatus("completed", "RE123", at=0),)
except ImportError:  # ivr before it waited for that (a comparison on bench/frozen)
    STORED = ()

ROOT = Path(__file__).resolve().parents[1]
# IVR_BENCH_FLOWS=bench/frozen: the frozen flow, to compare two versions of ivr on one flow
TELEBANKING = Path(os.environ.get("IVR_BENCH_FLOWS", ROOT / "flows")) / "telebanking.yaml"
STEPS_TARGET = 50_000  # steps/s on one core
LOAD_TARGET = 0.5  # seconds to load, validate and compile 1,000 nodes
MIN_STEPS = 200_000
ROUNDS = 5
FLOW_NODES = 1_000

OPEN = 1772600400.0  # Wed 2026-03-04 10:00 Asia/Almaty: agents are in
CLOSED = 1772953200.0  # Sun 2026-03-08 12:00: voicemail
ACCOUNT = "12345674"  # passes the Luhn check
ACCT = {
    "balance": 1234.5,
    "card_last4": "4321",
    "transactions": [
        {"amount": -12.5, "merchant": "Coffee Corner"},
        {"amount": -80, "merchant": "Grocer"},
        {"amount": 1500, "merchant": "Salary"},
    ],
}
OK = FetchResult(200, ACCT, at=0)

# name, events, expected outcome, expected tasks: each a real path through the flow
Scenario = tuple[str, list[Event], str, list[str]]


def scenarios() -> list[Scenario]:
    def at(t0: float, *events: Event) -> list[Event]:
        return [replace(e, at=t0 + 7 * i) for i, e in enumerate(events)]

    call = CallStarted(caller="+15550123", called="+15550100", at=0)
    key = lambda keys: Digits(keys, at=0)  # noqa: E731 - times are set by at()
    say = lambda words, confidence: Speech(words, confidence, at=0)  # noqa: E731
    silence = NoInput(at=0)
    return [
        ("balance by digits", at(OPEN, call, key("1"), key(ACCOUNT + "#"), OK, key("2")),
         "contained", ["balance_inquiry"]),
        # the account number is sensitive: keys only on Twilio's recogniser
        ("balance by speech", at(OPEN, call, say("balance", 0.9), key(ACCOUNT + "#"), OK,
                                 say("no thanks", 0.9)), "contained", ["balance_inquiry"]),
        ("block card, confirmed", at(OPEN, call, say("block card", 0.3), say("yes", 0.9),
                                     key(ACCOUNT + "#"), OK, key("1"), FetchResult(204, at=0),
                                     say("no", 0.9)), "contained", ["card_blocked"]),
        ("transactions, then agent", at(OPEN, call, key("3"), key(ACCOUNT + "#"), OK,
                                        key("1"), key("0")), "transferred", ["transactions"]),
        ("zero-out to an agent", at(OPEN, call, key("0")), "transferred", []),
        ("no input x3, voicemail", at(CLOSED, call, silence, silence, silence,
                                      Recorded("RE123", 12.0, at=0), *STORED),
         "contained", ["callback_requested"]),
        ("bad account, backend down", at(OPEN, call, key("1"), key("12345678#"),
                                         key(ACCOUNT + "#"), FetchResult(error="timeout", at=0)),
         "transferred", []),
        ("repeat, then hang up", at(OPEN, call, key("*"), say("how much money", 0.9),
                                    HangUp(at=0)), "abandoned", []),
    ]  # fmt: skip


def check_paths(flow: Flow, cases: list[Scenario]) -> None:
    """Each scenario ends as its path says it does: the benchmark measures real calls."""
    for name, events, outcome, tasks in cases:
        s = new_session(flow, "CAcheck")
        for event in events:
            s, actions = step(flow, s, event)
            if not actions and not isinstance(event, (HangUp, *map(type, STORED))):
                sys.exit(f"{name}: {type(event).__name__} at {s.node} did nothing")
        if (s.outcome, s.tasks) != (outcome, tasks) or s.error:
            sys.exit(f"{name}: ended {s.outcome} {s.tasks} {s.error or ''}, not {outcome} {tasks}")


def run_calls(flow: Flow, cases: list[Scenario], calls: int) -> int:
    """Walk `calls` calls, rotating through the scenarios; returns the steps taken."""
    steps = 0
    for i in range(calls):
        events = cases[i % len(cases)][1]
        s = new_session(flow, f"CA{i:032x}")
        for event in events:
            s, _ = step(flow, s, event)
        steps += len(events)
    return steps


def calibration_us() -> float:
    """A fixed piece of pure Python, to tell a slow machine (or minute) from slow code."""
    return min(timeit.repeat("sum(range(1000))", number=2_000, repeat=5)) / 2_000 * 1e6


class Clock:
    """Wall time (what the targets are judged on) and this process's CPU time: when other
    work shares the core, wall time grows and CPU time shows what the code itself costs."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def bench_steps(flow: Flow) -> tuple[int, Clock, list[tuple[str, float]]]:
    cases = scenarios()
    check_paths(flow, cases)
    per_round = sum(len(c[1]) for c in cases)
    calls = -(-MIN_STEPS // ROUNDS // per_round) * len(cases)
    run_calls(flow, cases, len(cases) * 50)  # warm up
    # the best of several rounds, as timeit does: other tenants of a shared machine only
    # ever slow a round down, so the fastest round is the closest to what the code costs
    clock: Clock | None = None
    for _ in range(ROUNDS):
        with Clock() as one:
            steps = run_calls(flow, cases, calls)
        clock = one if clock is None or one.wall < clock.wall else clock
    assert clock is not None
    each = []
    for case in cases:
        with Clock() as one:
            n = run_calls(flow, [case], 2_000)
        each.append((case[0], one.cpu / n * 1e6))
    return steps, clock, each


# -- a generated 1,000-node flow --------------------------------------------------------------

WORDS = (
    "balance payments cards loans savings mortgage insurance travel rewards statements "
    "transfers deposits pensions investments fraud branches cheques overdraft currency limits"
).split()
MODULE = 11  # nodes per generated module


def generated_flow(size: int = FLOW_NODES, seed: int = 7) -> dict[str, Any]:
    """A flow of `size` nodes: modules of menu, ask, set, http, branch, say, transfer, end;
    every node reachable from start and able to reach an end."""
    rng = random.Random(seed)
    api = "${IVR_FLOW_BANK_API:-http://127.0.0.1:8099}"
    modules = (size - 5) // MODULE
    nodes: dict[str, Any] = {
        "welcome": {"say": "Welcome to Example Bank. You are calling from {{ caller }}.",
                    "next": "intro0"},
        "check_hours": {"branch": [{"if": "open('support')", "goto": "agent"},
                                   {"else": "voicemail"}]},
        "agent": {"transfer": {"to": "+15550199", "queue": "support", "say": "Connecting you.",
                               "attributes": {"reason": "{{ reason }}"}}},
        "voicemail": {"record": {"prompt": "Leave a message after the tone.", "save_as": "vm"},
                      "resolves": "callback"},
        "goodbye": {"end": {"say": "Thank you for calling. Goodbye."}},
    }  # fmt: skip
    fillers = size - len(nodes) - modules * MODULE
    for j in range(fillers):
        nxt = f"intro{j + 1}" if j + 1 < fillers else "m0"
        nodes[f"intro{j}"] = {"say": [{"audio": f"intro{j}.wav"}, "Calls are recorded."],
                              "next": nxt}  # fmt: skip
    if not fillers:
        nodes["welcome"]["next"] = "m0"
    for i in range(modules):
        m, word = f"m{i}", WORDS[i % len(WORDS)]
        targets = [f"{m}_ask", f"{m}_info", f"m{i + 1}" if i + 1 < modules else "goodbye",
                   f"m{rng.randrange(i + 1)}", "check_hours"]  # fmt: skip
        picked = rng.sample([w for w in WORDS if w != word], 5)
        options = {
            f"o{k}": {"dtmf": str(k + 1), "speech": [picked[k], f"{picked[k]} please"],
                      "goto": targets[k]}
            for k in range(rng.randint(3, 5))
        }  # fmt: skip
        body: Any = {"value": f"{{{{ v{i} }}}}"} if i % 2 else None
        nodes.update({
            m: {"menu": {"prompt": f"For {word} press 1. " + " ".join(
                f"For {picked[k]} press {k + 1}." for k in range(1, len(options))),
                "options": options}},
            f"{m}_ask": {"ask": {"prompt": f"Enter your {word} reference, then the pound key.",
                                 "digits": {"min": 4, "max": 8}, "save_as": f"v{i}",
                                 **({"validate": "value | luhn"} if i % 3 == 0 else {}),
                                 **({"sensitive": True} if i % 5 == 0 else {})},
                         "next": f"{m}_set"},
            f"{m}_set": {"set": {f"n{i}": f"v{i} | length", f"tries{i}": f"(tries{i} or 0) + 1"},
                         "next": f"{m}_http"},
            f"{m}_http": {"http": {"method": "POST" if body else "GET",
                                   "url": f"{api}/{word}/{{{{ v{i} }}}}", "timeout": 2,
                                   "save_as": f"r{i}", **({"json": body} if body else {})},
                          "next": f"{m}_branch", "on_error": f"{m}_sorry"},
            f"{m}_branch": {"branch": [{"if": f"r{i}.status == 'ok'", "goto": f"{m}_result"},
                                       {"if": f"tries{i} > 2", "goto": "check_hours"},
                                       {"else": f"{m}_ask"}]},
            f"{m}_result": {"say": f"Your {word} figure is {{{{ r{i}.amount | currency }}}}.",
                            "resolves": f"{word}_{i}", "next": f"{m}_more"},
            f"{m}_info": {"say": f"Here is some information about {word}.", "next": f"{m}_more"},
            f"{m}_sorry": {"say": "Sorry, that service is not answering.", "next": "check_hours"},
            f"{m}_more": {"menu": {"prompt": "Press 1 for more, 2 to finish, 3 for a specialist.",
                                   "retries": 1, "on_fail": f"{m}_end", "options": {
                "more": {"dtmf": "1", "speech": ["yes", "more"], "goto": m},
                "done": {"dtmf": "2", "speech": ["no", "finish"], "goto": f"{m}_end"},
                "desk": {"dtmf": "3", "speech": ["specialist"], "goto": f"{m}_desk"}}}},
            f"{m}_desk": {"transfer": {"to": f"+1555020{i % 10}", "queue": f"{word}_desk",
                                       "say": f"Connecting you to our {word} team."}},
            f"{m}_end": {"end": {"say": f"Thank you for calling about {word}. Goodbye."}},
        })  # fmt: skip
    return {
        "flow": "generated",
        "language": "en-US",
        "start": "welcome",
        "defaults": {"timeout": 5, "retries": 2, "on_fail": "check_hours"},
        "hours": {"support": {"tz": "Asia/Almaty", "mon-fri": "09:00-18:00"}},
        "global": {
            "agent": {"dtmf": "0", "speech": ["agent", "operator"], "goto": "check_hours"},
            "repeat": {"dtmf": "*", "speech": ["repeat"], "repeat": True},
        },
        "nodes": nodes,
    }


def clear_caches() -> None:
    """Forget compiled templates, so every run compiles them as a fresh process would."""
    for name in ("compile_template", "compile_expression", "names_used"):
        getattr(getattr(flow_templates, name, None), "cache_clear", lambda: None)()


def bench_load(path: Path, runs: int = 5) -> tuple[Clock, dict[str, float]]:
    """The best of `runs` load_flow() calls, and the best time of each stage apart."""
    flow, problems = check_flow(path)
    if flow is None or len(flow.nodes) != FLOW_NODES:
        sys.exit(f"generated flow does not compile: {problems[:5]}")
    if problems:
        print(f"  (generated flow has {len(problems)} warnings, e.g. {problems[0].message})")
    best: Clock | None = None
    for _ in range(runs):
        clear_caches()
        with Clock() as clock:
            load_flow(path)
        best = clock if best is None or clock.wall < best.wall else best
    stages = {"read+parse YAML": float("inf"), "schema": float("inf"), "compile": float("inf")}
    for _ in range(runs):
        clear_caches()
        t0 = time.perf_counter()
        doc = read_flow_file(path)
        t1 = time.perf_counter()
        check_schema(doc)
        t2 = time.perf_counter()
        compile_flow(doc)
        t3 = time.perf_counter()
        for stage, took in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            stages[stage] = min(stages[stage], took)
    assert best is not None
    return best, stages


def profile(label: str, fn: Callable[[], object], top: int = 18) -> None:
    print(f"\n-- profile: {label} (top {top} by own time) --")
    prof = cProfile.Profile()
    prof.runcall(fn)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", action="store_true", help="cProfile both parts")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    flow = load_flow(TELEBANKING)
    steps, run, each = bench_steps(flow)
    rate, cpu_rate = steps / run.wall, steps / run.cpu
    print(
        f"engine on {TELEBANKING.name}: best of {ROUNDS} rounds of {steps:,} steps: "
        f"{run.wall:.2f} s ({run.cpu:.2f} s CPU)"
    )
    print(f"machine speed: sum(range(1000)) takes {calibration_us():.1f} µs (lower is faster)")
    for name, us in each:
        print(f"  {name:<28} {us:6.1f} µs/step (CPU)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.yaml"
        path.write_text(yaml.safe_dump(generated_flow(), sort_keys=False, width=100))
        kinds = Counter(node.kind for node in load_flow(path).nodes.values())
        mix = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        print(f"generated flow: {kinds.total()} nodes, {path.stat().st_size:,} bytes: {mix}")
        load, stages = bench_load(path)
        print("  best per stage: " + ", ".join(f"{k} {v:.3f} s" for k, v in stages.items()))
        if args.profile:
            cases = scenarios()
            profile("engine steps", lambda: run_calls(flow, cases, 8_000))
            clear_caches()
            profile("load_flow, 1,000 nodes", lambda: load_flow(path))
    rows = [
        ("engine steps/s (1 core)", f"{rate:,.0f}", f"{cpu_rate:,.0f}", f">= {STEPS_TARGET:,}",
         rate >= STEPS_TARGET),
        ("engine µs/step", f"{1e6 / rate:.1f}", f"{1e6 / cpu_rate:.1f}",
         f"<= {1e6 / STEPS_TARGET:.0f}", rate >= STEPS_TARGET),
        ("load+validate+compile 1,000 nodes", f"{load.wall:.3f} s", f"{load.cpu:.3f} s",
         f"< {LOAD_TARGET} s", load.wall < LOAD_TARGET),
    ]  # fmt: skip
    print(f"\n{'measure':<36}{'wall':>10}{'CPU':>10}  {'target':>12}  verdict")
    for name, wall, cpu, target, ok in rows:
        print(f"{name:<36}{wall:>10}{cpu:>10}  {target:>12}  {'PASS' if ok else 'MISS'}")
    if run.cpu < 0.9 * run.wall:
        print(f"note: the core was shared ({run.cpu / run.wall:.0%} of wall time was ours): "
              "wall-clock figures are inflated; judge by the CPU column")  # fmt: skip


if __name__ == "__main__":
    main()
