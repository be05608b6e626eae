"""Hours closed by ops: what `ivr hours close|open|list` and the admin API (ivr/web/hours.py)
check against the flows, and the copy of the ops-state table every process keeps.

A closure is a row in the records store (ivr/store/closures.py), so every process that
writes records there sees it, whatever the session store. Each process reads the table
again every REFRESH seconds and hands what it read to the runner, which lays it over the
flows' hours (`ivr.flow.hours.with_closures`): the engine reads no store.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ivr.errors import ConfigError
from ivr.flow.hours import Closure, Hours, closing_until

if TYPE_CHECKING:  # not imported by every `ivr` command
    from ivr.flow.model import Flow
    from ivr.store.records import RecordStore

log = logging.getLogger("ivr.hours")
REFRESH = 3.0  # seconds between reads of the ops-state table: how soon a closure is heard
MAX_SAY = 500  # characters of a closed message: a sentence or two, said to every caller
T = TypeVar("T")


class ClosuresCache:
    """The closures as this process last read them; calling it costs no I/O (the runner
    asks at every turn). A store that does not answer leaves the last ones read."""

    def __init__(self, store: RecordStore, every: float = REFRESH) -> None:
        self.store, self.every = store, every
        self.current: tuple[Closure, ...] = ()

    def __call__(self) -> tuple[Closure, ...]:
        return self.current

    async def refresh(self) -> None:
        self.current = tuple(await self.store.closures())

    async def keep_fresh(self) -> None:
        """Read the table every `every` seconds, until cancelled."""
        failing = False
        while True:
            try:
                await self.refresh()
                failing = False
            except Exception:
                if not failing:  # once per outage, not every few seconds
                    log.exception("the hours closed by ops could not be read; keeping the last")
                failing = True
            await asyncio.sleep(self.every)


def hours_named(flows: Iterable[Flow], name: str, flow_id: str | None) -> list[Hours]:
    """The hours called `name` (in flow `flow_id`, or in any); LookupError saying what
    there is when there are none."""
    flows = list(flows)
    if flow_id is not None and all(f.id != flow_id for f in flows):
        known = ", ".join(sorted(f.id for f in flows)) or "none loaded"
        raise LookupError(f"no flow {flow_id!r} (flows: {known})")
    found = [f.hours[name] for f in flows if name in f.hours and flow_id in (None, f.id)]
    if not found:
        names = sorted({n for f in flows if flow_id in (None, f.id) for n in f.hours})
        where = f"flow {flow_id!r}" if flow_id else "the flows"
        raise LookupError(
            f"no hours named {name!r} in {where} (hours: {', '.join(names) or 'none'})"
        )
    return found


def closure_for(
    flows: Iterable[Flow],
    name: str,
    flow_id: str | None = None,
    until: str | None = None,
    say: str | None = None,
    now: float | None = None,
) -> Closure:
    """The closure `ivr hours close` asks for, checked: the hours exist (LookupError), the
    end is a time to come and the message is short (ValueError)."""
    now = time.time() if now is None else now
    found = hours_named(flows, name, flow_id)
    message = " ".join((say or "").split())
    if len(message) > MAX_SAY:
        raise ValueError(f"--say: {len(message)} characters; at most {MAX_SAY} (a sentence or two)")
    end = None
    if until:
        zones = {h.tz.key for h in found}
        if len(zones) > 1 and not _has_offset(until):
            raise ValueError(
                f"--until {until!r}: the hours named {name!r} are in {', '.join(sorted(zones))}: "
                "name one flow (--flow) or give an offset (2026-12-24T18:00+05:00)"
            )
        end = closing_until(found[0], until, now)
    return Closure(name, flow_id or "", end, message, now)


def _has_offset(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def describe(closure: Closure, flows: Iterable[Flow], now: float) -> str:
    """One line of `ivr hours list`: which hours, where, until when (in their zone), what."""
    zone = next((f.hours[closure.hours].tz for f in flows if closure.hours in f.hours), None)
    where = f"in flow {closure.flow}" if closure.flow else "in every flow"
    if closure.until is None:
        until = "until reopened"
    else:
        shown = datetime.fromtimestamp(closure.until, zone or UTC)
        local = f"{shown:%Y-%m-%d %H:%M} {zone.key if zone else 'UTC'}"
        until = f"until {local}" + ("" if closure.covers(now) else " (ended)")
    said = f': "{closure.message}"' if closure.message else " (no message)"
    return f"{closure.hours} {where}, closed {until}{said}"


# -- `ivr hours` ---------------------------------------------------------------------------


def add_command(sub: Any) -> None:
    """`ivr hours close|open|list`: ops close hours now, with a message, without editing flows."""
    from ivr.report.commands import RECORDS_HELP

    p = sub.add_parser(
        "hours",
        help="close opening hours now (callers hear a message), reopen them, list closures",
        description="Close opening hours now, without editing flows: `open('NAME')` is false "
        "and closed_message('NAME') is what --say said, in every `ivr serve` process that "
        f"uses the same records store, within {REFRESH:g} seconds.",
    )
    hours = p.add_subparsers(dest="hours_command", required=True)
    c = hours.add_parser("close", help="close hours now, until a time or until reopened")
    c.add_argument("name", help="the hours' name in the flows (hours: NAME: ...)")
    c.add_argument(
        "--until",
        metavar="TIME",
        help="HH:MM in the hours' time zone (the next one to come), or an ISO datetime "
        "(default: until `ivr hours open`)",
    )
    c.add_argument("--say", metavar="TEXT", help="what callers are told: closed_message('NAME')")
    c.add_argument("--flow", metavar="FLOW", help="only this flow's hours of that name")
    o = hours.add_parser("open", help="reopen hours ops closed")
    o.add_argument("name")
    o.add_argument("--flow", metavar="FLOW", help="only the closure of this flow's hours")
    ls = hours.add_parser("list", help="the hours ops closed, and until when")
    for q in (c, o, ls):
        q.add_argument("--records", help=RECORDS_HELP)
        q.add_argument("--data", type=Path, help="the server's data directory (IVR_DATA)")
        q.add_argument("--flows", type=Path, help="flows directory (IVR_FLOWS, default flows)")
    c.set_defaults(run=run_close)
    o.set_defaults(run=run_open)
    ls.set_defaults(run=run_list)


def _flows(directory: Path | None) -> list[Flow]:
    """The flows as `ivr serve` loads them; one that does not load is named on stderr."""
    from ivr.flow import check_flow, flow_files

    found = directory or Path(os.environ.get("IVR_FLOWS") or "flows")
    if not found.is_dir():
        raise ConfigError(f"--flows: no directory {found} (set IVR_FLOWS or --flows)")
    flows = []
    for path in flow_files(found):
        flow, problems = check_flow(path)
        if flow is None:
            errors = sum(p.severity == "error" for p in problems)
            print(
                f"ivr hours: {path} does not load ({errors} errors): its hours are not known",
                file=sys.stderr,
            )
        else:
            flows.append(flow)
    return flows


def _on_store(args: argparse.Namespace, operation: Callable[[RecordStore], Awaitable[T]]) -> T:
    """`operation` on the records store (--records, else the server's); ConfigError, in one
    line, when the store cannot be opened or does not answer."""
    from ivr.report.commands import records_url
    from ivr.store import open_records

    async def run() -> T:
        store = open_records(records_url(args.records, args.data))
        try:
            return await operation(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ConfigError:
        raise
    except Exception as e:  # a database down, a path not writable: said, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"the records store does not answer: {first}") from None


def run_close(args: argparse.Namespace) -> int:
    flows = _flows(args.flows)
    try:
        closure = closure_for(flows, args.name, args.flow, args.until, args.say)
    except (LookupError, ValueError) as e:
        raise ConfigError(str(e.args[0])) from None
    _on_store(args, lambda store: store.close_hours(closure, closure.closed_at))
    print(f"closed: {describe(closure, flows, closure.closed_at)}")
    return 0


def run_open(args: argparse.Namespace) -> int:
    count = _on_store(args, lambda store: store.open_hours(args.name, args.flow))
    where = f" in flow {args.flow}" if args.flow else ""
    if not count:
        print(f"ivr hours: {args.name}{where} was not closed by ops", file=sys.stderr)
        return 1
    print(f"reopened: {args.name}{where}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    flows = _flows(args.flows)
    now = time.time()
    closures = [c for c in _on_store(args, lambda store: store.closures()) if c.covers(now)]
    for closure in closures:
        print(describe(closure, flows, now))
    if not closures:
        print("no hours are closed by ops")
    return 0
