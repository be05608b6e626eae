"""A whole report from its sections: one window, two side by side, or an experiment's variants.

What `ivr report` prints and what the dashboard will show: plain dicts (the JSON that
`--json` prints, keys documented in docs/report.md), read in one snapshot of the records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ivr.errors import ConfigError
from ivr.report import sections
from ivr.report.query import Filters, Reader, grouped
from ivr.report.window import Window, iso, parse_time
from ivr.stats import TEST_NAMES, verdict
from ivr.store.records import HOUR

FORMAT = "ivr-report/1"  # changes only when a key changes meaning or goes away
COMPARED = ("containment", "resolution")  # the proportions tested between two sides


def report(reader: Reader, filters: Filters, flows_dir: Path | None = None) -> dict[str, Any]:
    """Every section over the calls `filters` selects, read in one snapshot."""
    with reader.snapshot():
        return _sections(reader, filters, flows_dir)


def _sections(reader: Reader, filters: Filters, flows_dir: Path | None) -> dict[str, Any]:
    first, last = sections.extent(reader, filters)
    summary = sections.summary(reader, filters)
    seconds = summary.pop("_seconds")
    calls = summary["calls"]
    flows = {flow_id: f["calls"] for flow_id, f in summary["flows"].items()}
    inputs = sections.inputs(reader, filters)
    input_rows = inputs.pop("_rows")
    return {
        "format": FORMAT,
        "generated_at": iso(time.time()),
        "records": reader.where,
        "window": _window(filters.window, first, last),
        "filters": filters.describe(),
        **summary,
        "channels": sections.channels(reader, filters),
        "tasks": sections.tasks(reader, filters, calls),
        "surveys": sections.surveys(reader, filters),
        "deflections": sections.deflections(reader, filters),
        "funnel": sections.funnel(reader, filters, flows, flow_orders(flows, flows_dir)),
        "inputs": inputs,
        "prompts": sections.prompts(input_rows),
        "time_in_ivr": sections.durations(reader, filters, seconds),
        "per_day": sections.per_day(reader, filters),
        "directions": sections.directions(reader, filters),
    }


def _window(window: Window, first: int | None, last: int | None) -> dict[str, Any]:
    """The exact whole hours counted: as asked, or where open, the data's own extent."""
    since = window.since if window.since is not None else first
    until = window.until if window.until is not None else (None if last is None else last + HOUR)
    return {
        "since": iso(since),
        "until": iso(until),
        "hours": None if since is None or until is None else (until - since) // HOUR,
        "text": window.describe(first, last),
    }


# -- two sides ---------------------------------------------------------------------------------


def sides(
    a: str, b: str, filters: Filters, now: float | None = None
) -> tuple[str, Filters, Filters]:
    """What `--compare A B` compares: two date ranges (`SINCE..UNTIL`, either end may be
    left open) or two flow versions; ("window" | "version", filters of A, filters of B)."""
    if ".." in a or ".." in b:
        return "window", _range(a, filters, now), _range(b, filters, now)
    return "version", replace(filters, flow_version=a), replace(filters, flow_version=b)


def _range(text: str, filters: Filters, now: float | None) -> Filters:
    since, dots, until = text.partition("..")
    if not dots:
        raise ConfigError(f"--compare: expected a date range SINCE..UNTIL, got {text!r}")
    return replace(
        filters,
        window=Window.of(
            parse_time(since, now, "--compare") if since else None,
            parse_time(until, now, "--compare") if until else None,
        ),
    )


def compare(
    reader: Reader, by: str, a: Filters, b: Filters, flows_dir: Path | None = None
) -> dict[str, Any]:
    """Two reports side by side, B's figures minus A's, and whether containment and
    self-service resolution differ (ivr.stats)."""
    with reader.snapshot():
        left, right = _sections(reader, a, flows_dir), _sections(reader, b, flows_dir)
    names = (
        (a.flow_version or "", b.flow_version or "")
        if by == "version"
        else (left["window"]["text"], right["window"]["text"])
    )
    if by == "version" and names[0] == names[1]:
        names = ("A", "B")
    counts = {
        what: {names[0]: _pair(left[what]), names[1]: _pair(right[what])} for what in COMPARED
    }
    return {
        "format": FORMAT,
        "generated_at": iso(time.time()),
        "records": reader.where,
        "compare": {"by": by, "a": names[0], "b": names[1]},
        "a": left,
        "b": right,
        "differences": differences(left, right),
        "tests": [_test(what, c) for what, c in counts.items()],
    }


def _pair(proportion: Mapping[str, Any]) -> tuple[int, int]:
    return proportion["calls"], proportion["of"]


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """B minus A: the headline figures (rates as fractions, times in seconds)."""

    def minus(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else y - x

    reasons = a["transfers"]["by_reason"].keys() | b["transfers"]["by_reason"].keys()
    return {
        "calls": b["calls"] - a["calls"],
        "containment": minus(a["containment"]["rate"], b["containment"]["rate"]),
        "resolution": minus(a["resolution"]["rate"], b["resolution"]["rate"]),
        "outcomes": {
            o: minus(a["outcomes"][o]["rate"], b["outcomes"][o]["rate"]) for o in a["outcomes"]
        },
        "abandoned_after_task": minus(
            a["abandoned"]["after_task_rate"], b["abandoned"]["after_task_rate"]
        ),
        "abandoned_before_task": minus(
            a["abandoned"]["before_task_rate"], b["abandoned"]["before_task_rate"]
        ),
        "transfers": minus(a["transfers"]["rate"], b["transfers"]["rate"]),
        "zero_outs": minus(a["zero_outs"]["rate"], b["zero_outs"]["rate"]),
        "transfer_reasons": {r: minus(_share(a, r), _share(b, r)) for r in sorted(reasons)},
        "median_time": minus(a["time_in_ivr"]["all"]["median"], b["time_in_ivr"]["all"]["median"]),
    }


def _share(report: Mapping[str, Any], reason: str) -> float | None:
    """Transfers for `reason` as a share of all calls (0 when none were for it)."""
    found = report["transfers"]["by_reason"].get(reason)
    return sections.rate(found["calls"] if found else 0, report["calls"])


def _test(what: str, counts: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    found = verdict(
        counts, what="containment" if what == "containment" else "self-service resolution"
    )
    return {
        "metric": what,
        "between": list(counts),
        "test": found.test,
        "test_name": TEST_NAMES[found.test],
        "p_value": found.p_value,
        "significant": found.significant,
        "more_calls": found.more_calls,
        "sentence": found.sentence,
    }


# -- experiments -------------------------------------------------------------------------------


def experiment(
    reader: Reader, name: str, filters: Filters, flows_dir: Path | None = None
) -> dict[str, Any]:
    """The report over an experiment's calls, with per variant containment and
    self-service resolution, and the tests between the variants (each against the first)."""
    filters = replace(filters, experiment=name)
    with reader.snapshot():
        whole = _sections(reader, filters, flows_dir)
        rows = grouped(
            reader, "hour_calls", ("variant", "outcome", "resolved"), ("calls",), filters
        )
    variants: dict[str, dict[str, int]] = {}
    for variant, outcome, resolved, n in rows:
        counts = variants.setdefault(variant, {"calls": 0, "contained": 0, "resolved": 0})
        counts["calls"] += n
        counts["contained"] += n if outcome == "contained" else 0
        counts["resolved"] += n if resolved else 0
    names = sorted(variants)
    tests = [
        _test(what, {first: _counts(variants[first], what), other: _counts(variants[other], what)})
        for first in names[:1]
        for other in names[1:]
        for what in COMPARED
    ]
    whole["experiment"] = {
        "name": name,
        "variants": {
            v: {
                "calls": c["calls"],
                "containment": sections.interval(c["contained"], c["calls"]),
                "resolution": sections.interval(c["resolved"], c["calls"]),
            }
            for v, c in sorted(variants.items())
        },
        "tests": tests,
        "sentence": _verdicts(name, names, tests),
    }
    return whole


def _counts(counts: Mapping[str, int], what: str) -> tuple[int, int]:
    return counts["contained" if what == "containment" else "resolved"], counts["calls"]


def _verdicts(name: str, names: Sequence[str], tests: Sequence[Mapping[str, Any]]) -> str:
    if not names:
        return f"No calls in experiment {name!r} in this window."
    if len(names) == 1:
        return f"Only variant {names[0]!r} has calls in experiment {name!r}: nothing to compare."
    return " ".join(f"{t['metric'].capitalize()}: {t['sentence']}" for t in tests)


# -- flows' node order ---------------------------------------------------------------------------


def flows_dir_default() -> Path:
    """Where `ivr serve` finds flows: the funnel lists nodes in their flow's order."""
    return Path(os.environ.get("IVR_FLOWS") or "flows")


def flow_orders(
    flow_ids: Sequence[str] | Mapping[str, Any], flows_dir: Path | None
) -> dict[str, list[str]]:
    """Node names in file order for the flows found in `flows_dir` (ID.yaml first, then
    any file whose flow has that id); a flow not found or with errors is left out, and its
    funnel is ordered by reach."""
    if flows_dir is None or not flows_dir.is_dir():
        return {}
    from ivr.flow import check_flow, flow_files

    wanted, found = set(flow_ids), dict[str, list[str]]()
    files = flow_files(flows_dir)
    named = [p for p in files if p.stem in wanted]
    for path in [*named, *(p for p in files if p not in named)]:
        if not wanted - found.keys():
            break
        flow, _ = check_flow(path)
        if flow is not None and flow.id in wanted and flow.id not in found:
            found[flow.id] = list(flow.nodes)
    return found
