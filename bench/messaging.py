"""Messaging benchmark: server CPU per inbound SMS of `ivr serve`, beside its CPU per voice turn.

One run starts `ivr serve` (the real CLI: SQLite sessions and records, signature checks,
the example flows) pinned to core 0 and the backend of the flows' `http` nodes
(`_bank.py`) with the driver on core 1, then drives two phases against the same server:

- `voice`: the webhook benchmark's phone tree (`_caller.py`), calls through telebanking;
- `sms`: SMS conversations, each from a sender number of its own, posted to
  `/twilio/messaging` as Twilio posts them (signed, the form fields Twilio sends) through
  order_status (greeting, an order number with words around it, its status, the next
  choice, goodbye or an agent) and telebanking ("balance": told to call, since the account
  number is not asked by text). Each reply is checked for what the flow says there.

Both phases are measured the way bench/webhook.py measures turns (server CPU from /proc
per request served in a window with every slot busy, after a warm-up): see
docs/performance.md ("Text channels"). Conversations abandoned and ended by the idle
timeout are left out: `TextConversations.expire` runs on the server's own clock.

    .venv/bin/python bench/messaging.py [--conversations 1500] [--calls 1000]
        [--concurrency 50] [--warmup 150] [--think 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _caller import PHONE_TREE, Caller, Load, drive
from _servers import (
    DRIVER_CORE,
    SERVER_CORE,
    Server,
    core_busy,
    process_tree,
    running,
    servers,
    usage,
)
from webhook import Result, percentile, table

PATH = "/twilio/messaging"
SHOP, BANK = "+15550110", "+15550100"
RECORDS_WAIT = 60.0  # seconds for the last records to be written once the load is over


@dataclass(frozen=True)
class Conversation:
    """One customer's messages, each with a piece of what ivr must answer to it, and the
    outcome its record must have."""

    name: str
    to: str
    messages: tuple[tuple[str, str], ...]
    outcome: str


SHIPPED = "has shipped with UPS"
ASK_ORDER = "six digit order number"
GOODBYE = "Thank you for shopping with Example Shop. Goodbye."
CALL_US = "call us"  # what needs a call (an agent, a sensitive ask) by text
CONVERSATIONS = (
    Conversation(
        "order in words, then goodbye",
        SHOP,
        (("hi", ASK_ORDER), ("it's 123 456 thanks", SHIPPED), ("no thanks", GOODBYE)),
        "contained",
    ),
    Conversation(
        "two orders",
        SHOP,
        (
            ("where is my order?", ASK_ORDER),
            ("my order number is 123456", SHIPPED),
            ("1", ASK_ORDER),
            ("order 123-456 please", SHIPPED),
            ("2", GOODBYE),
        ),
        "contained",
    ),
    Conversation(
        "mistyped order, then an agent",
        SHOP,
        (
            ("hello", ASK_ORDER),
            ("12", "not a six digit order number"),
            ("123456", SHIPPED),
            ("agent", CALL_US),
        ),
        "transferred",
    ),
    Conversation("balance by text", BANK, (("balance", CALL_US),), "transferred"),
    Conversation(
        "the bank's menu, then balance", BANK, (("hi", "balance"), ("1", CALL_US)), "transferred"
    ),
)
MIX = (0, 1, 2, 0, 3, 1, 4, 0, 2, 3)  # conversations of a run by number, into CONVERSATIONS


def sms(sender: str, to: str, body: str) -> dict[str, str]:
    """The form Twilio posts for an inbound SMS (as tests/functional/twilio_sim.py)."""
    sid = "SM" + os.urandom(16).hex()
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "FromCountry": "US",
        "ApiVersion": "2010-04-01",
    }


class Texter(Caller):
    """Twilio's side of SMS conversations, one at a time, over one connection."""

    async def conversation(self, which: Conversation, sender: str) -> None:
        for n, (body, wanted) in enumerate(which.messages, 1):
            if n > 1:
                await self.pause()
            reply = await self.post(PATH, sms(sender, which.to, body))
            self.expect(reply, (wanted,), f"{which.name} / message {n} ({body!r})")


def sender(n: int) -> str:
    """A number of its own for each conversation (one number's next message continues it)."""
    return f"+1556{n:07d}"


async def drive_texts(
    port: int,
    warmup: int,
    conversations: int,
    concurrency: int,
    window: Callable[[bool], None],
    first: int,
    think: float,
) -> Load:
    """As `_caller.drive`, with conversations: the window opens as conversation `warmup`
    starts and closes when the last one has started."""
    load = Load()
    numbers = iter(range(first, first + warmup + conversations))
    opening = first + warmup

    async def worker() -> None:
        texter = Texter(port, load, True, think)
        for n in numbers:
            if n == opening:
                window(True)
                load.measuring = True
            try:
                await texter.conversation(CONVERSATIONS[MIX[n % len(MIX)]], sender(n))
            except (ConnectionError, OSError) as e:
                load.problem(f"conversation {n}: {type(e).__name__}: {e}")
                texter.conn = None
        if load.measuring:
            load.measuring = False
            window(False)
        if texter.conn is not None and texter.conn.transport is not None:
            texter.conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return load


def measured(
    label: str, server: Server, bank: Server, load: Callable[[Callable[[bool], None]], Load]
) -> Result:
    """Server CPU per request in the window `load` opens and closes, as bench/webhook.py's
    `measure` reads it (the server's process tree from /proc, the core's busy time)."""
    trees = process_tree(server.pid), process_tree(bank.pid)
    marks: list[tuple[float, float, float, float, float, float]] = []

    def window(opens: bool) -> None:
        (cpu, wait), (bank_cpu, _) = usage(trees[0]), usage(trees[1])
        busy, driver = core_busy(SERVER_CORE), time.process_time()
        marks.append((time.perf_counter(), cpu, wait, bank_cpu, busy, driver))

    seen = load(window)
    (at0, cpu0, wait0, bank0, busy0, drv0), (at1, cpu1, wait1, bank1, busy1, drv1) = marks
    cpu = cpu1 - cpu0
    return Result(
        label,
        seen.turns,
        seen.errors,
        at1 - at0,
        cpu,
        drv1 - drv0,
        bank1 - bank0,
        max(0.0, busy1 - busy0 - cpu),
        wait1 - wait0,
        1000 * percentile(seen.latencies, 0.50),
        1000 * percentile(seen.latencies, 0.99),
        seen.problems,
    )


def rows(data: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{data}?mode=ro", uri=True) as db:
        return list(db.execute(sql))


def wait_for_records(data: Path, count: int) -> int:
    """The call records written, once `count` are (or RECORDS_WAIT has passed)."""
    deadline, written = time.monotonic() + RECORDS_WAIT, 0
    while time.monotonic() < deadline:
        written = int(rows(data / "calls.db", "SELECT count(*) FROM calls")[0][0])
        if written >= count:
            break
        time.sleep(0.2)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=1500, help="measured SMS ones")
    parser.add_argument("--calls", type=int, default=1000, help="measured voice calls")
    parser.add_argument("--warmup", type=int, default=150, help="before each phase")
    parser.add_argument(
        "--settle",
        type=int,
        default=1000,
        help="more warm-up calls before the first phase: a fresh process spends its first "
        "seconds growing its heap and SQLite files (see bench/webhook.py)",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="in progress at once")
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean pause (ms) before each message or turn"
    )
    args = parser.parse_args()
    if (
        min(args.conversations, args.calls, args.concurrency) < 1
        or min(args.warmup, args.settle, args.think) < 0
    ):
        parser.error(
            "--conversations, --calls, --concurrency at least 1; --warmup, --settle, --think 0+"
        )
    if len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset"):
        print("needs two cores and taskset (util-linux)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {DRIVER_CORE})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    think = args.think / 1000
    with tempfile.TemporaryDirectory(prefix="ivr-bench-sms-") as tmp:
        data = Path(tmp) / "data"
        bank, (ivr, *_) = servers(Path(tmp), None, [])
        ivr.env["IVR_FLOW_ORDERS_API"] = f"http://127.0.0.1:{bank.port}"
        started = time.perf_counter()
        with running([bank, ivr], 0):
            print(
                f"ivr serve pid {ivr.pid} on core {SERVER_CORE}; driver pid {os.getpid()} and "
                f"bank pid {bank.pid} on core {DRIVER_CORE}",
                flush=True,
            )
            calls = args.settle + args.warmup + args.calls

            def voice(window: Callable[[bool], None]) -> Load:
                return asyncio.run(
                    drive(
                        ivr.port,
                        args.settle + args.warmup,
                        args.calls,
                        args.concurrency,
                        True,
                        window,
                        0,
                        think,
                        PHONE_TREE,
                    )
                )

            def texts(window: Callable[[bool], None]) -> Load:
                return asyncio.run(
                    drive_texts(
                        ivr.port,
                        args.warmup,
                        args.conversations,
                        args.concurrency,
                        window,
                        calls,
                        think,
                    )
                )

            results = [
                measured("ivr voice", ivr, bank, voice),
                measured("ivr sms", ivr, bank, texts),
            ]
            conversations = args.warmup + args.conversations
            written = wait_for_records(data, calls + conversations)
            by_channel = dict(
                rows(data / "calls.db", "SELECT channel, count(*) FROM calls GROUP BY 1")
            )
            outcomes = rows(
                data / "calls.db",
                "SELECT outcome, count(*) FROM calls WHERE channel = 'sms' GROUP BY 1 ORDER BY 1",
            )
            time.sleep(1.0)  # the sessions of the last records go once those are final
            left = rows(
                data / "sessions.db", "SELECT call_id LIKE 'TX%', count(*) FROM sessions GROUP BY 1"
            )
            log = (Path(tmp) / "ivr.log").read_text(errors="replace").splitlines()
    return report(
        args, results, time.perf_counter() - started, by_channel, outcomes, dict(left), written, log
    )


def expected_outcomes(first: int, count: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in range(first, first + count):
        outcome = CONVERSATIONS[MIX[n % len(MIX)]].outcome
        out[outcome] = out.get(outcome, 0) + 1
    return out


def report(
    args: argparse.Namespace,
    results: list[Result],
    seconds: float,
    by_channel: dict[Any, Any],
    outcomes: list[tuple[Any, ...]],
    left: dict[Any, Any],
    written: int,
    log: list[str],
) -> int:
    voice, text = results
    calls = args.settle + args.warmup + args.calls
    conversations = args.warmup + args.conversations
    print(
        f"\n{args.concurrency} at a time, mean pause {args.think:g} ms; per phase "
        f"{args.warmup} warm-up calls or conversations ({args.settle} more calls first), then "
        f"{args.calls} calls and "
        f"{args.conversations} conversations measured; {seconds:.0f} s in all"
    )
    print(table(results).replace("turns", "reqs ").replace("µs/turn", "µs/req "))
    if any(min(r.others_cpu, r.waited) > 0.1 * r.seconds for r in results):
        print("warning: other processes kept the server waiting for its core: figures are noisy")
    for r in results:
        for problem in r.problems:
            print(f"  {r.server}: {problem}")
    print(
        f"\nsms: {text.turns_per_s:.0f} messages/s, {text.cpu_us_per_turn:.0f} µs server CPU a "
        f"message against {voice.cpu_us_per_turn:.0f} µs a voice turn "
        f"({text.cpu_us_per_turn / max(voice.cpu_us_per_turn, 1e-9):.2f}x), p50 "
        f"{text.p50_ms:.1f} ms, p99 {text.p99_ms:.1f} ms"
    )
    want = expected_outcomes(calls, conversations)
    got = {str(k): int(v) for k, v in outcomes}
    sms, voiced = int(by_channel.get("sms", 0)), int(by_channel.get("voice", 0))
    print(
        f"records: {sms} SMS of {conversations} conversations, {voiced} voice of {calls} calls "
        f"({written} in all); SMS outcomes "
        + ", ".join(f"{k} {v}" for k, v in sorted(got.items()))
        + f" (expected {', '.join(f'{k} {v}' for k, v in sorted(want.items()))})"
    )
    print(f"sessions left: {left.get(1, 0)} text, {left.get(0, 0)} voice")
    log = [line for line in log if '"ivr.flows"' not in line]  # the example flows' warnings
    print(f"ivr serve logged {len(log)} line(s) at WARNING and above (flow warnings aside)")
    for line in log[:3]:
        print(f"  {line[:300]}")
    correct = (
        voice.errors == 0
        and text.errors == 0
        and (sms, voiced) == (conversations, calls)
        and got == want
        and not left.get(1)
    )
    print(f"answers, records and sessions: {'correct' if correct else 'WRONG (see above)'}")
    return 0 if correct else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
