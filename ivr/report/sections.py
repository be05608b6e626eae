"""The sections of `ivr report`: each one SQL GROUP BY over an hourly rollup, shaped as JSON.

Every figure is added up by the database from the rollups (a few thousand rows for a
month), never from per-call rows; Python only divides the handful of sums it gets back.
Every call in the records has ended, so "all ended calls" is every call in the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ivr.engine.session import OUTCOMES, REASONS
from ivr.report.query import Filters, Reader, grouped
from ivr.report.window import DAY, day_of, iso
from ivr.stats import wilson
from ivr.store.records import DURATION_BUCKETS, HOUR

NO_QUEUE = "(none)"
UNKNOWN = "unknown"  # a transfer's reason that no longer is one of REASONS (old records)
# what a percentile read from the buckets may be off by, said in the report
PRECISION = (
    "median and p90 are interpolated within time-in-IVR buckets (upper bounds "
    + ", ".join(str(b) for b in DURATION_BUCKETS)
    + " s): each figure is as exact as its bucket is wide, 5 s below 20 s, 10-15 s up to "
    "a minute, 30-60 s up to 5 minutes, wider beyond"
)


def rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def interval(successes: int, trials: int) -> dict[str, Any]:
    """A proportion with its 95% Wilson interval."""
    low, high = wilson(successes, trials)
    return {
        "calls": successes,
        "of": trials,
        "rate": rate(successes, trials),
        "low": low,
        "high": high,
    }


# -- calls, outcomes, containment, resolution, abandoned, transfers, zero-outs: hour_calls --


def summary(reader: Reader, filters: Filters) -> dict[str, Any]:
    """The sections that hour_calls answers, from one GROUP BY."""
    keys = ("outcome", "reason", "queue", "resolved", "after_task")
    rows = grouped(reader, "hour_calls", keys, ("calls", "seconds"), filters)
    calls = sum(r[5] for r in rows)
    by_outcome: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    by_reason: dict[str, int] = dict.fromkeys(REASONS, 0)
    by_queue: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    resolved = after_task = 0
    for outcome, reason, queue, is_resolved, after, n, secs in rows:
        by_outcome[outcome] = by_outcome.get(outcome, 0) + n
        seconds[outcome] += secs
        resolved += n if is_resolved else 0
        after_task += n if after else 0
        if outcome == "transferred":
            kind = reason if reason in REASONS else UNKNOWN
            by_reason[kind] = by_reason.get(kind, 0) + n
            by_queue[queue or NO_QUEUE] += n
    transferred, abandoned = by_outcome["transferred"], by_outcome["abandoned"]
    return {
        "calls": calls,
        "flows": flows(reader, filters),
        "outcomes": {o: {"calls": n, "rate": rate(n, calls)} for o, n in by_outcome.items()},
        "containment": interval(by_outcome["contained"], calls),
        "resolution": interval(resolved, calls),
        "abandoned": {
            "calls": abandoned,
            "rate": rate(abandoned, calls),
            "after_task": after_task,
            "after_task_rate": rate(after_task, calls),
            "before_task": abandoned - after_task,
            "before_task_rate": rate(abandoned - after_task, calls),
        },
        "transfers": {
            "calls": transferred,
            "rate": rate(transferred, calls),
            "by_reason": _shares(by_reason, transferred),
            "by_queue": _shares(_by_count(by_queue), transferred),
        },
        "zero_outs": {"calls": by_reason["global"], "rate": rate(by_reason["global"], calls)},
        "_seconds": dict(seconds),  # for time in IVR: the exact mean
    }


def directions(reader: Reader, filters: Filters) -> dict[str, dict[str, Any]]:
    """Calls, outcomes and containment per direction (inbound, outbound), whatever the
    direction filter: the report's figures are one direction's, this says both."""
    both = replace(filters, direction=None)
    rows = grouped(reader, "hour_calls", ("direction", "outcome"), ("calls",), both)
    out: dict[str, dict[str, Any]] = {}
    for direction, outcome, n in sorted(rows):
        found = out.setdefault(direction, {"calls": 0, "outcomes": dict.fromkeys(OUTCOMES, 0)})
        found["calls"] += n
        found["outcomes"][outcome] = found["outcomes"].get(outcome, 0) + n
    for found in out.values():
        found["containment"] = interval(found["outcomes"]["contained"], found["calls"])
    return out


CHANNELS = ("voice", "sms", "whatsapp", "chat")  # always listed, in this order


def channels(reader: Reader, filters: Filters) -> dict[str, dict[str, Any]]:
    """Calls (conversations, on text channels) per channel, by outcome, and each
    channel's containment: a conversation counts once, under the channel it started on."""
    rows = grouped(reader, "hour_calls", ("channel", "outcome"), ("calls",), filters)
    counts: dict[str, dict[str, int]] = {c: dict.fromkeys(OUTCOMES, 0) for c in CHANNELS}
    for channel, outcome, n in sorted(rows):
        found = counts.setdefault(channel, dict.fromkeys(OUTCOMES, 0))
        found[outcome] = found.get(outcome, 0) + n
    out = {}
    for channel, by_outcome in counts.items():
        calls = sum(by_outcome.values())
        out[channel] = {
            "calls": calls,
            **by_outcome,
            "containment": rate(by_outcome["contained"], calls),
        }
    return out


def flows(reader: Reader, filters: Filters) -> dict[str, dict[str, Any]]:
    """Calls per flow, and per version with the first and last hour it had calls, oldest
    first: what `--compare A B` names (a version is the flow's, or its content hash)."""
    where, args = filters.where()
    rows = reader.rows(
        "SELECT flow_id, flow_version, SUM(calls), MIN(hour), MAX(hour) FROM hour_calls"
        f"{where} GROUP BY flow_id, flow_version",
        args,
    )
    out: dict[str, dict[str, Any]] = {}
    for flow_id, version, n, first, last in sorted(rows, key=lambda r: (r[0], r[3], r[1])):
        flow = out.setdefault(flow_id, {"calls": 0, "versions": []})
        flow["calls"] += n
        flow["versions"].append(
            {"version": version, "calls": n, "since": iso(first), "until": iso(last + HOUR)}
        )
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["calls"], kv[0])))


def _shares(counts: Mapping[str, int], whole: int) -> dict[str, dict[str, Any]]:
    return {k: {"calls": n, "share": rate(n, whole)} for k, n in counts.items()}


def _by_count(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# -- tasks ---------------------------------------------------------------------------------


def tasks(reader: Reader, filters: Filters, calls: int) -> dict[str, dict[str, Any]]:
    """Calls that resolved each task (a call counts once per task)."""
    rows = grouped(reader, "hour_tasks", ("task",), ("calls",), filters)
    counts = _by_count({task: n for task, n in rows})
    return {task: {"calls": n, "rate": rate(n, calls)} for task, n in counts.items()}


# -- surveys: hour_surveys --------------------------------------------------------------------


def surveys(reader: Reader, filters: Filters) -> dict[str, dict[str, Any]]:
    """Survey answers (CSAT after an agent, or any menu's) per survey: how many, their
    spread, and for answers that are numbers their mean, overall and by how the call ended
    (outcome, queue, transfer reason): the voice of the customer."""
    rows = grouped(
        reader,
        "hour_surveys",
        ("survey", "answer", "outcome", "queue", "reason"),
        ("calls",),
        filters,
    )
    out: dict[str, dict[str, Any]] = {}
    for survey, answer, outcome, queue, reason, n in sorted(rows):
        entry = out.setdefault(survey, {"answers": 0, "counts": {}, "_all": []})
        entry["answers"] += n
        entry["counts"][answer] = entry["counts"].get(answer, 0) + n
        entry["_all"].append((answer, n, {"outcome": outcome, "queue": queue, "reason": reason}))
    for entry in out.values():
        rows_ = entry.pop("_all")
        entry["mean"] = _mean((a, n) for a, n, _ in rows_)
        for by in ("outcome", "queue", "reason"):
            groups: dict[str, list[tuple[str, int]]] = {}
            for answer, n, keys in rows_:
                groups.setdefault(keys[by] or "-", []).append((answer, n))
            entry[f"by_{by}"] = {
                key: {"answers": sum(n for _, n in got), "mean": _mean(got)}
                for key, got in sorted(groups.items())
            }
    return out


def _mean(answers: Iterable[tuple[str, int]]) -> float | None:
    """The mean of the answers that are numbers (a CSAT's 1-5), None when none are."""
    total, count = 0.0, 0
    for answer, n in answers:
        try:
            value = float(answer)
        except ValueError:
            continue
        total, count = total + value * n, count + n
    return round(total / count, 2) if count else None


# -- deflections: hour_legs ---------------------------------------------------------------------


def deflections(reader: Reader, filters: Filters) -> dict[str, dict[str, Any]]:
    """Conversations that went on in another channel ("voice>sms": a call that sent a
    link and was answered by text), by route: how many, their share of the conversations
    started on the first channel, and how they ended (each counted once, by its last leg)."""
    started: dict[str, int] = {
        c: n for c, n in grouped(reader, "hour_calls", ("channel",), ("calls",), filters)
    }
    rows = grouped(reader, "hour_legs", ("legs", "outcome"), ("calls",), filters)
    out: dict[str, dict[str, Any]] = {}
    for legs, outcome, n in sorted(rows):
        entry = out.setdefault(legs, {"calls": 0, "outcomes": dict.fromkeys(OUTCOMES, 0)})
        entry["calls"] += n
        entry["outcomes"][outcome] = entry["outcomes"].get(outcome, 0) + n
    for legs, entry in out.items():
        entry["rate"] = rate(entry["calls"], started.get(legs.split(">", 1)[0], 0))
        entry["containment"] = rate(entry["outcomes"]["contained"], entry["calls"])
    return out


# -- the drop-off funnel: hour_nodes ----------------------------------------------------------


def funnel(
    reader: Reader,
    filters: Filters,
    flow_calls: Mapping[str, int],
    orders: Mapping[str, Sequence[str]],
) -> dict[str, list[dict[str, Any]]]:
    """Per flow, per node: calls that reached it, left to an agent from it, hung up at it;
    nodes in the flow's order (`orders`), then any others by reach."""
    keys, sums = ("flow_id", "node"), ("reached", "transferred", "abandoned")
    out: dict[str, list[dict[str, Any]]] = {}
    for flow_id, rows in _per_flow(grouped(reader, "hour_nodes", keys, sums, filters)):
        total = flow_calls.get(flow_id, 0)
        found = {
            node: {
                "node": node,
                "reached": reached,
                "reached_rate": rate(reached, total),
                "transferred": left,
                "transferred_rate": rate(left, reached),
                "abandoned": hung_up,
                "abandoned_rate": rate(hung_up, reached),
            }
            for node, reached, left, hung_up in rows
        }
        out[flow_id] = _in_order(found, orders.get(flow_id, ()), "reached")
    return out


def _per_flow(rows: Iterable[Sequence[Any]]) -> list[tuple[str, list[Sequence[Any]]]]:
    per: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        per[row[0]].append(row[1:])
    return sorted(per.items())


def _in_order(
    found: Mapping[str, dict[str, Any]], order: Sequence[str], by: str
) -> list[dict[str, Any]]:
    known = [found[n] for n in order if n in found]
    rest = sorted(
        (v for n, v in found.items() if n not in order), key=lambda v: (-v[by], v["node"])
    )
    return known + rest


# -- DTMF vs speech, and the prompts that confuse callers: hour_inputs ---------------------------


def inputs(reader: Reader, filters: Filters) -> dict[str, Any]:
    """Inputs by mode (share and match rate) and per node (no-input and no-match rates);
    mode '' is no input at all."""
    keys = ("flow_id", "node", "mode", "result")
    rows = grouped(reader, "hour_inputs", keys, ("inputs",), filters)
    modes: dict[str, dict[str, int]] = {m: {"match": 0, "no_match": 0} for m in ("dtmf", "speech")}
    no_input = 0
    for _, _, mode, result, n in rows:
        if mode:
            counts = modes.setdefault(mode, {"match": 0, "no_match": 0})
            counts[result] = counts.get(result, 0) + n
        else:
            no_input += n
    with_mode = sum(sum(c.values()) for c in modes.values())
    total = with_mode + no_input
    return {
        "inputs": total,
        "modes": {
            mode: {
                "inputs": sum(c.values()),
                "share": rate(sum(c.values()), with_mode),
                "match": c["match"],
                "no_match": c["no_match"],
                "match_rate": rate(c["match"], sum(c.values())),
            }
            for mode, c in modes.items()
        },
        "no_input": {"inputs": no_input, "rate": rate(no_input, total)},
        "_rows": rows,
    }


def prompts(rows: Sequence[Sequence[Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per flow, the nodes that take input, the most confusing first: the share of their
    inputs that were no input or no match."""
    out: dict[str, list[dict[str, Any]]] = {}
    for flow_id, flow_rows in _per_flow(rows):
        nodes: dict[str, dict[str, int]] = {}
        for node, mode, result, n in flow_rows:
            counts = nodes.setdefault(
                node,
                {"inputs": 0, "match": 0, "no_match": 0, "no_input": 0, "dtmf": 0, "speech": 0},
            )
            counts["inputs"] += n
            counts[result if result in counts else "no_match"] += n
            if mode in ("dtmf", "speech"):
                counts[mode] += n
        worst = sorted(
            nodes.items(),
            key=lambda kv: (-(kv[1]["no_input"] + kv[1]["no_match"]) / kv[1]["inputs"], kv[0]),
        )
        out[flow_id] = [
            {
                "node": node,
                **c,
                "no_input_rate": rate(c["no_input"], c["inputs"]),
                "no_match_rate": rate(c["no_match"], c["inputs"]),
            }
            for node, c in worst
        ]
    return out


# -- time in IVR: hour_durations --------------------------------------------------------------


def durations(reader: Reader, filters: Filters, seconds: Mapping[str, float]) -> dict[str, Any]:
    """Median and p90 of time in IVR by outcome, interpolated within buckets; the mean is
    exact (the rollups keep the sum of seconds)."""
    rows = grouped(reader, "hour_durations", ("outcome", "bucket"), ("calls",), filters)
    per: dict[str, dict[int, int]] = defaultdict(dict)
    for outcome, bucket, n in rows:
        per[outcome][bucket] = n
    by_outcome: dict[str, Any] = {}
    everything: dict[int, int] = defaultdict(int)
    for outcome in (*OUTCOMES, *sorted(set(per) - set(OUTCOMES))):
        counts = per.get(outcome, {})
        for bucket, n in counts.items():
            everything[bucket] += n
        by_outcome[outcome] = _times(counts, seconds.get(outcome, 0.0))
    return {
        "precision": PRECISION,
        "buckets": list(DURATION_BUCKETS),
        "by_outcome": by_outcome,
        "all": _times(everything, sum(seconds.values())),
    }


def _times(counts: Mapping[int, int], seconds: float) -> dict[str, Any]:
    calls = sum(counts.values())
    median, p90 = percentile(counts, 0.5), percentile(counts, 0.9)
    return {
        "calls": calls,
        "mean": rate(seconds, calls),
        "median": median[0] if median else None,
        "median_bucket": list(median[1]) if median else None,
        "p90": p90[0] if p90 else None,
        "p90_bucket": list(p90[1]) if p90 else None,
    }


def percentile(counts: Mapping[int, int], q: float) -> tuple[float, tuple[int, int | None]] | None:
    """The q-quantile of durations counted in buckets (bucket = upper bound, 0 = past the
    last), linear within its bucket, and that bucket's bounds; None without calls. Past the
    last bound it is that bound: the bucket has no upper end to interpolate towards."""
    total = sum(counts.values())
    if not total:
        return None
    target, seen, low = q * total, 0, 0
    for high in (*DURATION_BUCKETS, 0):
        n = counts.get(high, 0)
        if n and seen + n >= target:
            if high == 0:
                return float(low), (low, None)
            return low + (high - low) * (target - seen) / n, (low, high)
        seen += n
        low = high or low
    return float(low), (low, None)  # not reached: the buckets hold every call


# -- calls per day: hour_calls by day ----------------------------------------------------------


def per_day(reader: Reader, filters: Filters) -> list[dict[str, Any]]:
    """Calls and outcomes per UTC day, the days without calls left out."""
    keys = (f"hour / {DAY}", "outcome")
    rows = grouped(reader, "hour_calls", keys, ("calls",), filters)
    days: dict[int, dict[str, Any]] = {}
    for day, outcome, n in rows:
        row = days.setdefault(int(day), {"calls": 0, **dict.fromkeys(OUTCOMES, 0)})
        row["calls"] += n
        row[outcome] = row.get(outcome, 0) + n
    return [{"day": day_of(day * DAY), **days[day]} for day in sorted(days)]


def resolved_per_day(reader: Reader, filters: Filters) -> list[dict[str, Any]]:
    """Calls, contained and self-served calls per UTC day (the dashboard's rates over
    time; `ivr report` keeps `per_day`'s keys as they are)."""
    keys = (f"hour / {DAY}", "outcome", "resolved")
    days: dict[int, dict[str, int]] = {}
    for day, outcome, resolved, n in grouped(reader, "hour_calls", keys, ("calls",), filters):
        row = days.setdefault(int(day), {"calls": 0, "contained": 0, "resolved": 0})
        row["calls"] += n
        row["contained"] += n if outcome == "contained" else 0
        row["resolved"] += n if resolved else 0
    return [{"day": day_of(day * DAY), **days[day]} for day in sorted(days)]


def extent(reader: Reader, filters: Filters) -> tuple[int | None, int | None]:
    """The first and last hour with calls in the window."""
    where, args = filters.where()
    row = reader.rows(f"SELECT MIN(hour), MAX(hour) FROM hour_calls{where}", args)[0]
    return row[0], row[1]
