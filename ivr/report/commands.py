"""The `ivr report` and `ivr calls` commands, and the heat map of `ivr graph --traffic`:
their flags and what each runs. Heavy modules are imported when a command runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.keys import Keys
    from ivr.report.query import Filters

RECORDS_HELP = (
    "the records: sqlite:///path or postgresql://... (default: the server's, IVR_RECORDS, "
    "else $IVR_DATA/calls.db)"
)
TIME_HELP = "2026-11-01, 2026-11-01T09:00 (UTC unless an offset is given), or 24h / 7d ago"


def add_commands(sub: Any) -> None:
    """Add `report`, `calls`, `customers` and `forget` to the `ivr` command's subparsers."""
    p = sub.add_parser(
        "report",
        help="containment, outcomes, transfers, funnel, inputs and times from the call records",
    )
    add_window(p)
    p.add_argument("--flow", help="only this flow (id)")
    p.add_argument("--version", dest="flow_version", help="only this flow version")
    p.add_argument("--channel", help="only this channel (voice, sms, whatsapp, chat)")
    p.add_argument(
        "--direction",
        choices=("inbound", "outbound", "all"),
        default="inbound",
        help="whose calls: inbound (default: containment is a figure of callers who "
        "called), outbound (campaigns, notifications), or all",
    )
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="two flow versions (3 4) or two date ranges (2026-11-01..2026-11-08 "
        "2026-11-08..2026-11-15) side by side",
    )
    p.add_argument("--experiment", metavar="NAME", help="compare an experiment's variants")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (keys: docs/report.md)")
    out.add_argument("--csv", action="store_true", help="print CSV: section,item,metric,value")
    out.add_argument("--html", type=Path, metavar="FILE", help="write one self-contained page")
    p.set_defaults(run=run_report)

    p = sub.add_parser("calls", help="list call records, or show one with its transcript")
    calls = p.add_subparsers(dest="calls_command", required=True)
    c = calls.add_parser("list", help="the latest calls, newest first")
    c.add_argument("--records", help=RECORDS_HELP)
    c.add_argument("--outcome", choices=("contained", "transferred", "abandoned", "failed"))
    c.add_argument("--flow", help="only this flow (id)")
    c.add_argument("--node", help="only calls that left the flow at this node")
    c.add_argument("--since", help=f"calls that ended since: {TIME_HELP}")
    c.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    c.add_argument("--data", type=Path, help="the server's data directory, for its keys")
    c.add_argument("--reveal", action="store_true", help="show callers' numbers in full")
    c.set_defaults(run=run_calls_list)
    c = calls.add_parser("show", help="one call's record and its decrypted transcript")
    c.add_argument("call_sid", metavar="CALLSID")
    c.add_argument("--records", help=RECORDS_HELP)
    c.add_argument("--data", type=Path, help="the server's data directory, for its keys")
    c.add_argument("--reveal", action="store_true", help="show the caller's number in full")
    c.set_defaults(run=run_calls_show)

    p = sub.add_parser("customers", help="one customer's conversations across channels")
    customers = p.add_subparsers(dest="customers_command", required=True)
    c = customers.add_parser(
        "show",
        help="a customer's conversations, newest first, with their masked transcripts",
        description="List the conversations (calls, SMS, WhatsApp, chat) of the customer "
        "behind --number (found by its keyed id, as `ivr forget` finds it) or with the id "
        "--key, newest first, each with its transcript (sensitive values were masked "
        "before it was stored) decrypted with the data key. The number is not printed.",
    )
    who = c.add_mutually_exclusive_group(required=True)
    who.add_argument("--number", help="the customer's number (+15550001, whatsapp:+15550001)")
    who.add_argument("--key", help="the customer's keyed id (c_...), as call records keep it")
    c.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    c.add_argument("--records", help=RECORDS_HELP)
    c.add_argument("--data", type=Path, help="the server's data directory, for its keys")
    c.set_defaults(run=run_customers_show)

    p = sub.add_parser(
        "forget",
        help="erase one customer's call records (data-protection requests)",
        description="Delete every call record of the caller behind --number, found by its "
        "keyed id (IVR_CUSTOMER_KEY or the data directory's keys), transcripts included. "
        "Hourly rollups, which name nobody, stay; sessions of calls in progress expire "
        "within hours, sealed.",
    )
    p.add_argument("--number", required=True, help="the caller's number, as Twilio sends it")
    p.add_argument("--records", help=RECORDS_HELP)
    p.add_argument("--data", type=Path, help="the server's data directory, for its keys")
    p.set_defaults(run=run_forget)


def add_window(p: argparse.ArgumentParser) -> None:
    p.add_argument("--records", help=RECORDS_HELP)
    p.add_argument("--data", type=Path, help="the server's data directory (IVR_DATA)")
    p.add_argument("--since", help=f"from: {TIME_HELP}; widened to whole hours")
    p.add_argument("--until", help=f"to: {TIME_HELP}; widened to whole hours")


def records_url(given: str | None, data: Path | None = None) -> str:
    """`given`, or the server's records: IVR_RECORDS, else calls.db under the data
    directory (`data`, else IVR_DATA)."""
    from ivr.config import Config

    if given:
        return given
    config = Config(data=data or Path(os.environ.get("IVR_DATA") or "data"))
    config.records = os.environ.get("IVR_RECORDS") or None
    return config.records_url


def filters_of(args: argparse.Namespace, **more: Any) -> Filters:
    from ivr.report.query import Filters
    from ivr.report.window import Window, parse_time

    since = parse_time(args.since, name="--since") if args.since else None
    until = parse_time(args.until, name="--until") if args.until else None
    return Filters(window=Window.of(since, until), **more)


def run_report(args: argparse.Namespace) -> int:
    from ivr.report import compose, render_csv, render_text
    from ivr.report.query import connect

    filters = filters_of(
        args,
        flow_id=args.flow,
        flow_version=args.flow_version,
        channel=args.channel,
        direction=None if args.direction == "all" else args.direction,
    )
    flows = compose.flows_dir_default()
    with connect(records_url(args.records, args.data)) as reader:
        if args.compare:
            by, a, b = compose.sides(args.compare[0], args.compare[1], filters)
            found = compose.compare(reader, by, a, b, flows)
        elif args.experiment:
            found = compose.experiment(reader, args.experiment, filters, flows)
        else:
            found = compose.report(reader, filters, flows)
    if args.json:
        import json

        print(json.dumps(found, indent=2))
    elif args.csv:
        sys.stdout.write(render_csv.render(found))
    elif args.html:
        from ivr.report import render_html  # pygal: only for the page

        args.html.write_text(render_html.render(found), encoding="utf-8")
        print(f"wrote {args.html}")
    else:
        sys.stdout.write(render_text.render(found))
    return 0


def _keys(data: Path | None) -> Keys | None:
    """The keys the server keeps its records under; None where there are none to read with
    (keys are never made here: new ones would read nothing)."""
    from ivr.keys import KEY_FILE, Keys

    directory = data or Path(os.environ.get("IVR_DATA") or "data")
    if os.environ.get("IVR_DATA_KEY") and os.environ.get("IVR_CUSTOMER_KEY"):
        return Keys.load(directory)
    if (directory / KEY_FILE).is_file():
        return Keys.load(directory)
    return None


def run_forget(args: argparse.Namespace) -> int:
    import asyncio

    from ivr.errors import ConfigError
    from ivr.store import open_records

    keys = _keys(args.data)
    if keys is None:
        raise ConfigError(
            "no keys to find the customer by: give the server's --data directory, or set "
            "IVR_CUSTOMER_KEY and IVR_DATA_KEY"
        )
    customer = keys.customer_id(args.number)
    if customer is None:
        raise ConfigError(f"--number: {args.number!r} is a withheld number: it names nobody")

    async def forget() -> tuple[int, int]:
        from ivr.store.campaigns import open_campaigns

        url = records_url(args.records, args.data)
        records, campaigns = open_records(url), open_campaigns(url)
        try:  # and their campaign attempts; an opt-out stays (it names nobody)
            return await records.forget(customer), await campaigns.forget(customer)
        finally:
            await records.close()
            await campaigns.close()

    calls, attempts = asyncio.run(forget())
    print(f"deleted {calls} call records and {attempts} campaign attempts of {args.number}")
    return 0


def run_customers_show(args: argparse.Namespace) -> int:
    from ivr.errors import ConfigError
    from ivr.report.customers import CUSTOMER, conversations, render
    from ivr.report.query import connect

    keys = _keys(args.data)
    if args.number is not None:
        if keys is None:
            raise ConfigError(
                "no keys to find the customer by: give the server's --data directory, or "
                "set IVR_CUSTOMER_KEY and IVR_DATA_KEY (or give --key)"
            )
        customer = keys.customer_id(args.number)
        if customer is None:
            raise ConfigError("--number: a withheld number or an empty identity names nobody")
    elif CUSTOMER.fullmatch(args.key):
        customer = args.key
    else:
        raise ConfigError(
            f"--key {args.key[:40]!r}: expected a customer id as records keep it: c_ and 24 "
            "letters a-z or digits 2-7"
        )
    with connect(records_url(args.records, args.data)) as reader:
        found = conversations(reader, customer, max(1, args.limit))
    sys.stdout.write(render(customer, found, keys))
    return 0


def run_calls_list(args: argparse.Namespace) -> int:
    from ivr.report.calls import Listing, latest, render_list
    from ivr.report.query import connect
    from ivr.report.window import parse_time

    listing = Listing(
        outcome=args.outcome,
        flow_id=args.flow,
        node=args.node,
        since=parse_time(args.since, name="--since") if args.since else None,
        limit=max(1, args.limit),
    )
    with connect(records_url(args.records, args.data)) as reader:
        found = latest(reader, listing)
    sys.stdout.write(render_list(found, _keys(args.data), args.reveal))
    return 0


def run_calls_show(args: argparse.Namespace) -> int:
    from ivr.report.calls import find, render_show
    from ivr.report.query import connect

    with connect(records_url(args.records, args.data)) as reader:
        record = find(reader, args.call_sid)
    if record is None:
        print(f"ivr calls show: no call {args.call_sid!r} in the records", file=sys.stderr)
        return 1
    sys.stdout.write(render_show(record, _keys(args.data), args.reveal))
    return 0


def graph_traffic(args: argparse.Namespace, flow_id: str) -> Any:
    """The heat map's counts for `ivr graph FLOW --traffic`."""
    from ivr.report.query import connect
    from ivr.report.traffic import traffic

    with connect(records_url(args.records, args.data)) as reader:
        return traffic(reader, filters_of(args, flow_id=flow_id))
