"""`ivr calls list` and `ivr calls show`: single calls from the records' `calls` table, for ops.

The only report code that reads per-call rows: a page of the latest calls (filtered by
the indexed columns) and one call's record with its transcript decrypted, so ops can
read why a call failed or went to an agent. The caller's number stays masked unless
asked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.keys import Keys
from ivr.report.query import Reader
from ivr.report.render_text import table
from ivr.report.window import iso
from ivr.store.records import CallRecord
from ivr.store.sqlite_records import COLUMNS, record_from

LISTED = (
    "call_sid",
    "ended_at",
    "flow_id",
    "flow_version",
    "variant",
    "outcome",
    "reason",
    "reason_detail",
    "duration",
    "last_node",
    "transfer_from",
    "tasks",
    "caller",
)


@dataclass(frozen=True)
class Listing:
    """What `ivr calls list` selects."""

    outcome: str | None = None
    flow_id: str | None = None
    node: str | None = None  # the node the call left the flow at: hung up, ended, or an agent
    since: float | None = None
    until: float | None = None
    limit: int = 50

    def where(self) -> tuple[str, list[Any]]:
        terms: list[str] = []
        args: list[Any] = []
        for column, value in (("outcome", self.outcome), ("flow_id", self.flow_id)):
            if value is not None:
                terms.append(f"{column} = ?")
                args.append(value)
        if self.node is not None:
            terms.append("(last_node = ? OR transfer_from = ?)")
            args += [self.node, self.node]
        if self.since is not None:
            terms.append("ended_at >= ?")
            args.append(self.since)
        if self.until is not None:
            terms.append("ended_at < ?")
            args.append(self.until)
        return (" WHERE " + " AND ".join(terms) if terms else ""), args


def latest(reader: Reader, listing: Listing) -> list[dict[str, Any]]:
    """The latest calls `listing` selects, newest first."""
    where, args = listing.where()
    sql = f"SELECT {', '.join(LISTED)} FROM calls{where} ORDER BY ended_at DESC LIMIT ?"
    return [dict(zip(LISTED, row, strict=True)) for row in reader.rows(sql, [*args, listing.limit])]


def find(reader: Reader, call_sid: str) -> CallRecord | None:
    rows = reader.rows(f"SELECT {', '.join(COLUMNS)} FROM calls WHERE call_sid = ?", [call_sid])
    if not rows:
        return None
    # a store that keeps JSON columns as JSON types hands back lists: as text, like SQLite
    return record_from([json.dumps(v) if isinstance(v, list | dict) else v for v in rows[0]])


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def masked(number: str | None, reveal: bool = False) -> str:
    """A phone number with all but its last 2 digits hidden, unless `reveal`."""
    if not number:
        return "-"
    if reveal:
        return number
    return "*" * max(len(number) - 2, 0) + number[-2:]


def _caller(sealed: str | None, keys: Keys | None, reveal: bool) -> str:
    if sealed is None:
        return "-"
    if keys is None:
        return "(encrypted: no keys here)"
    number = keys.open(sealed)
    return masked(number, reveal) if number is not None else "(not readable with these keys)"


def render_list(calls: Sequence[Mapping[str, Any]], keys: Keys | None, reveal: bool) -> str:
    if not calls:
        return "no calls\n"
    rows = [
        (
            (iso(c["ended_at"]) or "")[:19].replace("T", " "),
            c["call_sid"],
            f"{c['flow_id']}@{c['flow_version']}" + (f" ({c['variant']})" if c["variant"] else ""),
            c["outcome"] + (f": {c['reason']}" if c["reason"] else ""),
            f"{c['duration']:.0f} s",
            c["transfer_from"] or c["last_node"] or "-",
            ",".join(_json(c["tasks"]) or ()) or "-",
            _caller(c["caller"], keys, reveal),
        )
        for c in calls
    ]
    headers = ("ended (UTC)", "call", "flow", "outcome", "time", "left at", "tasks", "caller")
    return "\n".join(table(headers, rows, indent="", left=len(headers))) + "\n"


def render_show(record: CallRecord, keys: Keys | None, reveal: bool) -> str:
    """One call as ops read it: what it was, how it ended and why, then its transcript."""
    r = record
    flow = f"{r.flow_id} version {r.flow_version}"
    if r.experiment:
        flow += f" (experiment {r.experiment}, variant {r.variant})"
    ended = r.outcome
    if r.outcome == "transferred":
        ended += f": reason {r.reason or '?'}" + (
            f" ({r.reason_detail})" if r.reason_detail else ""
        )
        ended += f", decided at {r.transfer_from}" if r.transfer_from else ""
        ended += f", queue {r.queue}" if r.queue else ""
        ended += f"; the agent leg: {r.transfer_result}" if r.transfer_result else ""
    if r.outcome == "abandoned":
        ended += f" at {r.last_node}" + (" after a resolved task" if r.after_task else "")
    fields = [
        ("call", r.call_sid),
        ("flow", flow),
        ("channel", f"{r.channel}, {r.direction}"),
        ("caller", _caller(r.caller, keys, reveal)),
        ("started", iso(r.started_at) or "-"),
        ("ended", f"{iso(r.ended_at)} ({r.duration:.1f} s)"),
        ("outcome", ended),
        ("status", r.status or "unknown"),
        ("tasks", ", ".join(r.tasks) or "none"),
        ("path", " > ".join(r.path) or "-"),
        ("inputs", ", ".join(f"{k}={v}" for k, v in r.inputs.items()) or "none"),
    ]
    if r.legs:  # it went on in another channel: each leg, and how it ended
        legs = (
            f"{leg.get('channel')} from {iso(leg.get('at'))} ({leg.get('outcome')})"
            for leg in r.legs
        )
        fields.append(("legs", "; then ".join(legs)))
    if r.callback:
        fields.append(("callback", _callback(r.callback, keys, reveal)))
    if r.survey:
        fields.append(("survey", ", ".join(f"{k}={v}" for k, v in r.survey.items())))
    if r.recording:
        fields.append(("recording", _opened(r.recording, keys) if reveal else "(kept; --reveal)"))
    if r.error:
        fields.append(("error", r.error))
    width = max(len(name) for name, _ in fields)
    lines = [f"{name.ljust(width)}  {value}" for name, value in fields]
    lines += ["", "transcript (seconds into the call, node, what happened):"]
    lines += transcript_lines(r.transcript, keys)
    return "\n".join(lines) + "\n"


def _callback(sealed: str, keys: Keys | None, reveal: bool) -> str:
    """A callback request as ops read it: the number masked unless revealed."""
    try:
        request = json.loads(_opened(sealed, keys))
    except ValueError:
        return "(not readable here)"
    number = masked(request.get("number"), reveal)
    window = f", {request['window']}" if request.get("window") else ""
    return f"call back {number}{window}, queue {request.get('queue') or '-'}"


def _opened(sealed: str, keys: Keys | None) -> str:
    if keys is None:
        return "(encrypted: no keys here)"
    opened = keys.open(sealed)
    return opened if opened is not None else "(not readable with these keys)"


def transcript_lines(sealed: str | None, keys: Keys | None) -> list[str]:
    if sealed is None:
        return ["  (none kept)"]
    if keys is None:
        return ["  (encrypted: no keys here; set IVR_DATA or IVR_DATA_KEY as the server has them)"]
    text = keys.open(sealed)
    if text is None:
        return ["  (not readable with these keys: the server's IVR_DATA_KEY is another)"]
    lines = json.loads(text)
    width = max((len(str(line[1])) for line in lines), default=4)
    return [f"  {line[0]:>6.1f}  {str(line[1]).ljust(width)}  {said(line[2:])}" for line in lines]


_HEARD = {"prompt": "heard the prompt", "say": "heard", "repeat": "heard the prompt again"}
_RESULTS = {"match": "matched", "no_match": "no match", "no_input": "no input"}


def said(what: Sequence[Any]) -> str:
    """A transcript line's event in words: prompts heard, inputs and what they were."""
    kind, rest = (str(what[0]), list(what[1:])) if what else ("", [])
    if kind in _HEARD:
        return _HEARD[kind]
    if kind.startswith(("no_match:", "no_input:")):
        why, _, attempt = kind.partition(":")
        return f"heard the {_RESULTS[why]} re-prompt (attempt {attempt})"
    if kind == "confirm":
        return "asked to confirm"
    if kind in ("dtmf", "speech"):
        result = _RESULTS.get(str(rest[0]), str(rest[0])) if rest else "?"
        text = f"{'pressed' if kind == 'dtmf' else 'said'} {rest[1]!r}" if len(rest) > 1 else kind
        confidence = f" (confidence {rest[2]:.2f})" if len(rest) > 2 else ""
        return f"{text}{confidence}: {result}"
    if kind == "silence":
        return "silence: no input"
    if kind == "fetch":
        return f"backend answered {rest[0]}" if rest else "backend called"
    if kind == "hangup":
        return "the caller hung up"
    if kind == "recorded":
        return f"recorded a message of {rest[0]} s" if rest else "recorded a message"
    return " ".join(str(w) for w in what)
