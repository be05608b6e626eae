"""`ivr report` for a terminal: the report's dict as aligned plain-text tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DASH = "-"
CHANNEL_COUNTS = ("calls", "contained", "transferred", "abandoned", "failed")


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1%}"


def signed_pct(value: float | None) -> str:
    """A difference of rates, in percentage points."""
    return DASH if value is None else f"{value * 100:+.1f} pp"


def secs(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} s"


def num(value: int | float | None) -> str:
    return DASH if value is None else f"{value:,}"


def ci(p: Mapping[str, Any]) -> str:
    """A proportion as `33.3% (95% CI 6.1%-79.2%, 1 of 3)`."""
    return (
        f"{pct(p['rate'])} (95% CI {pct(p['low'])}-{pct(p['high'])}, {p['calls']:,} of {p['of']:,})"
    )


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    indent: str = "  ",
    left: int = 1,
) -> list[str]:
    """Rows under headers, the first `left` columns left-aligned and the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(cells[0]), *(line(row) for row in cells[1:])]


def render(report: Mapping[str, Any]) -> str:
    """The whole report (or an experiment's, or a comparison) as text."""
    if "compare" in report:
        return render_compare(report)
    lines = header(report)
    if "experiment" in report:
        lines += experiment_lines(report["experiment"])
    lines += body(report)
    return "\n".join(lines) + "\n"


def header(report: Mapping[str, Any]) -> list[str]:
    filters = ", ".join(f"{k}={v}" for k, v in report["filters"].items() if v is not None)
    return [
        f"ivr report: {report['records']}",
        f"Window: {report['window']['text']} (--since/--until select whole UTC hours)",
        f"Filters: {filters or 'none'}",
        "",
    ]


Table = tuple[str, Sequence[str], Sequence[Sequence[str]]]  # (title, headers, rows)


def headlines(r: Mapping[str, Any]) -> list[str]:
    """The figures that open a report, one line each."""
    ab, tr, zo = r["abandoned"], r["transfers"], r["zero_outs"]
    versions = "; ".join(
        f"{flow_id} {f['calls']:,} ("
        + ", ".join(f"version {v['version']}: {v['calls']:,}" for v in f["versions"])
        + ")"
        for flow_id, f in r["flows"].items()
    )
    return [
        f"Calls: {r['calls']:,}" + (f": {versions}" if versions else ""),
        f"Containment (contained / all ended): {ci(r['containment'])}",
        f"Self-service resolution (a task done, no agent / all ended): {ci(r['resolution'])}",
        f"Abandoned: {ab['calls']:,} ({pct(ab['rate'])}): after a resolved task "
        f"{ab['after_task']:,} ({pct(ab['after_task_rate'])}), before "
        f"{ab['before_task']:,} ({pct(ab['before_task_rate'])})",
        f"Transfers: {tr['calls']:,} ({pct(tr['rate'])})",
        f"Zero-outs (reason global): {zo['calls']:,} ({pct(zo['rate'])} of calls)",
        *_other_directions(r),
    ]


def _other_directions(r: Mapping[str, Any]) -> list[str]:
    """The calls of the direction the figures above leave out, counted apart (campaigns'
    outbound calls never count in inbound containment)."""
    shown = r["filters"].get("direction")
    return [
        f"{direction.capitalize()} calls, not counted above: {d['calls']:,}; "
        f"contained {ci(d['containment'])} (`--direction {direction}`)"
        for direction, d in r.get("directions", {}).items()
        if shown is not None and direction != shown
    ]


def tables(r: Mapping[str, Any]) -> list[Table]:
    """Every table of a report, in order: the terminal and the HTML page show the same."""
    out: list[Table] = [
        ("Outcomes", ("outcome", "calls", "rate"), _rates(r["outcomes"], "rate")),
        (
            "Containment by channel (calls and text conversations)",
            ("channel", "calls", "contained", "transferred", "abandoned", "failed", "containment"),
            [
                (name, *(num(c[k]) for k in CHANNEL_COUNTS), pct(c["containment"]))
                for name, c in r.get("channels", {}).items()
                if c["calls"]
            ],
        ),
        (
            "Transfers by reason",
            ("reason", "calls", "share"),
            _rates(r["transfers"]["by_reason"], "share"),
        ),
        (
            "Transfers by queue",
            ("queue", "calls", "share"),
            _rates(r["transfers"]["by_queue"], "share"),
        ),
        ("Tasks resolved", ("task", "calls", "rate"), _rates(r["tasks"], "rate")),
    ]
    for name, survey in r.get("surveys", {}).items():
        answered = [("all", num(survey["answers"]), _mean(survey["mean"]))]
        for by in ("outcome", "queue", "reason"):
            answered += [
                (f"{by} {key}", num(g["answers"]), _mean(g["mean"]))
                for key, g in survey[f"by_{by}"].items()
            ]
        out.append((f"Survey: {name}", ("calls", "answers", "mean"), answered))
    moved = r.get("deflections", {})
    if moved:
        rows = [
            (
                legs.replace(">", " > "),
                num(d["calls"]),
                pct(d["rate"]),
                *(num(d["outcomes"][o]) for o in ("contained", "transferred", "abandoned")),
            )
            for legs, d in moved.items()
        ]
        header = ("channels", "calls", "of first", "contained", "transferred", "abandoned")
        out.append(("Went on in another channel", header, rows))
    for flow_id, nodes in r["funnel"].items():
        rows = [
            (
                n["node"],
                num(n["reached"]),
                pct(n["reached_rate"]),
                num(n["transferred"]),
                num(n["abandoned"]),
            )
            for n in nodes
        ]
        out.append(
            (
                f"Drop-off funnel: {flow_id}",
                ("node", "reached", "of calls", "to agent", "hung up"),
                rows,
            )
        )
    inputs, ni = r["inputs"], r["inputs"]["no_input"]
    out.append(
        (
            f"DTMF vs speech: {inputs['inputs']:,} inputs, {ni['inputs']:,} of them "
            f"no input ({pct(ni['rate'])})",
            ("mode", "inputs", "share", "matched", "match rate"),
            [
                (m, num(v["inputs"]), pct(v["share"]), num(v["match"]), pct(v["match_rate"]))
                for m, v in inputs["modes"].items()
            ],
        )
    )
    for flow_id, nodes in r["prompts"].items():
        asked = [
            (
                n["node"],
                num(n["inputs"]),
                pct(n["no_input_rate"]),
                pct(n["no_match_rate"]),
                num(n["dtmf"]),
                num(n["speech"]),
            )
            for n in nodes
        ]
        out.append(
            (
                f"Prompts that confuse callers: {flow_id}",
                ("node", "inputs", "no input", "no match", "dtmf", "speech"),
                asked,
            )
        )
    times = r["time_in_ivr"]
    out.append(
        (
            "Time in IVR",
            ("outcome", "calls", "median", "p90", "mean"),
            [
                (o, num(v["calls"]), secs(v["median"]), secs(v["p90"]), secs(v["mean"]))
                for o, v in [*times["by_outcome"].items(), ("all", times["all"])]
            ],
        )
    )
    out.append(
        (
            "Calls per day (UTC)",
            ("day", "calls", "contained", "transferred", "abandoned", "failed"),
            [
                (
                    d["day"],
                    num(d["calls"]),
                    num(d["contained"]),
                    num(d["transferred"]),
                    num(d["abandoned"]),
                    num(d["failed"]),
                )
                for d in r["per_day"]
            ],
        )
    )
    return out


def _rates(counts: Mapping[str, Mapping[str, Any]], key: str) -> list[Sequence[str]]:
    return [(k, num(v["calls"]), pct(v[key])) for k, v in counts.items()]


def body(r: Mapping[str, Any]) -> list[str]:
    out = [*headlines(r)]
    for title, headers, rows in tables(r):
        out += ["", title, *table(headers, rows)]
        if title == "Time in IVR":
            out.append(f"  ({r['time_in_ivr']['precision']}; the mean is exact)")
    return out


def experiment_lines(exp: Mapping[str, Any]) -> list[str]:
    out = [f"Experiment: {exp['name']}"]
    out += table(
        ("variant", "calls", "containment", "self-service resolution"),
        [
            (v, num(c["calls"]), ci(c["containment"]), ci(c["resolution"]))
            for v, c in exp["variants"].items()
        ],
    )
    for test in exp["tests"]:
        out.append(f"  {test['metric']}, {' vs '.join(test['between'])}: {test['sentence']}")
    if not exp["tests"]:
        out.append(f"  {exp['sentence']}")
    return [*out, ""]


def compare_rows(report: Mapping[str, Any]) -> list[Sequence[str]]:
    """A comparison's headline figures: (what, A, B, B - A)."""
    a, b, d = report["a"], report["b"], report["differences"]
    rows: list[Sequence[str]] = [
        ("calls", num(a["calls"]), num(b["calls"]), f"{d['calls']:+,}"),
        (
            "containment",
            pct(a["containment"]["rate"]),
            pct(b["containment"]["rate"]),
            signed_pct(d["containment"]),
        ),
        (
            "self-service resolution",
            pct(a["resolution"]["rate"]),
            pct(b["resolution"]["rate"]),
            signed_pct(d["resolution"]),
        ),
    ]
    rows += [
        (
            o,
            pct(a["outcomes"][o]["rate"]),
            pct(b["outcomes"][o]["rate"]),
            signed_pct(d["outcomes"][o]),
        )
        for o in a["outcomes"]
    ]
    rows += [
        (
            "abandoned after a task",
            pct(a["abandoned"]["after_task_rate"]),
            pct(b["abandoned"]["after_task_rate"]),
            signed_pct(d["abandoned_after_task"]),
        ),
        (
            "abandoned before",
            pct(a["abandoned"]["before_task_rate"]),
            pct(b["abandoned"]["before_task_rate"]),
            signed_pct(d["abandoned_before_task"]),
        ),
        (
            "zero-outs",
            pct(a["zero_outs"]["rate"]),
            pct(b["zero_outs"]["rate"]),
            signed_pct(d["zero_outs"]),
        ),
    ]
    rows += [
        (f"transfers: {reason}", _reason(a, reason), _reason(b, reason), signed_pct(diff))
        for reason, diff in d["transfer_reasons"].items()
    ]
    rows.append(
        (
            "median time in IVR",
            secs(a["time_in_ivr"]["all"]["median"]),
            secs(b["time_in_ivr"]["all"]["median"]),
            DASH if d["median_time"] is None else f"{d['median_time']:+.1f} s",
        )
    )
    return rows


def compare_windows(report: Mapping[str, Any]) -> list[str]:
    names = report["compare"]
    return [
        f"{side.upper()}: {names[side]}: {report[side]['window']['text']}" for side in ("a", "b")
    ]


def compare_headers(report: Mapping[str, Any]) -> tuple[str, str, str, str]:
    names = report["compare"]
    return ("", f"A: {names['a']}", f"B: {names['b']}", "B - A")


def render_compare(report: Mapping[str, Any]) -> str:
    """Two sides: A, B and B - A for the headline figures, then the tests."""
    lines = [f"ivr report --compare ({report['compare']['by']}): {report['records']}"]
    lines += [*compare_windows(report), ""]
    lines += table(compare_headers(report), compare_rows(report))
    lines += ["", "(transfer rows: that reason's transfers as a share of all calls)", ""]
    lines += [f"{t['metric'].capitalize()}: {t['sentence']}" for t in report["tests"]]
    return "\n".join(lines) + "\n"


def _reason(report: Mapping[str, Any], reason: str) -> str:
    found = report["transfers"]["by_reason"].get(reason)
    return pct((found["calls"] if found else 0) / report["calls"] if report["calls"] else None)


def _mean(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
