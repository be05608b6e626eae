"""`ivr customers show`: one customer's conversations on every channel, newest first.

A customer is found by the keyed id of their number or chat identity (`Keys.customer_id`),
never by a number kept in clear: the output names the id, not the number. Each
conversation is listed as `ivr calls list` lists calls, with its transcript, which was
masked before it was stored, decrypted with the data key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from ivr.keys import Keys
from ivr.report.calls import transcript_lines
from ivr.report.query import Reader
from ivr.report.render_text import table
from ivr.report.window import iso
from ivr.store.records import CallRecord
from ivr.store.sqlite_records import COLUMNS, record_from

CUSTOMER = re.compile(r"c_[a-z2-7]{24}")  # what Keys.customer_id makes


def conversations(reader: Reader, customer: str, limit: int = 50) -> list[CallRecord]:
    """The customer's latest conversations, newest first (by the index on customer)."""
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM calls WHERE customer = ?"
        " ORDER BY started_at DESC LIMIT ?"
    )
    rows = reader.rows(sql, [customer, limit])
    # a store that keeps JSON columns as JSON types hands back lists: as text, like SQLite
    return [
        record_from([json.dumps(v) if isinstance(v, list | dict) else v for v in r]) for r in rows
    ]


def render(customer: str, found: Sequence[CallRecord], keys: Keys | None) -> str:
    """The conversations as a table, then each one's transcript."""
    if not found:
        return f"customer {customer}: no conversations in the records\n"
    rows = [
        (
            (iso(r.started_at) or "")[:19].replace("T", " "),
            f"{r.channel}, {r.direction}",
            r.flow_id,
            r.outcome + (f": {r.reason}" if r.reason else ""),
            ",".join(r.tasks) or "-",
            r.queue or "-",
            f"{r.duration:.0f} s",
            r.call_sid,
        )
        for r in found
    ]
    headers = ("started (UTC)", "channel", "flow", "outcome", "tasks", "queue", "time", "id")
    lines = [f"customer {customer}: {len(found)} conversation(s), newest first", ""]
    lines += table(headers, rows, indent="", left=len(headers))
    for r in found:
        when = (iso(r.started_at) or "")[:19].replace("T", " ")
        lines += ["", f"{r.call_sid} ({r.channel}, {when} UTC), transcript:"]
        lines += transcript_lines(r.transcript, keys)
    return "\n".join(lines) + "\n"
