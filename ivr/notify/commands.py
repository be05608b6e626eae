"""`ivr notify --csv` (a campaign), `ivr campaigns list|show` and `ivr optout add|remove|list`.

The dialer comes from `make_dialer(channel, flows)`: the one place that ties campaigns to the
Twilio REST module (calls through its Calls API, texts through its Messages API).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ivr.errors import ConfigError

if TYPE_CHECKING:
    from ivr.keys import Keys
    from ivr.notify.attempts import Attempt
    from ivr.notify.callees import Callee, Rejected
    from ivr.notify.campaign import Dial, Outbound, Plan, Status
    from ivr.store.campaigns import CampaignStore

T = TypeVar("T")
CHANNELS = ("voice", "sms", "whatsapp")


@dataclass(frozen=True)
class Dialer:
    """How a campaign reaches Twilio: `dial` places a call (or sends a text), `status` says
    where it stands, `close` lets go of the API client."""

    dial: Dial
    status: Status
    close: Callable[[], Awaitable[None]] | None = None


def make_dialer(channel: str, flows: Path | None = None) -> Dialer:
    """The dialer of a real campaign, through the Twilio REST client (`Notifier`): a call
    with answering-machine detection, or a flow's opening as a message. Tests put a
    dialer of their own here."""
    from ivr.notify.campaign import CallState, Placed
    from ivr.notify.notice import Notifier

    notifier = Notifier.from_env(flows, channel=channel)

    async def dial(outbound: Outbound) -> Placed:
        sent = await notifier.send(outbound.flow, outbound.to, outbound.vars, outbound.channel)
        if not sent.ok or not sent.sid:
            raise RuntimeError(sent.error or f"Twilio refused it ({sent.status})")
        return Placed(sent.sid, sent.status or "queued")

    async def status(sid: str) -> CallState:
        now = await notifier.status(sid)
        if not now.ok:
            raise RuntimeError(now.error or "no status")
        return CallState(now.status or "queued", now.answered_by or None)

    return Dialer(dial, status, notifier.close)


def add_commands(sub: Any) -> None:
    """`notify`, `campaigns` and `optout` for the `ivr` command."""
    from ivr.notify.notice import add_single_arguments

    p = sub.add_parser(
        "notify",
        help="call (or text) one person on a flow, or everyone in a CSV file (a campaign)",
        description="--to NUMBER: one outbound call on a flow through Twilio's Calls API "
        "(answering-machine detection: a machine gets the flow's `voicemail` node), or the "
        "flow's opening as an SMS or WhatsApp message. --csv FILE: a campaign, paced, "
        "retried, in each callee's calling window, never an opted-out number; run it again "
        "with the same file to resume: nobody is called twice. See docs/notify.md.",
    )
    add_arguments(p)
    add_single_arguments(p)
    p.set_defaults(run=run_notify)

    c = sub.add_parser("campaigns", help="campaigns run by `ivr notify --csv`, and their outcomes")
    cs = c.add_subparsers(dest="campaigns_command", required=True)
    ls = cs.add_parser("list", help="every campaign, with its rows by status")
    show = cs.add_parser("show", help="one campaign's rows by status, and its calls' outcomes")
    show.add_argument("campaign", help="the campaign id `ivr notify` printed, or its --name")
    show.add_argument("--json", action="store_true", help="as JSON")
    ls.set_defaults(run=run_list)
    show.set_defaults(run=run_show)

    o = sub.add_parser("optout", help="the numbers campaigns never call or text (STOP)")
    os_ = o.add_subparsers(dest="optout_command", required=True)
    add = os_.add_parser("add", help="opt numbers out (kept as keyed hashes, not numbers)")
    add.add_argument("numbers", nargs="+", metavar="NUMBER")
    remove = os_.add_parser("remove", help="let campaigns reach numbers again")
    remove.add_argument("numbers", nargs="+", metavar="NUMBER")
    listed = os_.add_parser("list", help="how many are opted out, by source; their keys")
    add.set_defaults(run=run_optout_add)
    remove.set_defaults(run=run_optout_remove)
    listed.set_defaults(run=run_optout_list)
    for q in (ls, show, add, remove, listed):
        _store_arguments(q)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a campaign (for `ivr notify`; `--to` is the single callee's)."""
    p.add_argument("--flow", help="the flow callees hear (its id)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="the callees: number[,tz][,vars...]")
    p.add_argument("--name", help="the campaign's id (default: a hash of the file and flow)")
    p.add_argument(
        "--rate", type=_rate, default=30, metavar="N/min", help="calls started a minute (30)"
    )
    p.add_argument(
        "--concurrency", type=_positive, default=5, metavar="N", help="calls at once (5)"
    )
    p.add_argument(
        "--retries",
        type=_count,
        default=2,
        metavar="N",
        help="more tries when busy, unanswered or failed (2)",
    )
    p.add_argument(
        "--retry-after", type=_span, default=600.0, metavar="SPAN", help="90s, 10m, 2h (10m)"
    )
    p.add_argument(
        "--retry-machine", action="store_true", help="retry calls a machine answered too"
    )
    p.add_argument("--window", metavar="HH:MM-HH:MM", help="callees' local calling hours")
    p.add_argument("--days", metavar="DAYS", help="callees' calling days (mon-fri)")
    p.add_argument("--tz", metavar="ZONE", help="the zone of numbers that have none known")
    p.add_argument("--until", metavar="TIME", help="stop then (ISO time); the rest stay pending")
    p.add_argument("--channel", choices=CHANNELS, default="voice", help="call, or text (voice)")
    p.add_argument(
        "--poll", type=float, default=5.0, metavar="SECONDS", help="status polls (default 5)"
    )
    p.add_argument("--dry-run", action="store_true", help="check the file and say the plan")
    p.add_argument("--report", metavar="CAMPAIGN", help="a campaign's rows by status")
    p.add_argument("--flows", type=Path, help="flows directory (IVR_FLOWS, default flows)")
    _store_arguments(p)


def _store_arguments(p: argparse.ArgumentParser) -> None:
    from ivr.report.commands import RECORDS_HELP

    p.add_argument("--records", help=RECORDS_HELP)
    p.add_argument("--data", type=Path, help="the server's data directory (IVR_DATA)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _rate(text: str) -> int:
    return _positive(text.removesuffix("/min"))


def _span(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise argparse.ArgumentTypeError(f"expected a span like 90s, 10m or 2h, got {text!r}")
    return float(int(number) * units[unit])


# -- running ---------------------------------------------------------------------------------


def campaign_id(content: bytes, flow: str, channel: str) -> str:
    """The same file with the same flow is the same campaign: a re-run resumes it."""
    digest = hashlib.sha256(content + b"\0" + flow.encode() + b"\0" + channel.encode())
    return "cmp-" + digest.hexdigest()[:12]


def _data_dir(args: argparse.Namespace) -> Path:
    return args.data or Path(os.environ.get("IVR_DATA") or "data")


def _on_store(args: argparse.Namespace, operation: Callable[[CampaignStore], Awaitable[T]]) -> T:
    """`operation` on the campaign store in the records' database; ConfigError, one line,
    when it cannot be opened or does not answer."""
    from ivr.report.commands import records_url
    from ivr.store.campaigns import open_campaigns

    async def run() -> T:
        store = open_campaigns(records_url(args.records, args.data))
        try:
            return await operation(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (ConfigError, KeyboardInterrupt):
        raise
    except Exception as e:  # a database down, a path not writable: said, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"the records store does not answer: {first}") from None


def run_notify(args: argparse.Namespace) -> int:
    if args.to:  # one callee
        from ivr.notify.notice import run_single

        return run_single(args)
    if args.report:
        args.campaign, args.json = args.report, False
        return run_show(args)
    if args.csv is None:
        raise ConfigError("notify: give --csv FILE (a campaign) or --report CAMPAIGN")
    if not args.flow:
        raise ConfigError("notify: --flow FLOW is required (the flow callees hear)")
    from ivr.keys import Keys
    from ivr.notify.callees import read_callees

    _check_flow(args.flow, args.flows)
    if args.tz:
        _check_zone(args.tz)
    plan = _plan(args)  # the flags are checked before the file is read
    try:
        content = args.csv.read_bytes()
        text = content.decode("utf-8")
    except OSError as e:
        raise ConfigError(f"--csv: cannot read {args.csv}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--csv: {args.csv} is not UTF-8 text") from None
    callees, rejected = read_callees(text, str(args.csv), args.tz)
    for row in rejected:
        print(f"{args.csv}:{row.line}: {row.reason}; not called", file=sys.stderr)
    plan = replace(plan, campaign=args.name or campaign_id(content, args.flow, args.channel))
    keys = Keys.load(_data_dir(args))
    if args.dry_run:
        return _on_store(args, lambda s: _dry_run(plan, callees, len(rejected), s, keys))
    dialer = make_dialer(args.channel, args.flows)
    rows = len(callees) + len(rejected)

    async def run(store: CampaignStore) -> int:
        try:
            dial, status = dialer.dial, dialer.status
            return await _run(
                plan, callees, rejected, rows, str(args.csv), store, keys, dial, status
            )
        finally:
            if dialer.close is not None:
                await dialer.close()

    return _on_store(args, run)


def _check_flow(flow_id: str, directory: Path | None) -> None:
    """The flow must be one `ivr serve` has; where its flows are not here (a campaign run
    from another machine), the server says so at the first call instead."""
    from ivr.flow import check_flow, flow_files

    found = directory or Path(os.environ.get("IVR_FLOWS") or "flows")
    if not found.is_dir():
        if directory is not None:
            raise ConfigError(f"--flows: no directory {found}")
        return
    files = flow_files(found)
    for path in sorted(files, key=lambda p: p.stem != flow_id):  # FLOW.yaml first
        flow, _ = check_flow(path)
        if flow is not None and flow.id == flow_id:
            return
    raise ConfigError(f"--flow: no flow {flow_id!r} in {found} (`ivr validate {found}`)")


def _check_zone(zone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--tz: {zone!r} is not an IANA time zone (e.g. Europe/Paris)") from None


def _plan(args: argparse.Namespace) -> Plan:
    from ivr.notify.campaign import Plan
    from ivr.notify.windows import parse_window
    from ivr.report.window import parse_time

    try:
        window = parse_window(args.window, args.days)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return Plan(
        campaign=args.name or "",
        flow=args.flow,
        channel=args.channel,
        rate=args.rate,
        concurrency=args.concurrency,
        retries=args.retries,
        retry_after=args.retry_after,
        retry_machine=args.retry_machine,
        window=window,
        until=parse_time(args.until, name="--until") if args.until else None,
        poll=max(0.1, args.poll),
    )


async def _dry_run(
    plan: Plan, callees: list[Callee], rejected: int, store: CampaignStore, keys: Keys
) -> int:
    """What a run would do now, and nothing written: who is opted out, who may be called
    now, who waits for their window (and until when), who is never in it."""
    from ivr.notify.windows import next_opening

    now = time.time()
    opted = now_ok = never = 0
    waits: list[float] = []
    for callee in callees:
        customer = keys.customer_id(callee.number)
        opening = next_opening(plan.window, callee.zones, now)
        if customer and await store.opted_out(customer):
            opted += 1
        elif opening is None:
            never += 1
        elif opening[0] <= now:
            now_ok += 1
        else:
            waits.append(opening[0])
    print(f"campaign {plan.campaign}: flow {plan.flow}, {plan.channel} (dry run: nobody is called)")
    print(f"  rows: {len(callees) + rejected}, invalid: {rejected}, opted out: {opted}")
    print(f"  window {plan.window.describe()} in each callee's zone:")
    print(f"    callable now: {now_ok}")
    if waits:
        print(f"    waiting for their window: {len(waits)} (the first opens {_iso(min(waits))})")
    else:
        print("    waiting for their window: 0")
    print(f"    never in the window (zones too far apart: add a tz column): {never}")
    print(
        f"  pacing: {plan.rate}/min, {plan.concurrency} at a time, {plan.retries} retries "
        f"after {plan.retry_after:g} s"
    )
    return 0


async def _run(
    plan: Plan,
    callees: list[Callee],
    rejected: list[Rejected],
    rows: int,
    source: str,
    store: CampaignStore,
    keys: Keys,
    dial: Dial,
    status: Status,
) -> int:
    from ivr.notify.campaign import Campaign
    from ivr.store.campaigns import CampaignInfo

    info = CampaignInfo(plan.campaign, plan.flow, plan.channel, source, rows, time.time())
    kept = await store.begin(info)
    if (kept.flow, kept.channel) != (plan.flow, plan.channel):
        raise ConfigError(
            f"campaign {plan.campaign} was started with flow {kept.flow} ({kept.channel}): "
            "give another --name"
        )
    print(f"campaign {plan.campaign}: {rows} rows, flow {plan.flow}, {plan.channel}", flush=True)

    def said(attempt: Attempt) -> None:
        sid = f" {attempt.call_sid}" if attempt.call_sid else ""
        why = f": {attempt.reason}" if attempt.reason else ""
        print(
            f"  line {attempt.line}, attempt {attempt.attempt}: {attempt.status}{sid}{why}",
            flush=True,
        )

    campaign = Campaign(plan, callees, store, keys, dial, status, on_final=said)
    await campaign.reject(rejected)
    await campaign.run()
    _print_tally(await _summary(store, plan.campaign))
    return 0


async def _summary(store: CampaignStore, campaign: str) -> dict[str, Any]:
    from ivr.notify.attempts import tally

    found = await store.campaigns(campaign)
    if not found:
        raise ConfigError(f"no campaign {campaign!r} (`ivr campaigns list` lists them)")
    info = found[0]
    attempts = await store.attempts(campaign)
    return {
        "campaign": info.campaign,
        "flow": info.flow,
        "channel": info.channel,
        "file": info.source,
        "started_at": _iso(info.started_at),
        "rows": info.callees,
        "by_status": tally(attempts, info.callees),
        "calls_placed": sum(1 for a in attempts if a.call_sid),
        "outcomes": await store.outcomes(campaign),
    }


def _print_tally(summary: dict[str, Any]) -> None:
    print(
        f"campaign {summary['campaign']}: flow {summary['flow']}, {summary['channel']}, "
        f"{summary['file']}, {summary['rows']} rows, started {summary['started_at']}"
    )
    for category, count in summary["by_status"].items():
        print(f"  {category:<15}{count:>7}")
    print(f"  calls placed: {summary['calls_placed']} (retries included)")
    outcomes = ", ".join(f"{o} {n}" for o, n in sorted(summary["outcomes"].items()))
    print(f"  how the flow ended them (call records): {outcomes or 'none recorded yet'}")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_show(args: argparse.Namespace) -> int:
    summary = _on_store(args, lambda store: _summary(store, args.campaign))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_tally(summary)
    return 0


def run_list(args: argparse.Namespace) -> int:
    async def every(store: CampaignStore) -> list[dict[str, Any]]:
        return [await _summary(store, c.campaign) for c in await store.campaigns()]

    summaries = _on_store(args, every)
    for summary in summaries:
        counts = ", ".join(f"{k} {n}" for k, n in summary["by_status"].items() if n)
        print(f"{summary['campaign']}  {summary['flow']}  {summary['started_at']}  {counts}")
    if not summaries:
        print("no campaigns")
    return 0


# -- opt-outs --------------------------------------------------------------------------------


def _customers(args: argparse.Namespace) -> list[str]:
    from ivr.keys import Keys
    from ivr.notify.callees import e164

    keys = Keys.load(_data_dir(args))
    out: list[str] = []
    for given in args.numbers:
        number, problem = e164(given.strip())
        customer = keys.customer_id(number) if number else None
        if customer is None:
            raise ConfigError(f"optout: argument {len(out) + 1}: {problem or 'no number'}")
        out.append(customer)
    return out


def run_optout_add(args: argparse.Namespace) -> int:
    customers, now = _customers(args), time.time()

    async def add(store: CampaignStore) -> int:
        return sum([await store.opt_out(c, "ops", now) for c in customers])

    added = _on_store(args, add)
    print(f"opted out: {added} new, {len(customers) - added} already")
    return 0


def run_optout_remove(args: argparse.Namespace) -> int:
    customers = _customers(args)

    async def remove(store: CampaignStore) -> int:
        return sum([await store.opt_in(c) for c in customers])

    removed = _on_store(args, remove)
    print(f"opted back in: {removed}; not on the list: {len(customers) - removed}")
    return 0 if removed else 1


def run_optout_list(args: argparse.Namespace) -> int:
    found = _on_store(args, lambda store: store.optouts())
    by_source: dict[str, int] = {}
    for _, source, _ in found:
        by_source[source] = by_source.get(source, 0) + 1
    sources = ", ".join(f"{s} {n}" for s, n in sorted(by_source.items()))
    print(f"opted out: {len(found)}" + (f" ({sources})" if sources else ""))
    for customer, source, at in found:
        print(f"  {customer}  {source}  {_iso(at)}")
    return 0
