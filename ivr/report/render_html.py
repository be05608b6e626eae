"""`ivr report --html FILE`: one self-contained page, charts as inline SVG, no script.

Built with ElementTree (text is escaped by the serializer, never by hand); the page
loads nothing, so it reads the same offline, attached to a ticket or from a file share.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from ivr.report import charts
from ivr.report.render_text import (
    Table,
    ci,
    compare_headers,
    compare_rows,
    compare_windows,
    pct,
    tables,
)

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
  margin: 2em auto; max-width: 960px; padding: 0 1em; color: #212121; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.8em; font-size: 1.25em; }
.meta { color: #616161; margin: .2em 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8em; margin: 1.2em 0; }
.card { border: 1px solid #e0e0e0; border-radius: 6px; padding: .6em .9em; min-width: 12em; }
.card .value { font-size: 1.5em; font-weight: 600; }
.card .note { color: #616161; font-size: .9em; }
table { border-collapse: collapse; margin: .6em 0 1em; }
th, td { padding: .25em .8em; border-bottom: 1px solid #eeeeee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #fafafa; font-weight: 600; }
.sentence { background: #f5f5f5; border-left: 4px solid #1565c0; padding: .5em .8em; }
svg { max-width: 100%; height: auto; }
"""


def render(report: Mapping[str, Any]) -> str:
    """The page as HTML text."""
    html = ET.Element("html", lang="en")
    head = ET.SubElement(html, "head")
    ET.SubElement(head, "meta", charset="utf-8")
    ET.SubElement(head, "meta", name="viewport", content="width=device-width, initial-scale=1")
    ET.SubElement(head, "link", rel="icon", href="data:,")  # no request for /favicon.ico
    _text(head, "title", "ivr report")
    _text(head, "style", CSS)
    body = ET.SubElement(html, "body")
    if "compare" in report:
        _compare(body, report)
    else:
        _header(body, report)
        if "experiment" in report:
            experiment_body(body, report["experiment"])
        report_body(body, report)
    return "<!DOCTYPE html>\n" + ET.tostring(html, encoding="unicode", method="html") + "\n"


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def _header(body: ET.Element, report: Mapping[str, Any]) -> None:
    _text(body, "h1", "ivr report")
    filters = ", ".join(f"{k}={v}" for k, v in report["filters"].items() if v is not None)
    _text(body, "p", f"Records: {report['records']}", **{"class": "meta"})
    _text(
        body,
        "p",
        f"Window: {report['window']['text']}; --since/--until select whole hours",
        **{"class": "meta"},
    )
    _text(body, "p", f"Filters: {filters or 'none'}", **{"class": "meta"})
    _text(body, "p", f"Generated {report['generated_at']}", **{"class": "meta"})


def report_body(body: ET.Element, r: Mapping[str, Any]) -> None:
    """The report's cards, charts and tables into `body` (this page's, and /dashboard's)."""
    cards = ET.SubElement(body, "div", {"class": "cards"})
    _card(cards, "Calls", f"{r['calls']:,}", "all ended calls", ("calls", r["calls"]))
    _card(
        cards,
        "Containment",
        pct(r["containment"]["rate"]),
        ci(r["containment"]),
        ("containment", r["containment"]["rate"]),
    )
    _card(
        cards,
        "Self-service resolution",
        pct(r["resolution"]["rate"]),
        ci(r["resolution"]),
        ("resolution", r["resolution"]["rate"]),
    )
    ab = r["abandoned"]
    _card(
        cards,
        "Abandoned",
        pct(ab["rate"]),
        f"after a resolved task {pct(ab['after_task_rate'])}, before {pct(ab['before_task_rate'])}",
        ("abandoned", ab["rate"]),
    )
    _card(
        cards,
        "Transfers",
        pct(r["transfers"]["rate"]),
        f"{r['transfers']['calls']:,} calls",
        ("transfers", r["transfers"]["rate"]),
    )
    _card(
        cards,
        "Zero-outs",
        pct(r["zero_outs"]["rate"]),
        f"{r['zero_outs']['calls']:,} calls",
        ("zero_outs", r["zero_outs"]["rate"]),
    )
    _text(body, "h2", "Outcomes over time")
    body.append(charts.outcomes_over_time(r["per_day"]))
    _text(body, "h2", "Transfers")
    body.append(charts.transfer_reasons(r["transfers"]["by_reason"]))
    _text(body, "h2", "Drop-off funnel")
    for flow_id, nodes in r["funnel"].items():
        body.append(charts.funnel(flow_id, nodes))
    _text(body, "h2", "DTMF vs speech")
    body.append(charts.modes(r["inputs"]))
    _text(body, "h2", "Tables")
    for found in tables(r):
        _table(body, found)
        if found[0] == "Time in IVR":
            _text(body, "p", r["time_in_ivr"]["precision"] + "; the mean is exact.")


def _card(parent: ET.Element, title: str, value: str, note: str, figure: tuple[str, Any]) -> None:
    """A headline figure; `figure` (its key, its exact value) is kept in data attributes
    for scripts and tests: the text is rounded."""
    key, exact = figure
    attrs = {"class": "card", "data-key": key, "data-value": "" if exact is None else repr(exact)}
    card = ET.SubElement(parent, "div", attrs)
    _text(card, "div", title)
    _text(card, "div", value, **{"class": "value"})
    _text(card, "div", note, **{"class": "note"})


def _table(parent: ET.Element, found: Table) -> None:
    title, headers, rows = found
    _text(parent, "h3", title)
    _grid(parent, headers, rows)


def _grid(parent: ET.Element, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    grid = ET.SubElement(parent, "table")
    tr = ET.SubElement(ET.SubElement(grid, "thead"), "tr")
    for header in headers:
        _text(tr, "th", header)
    tbody = ET.SubElement(grid, "tbody")
    for row in rows:
        tr = ET.SubElement(tbody, "tr")
        for cell in row:
            _text(tr, "td", cell)


def experiment_body(body: ET.Element, exp: Mapping[str, Any]) -> None:
    """An experiment's variants and tests into `body` (this page's, and /dashboard's)."""
    _text(body, "h2", f"Experiment: {exp['name']}")
    rows = [
        (v, f"{c['calls']:,}", ci(c["containment"]), ci(c["resolution"]))
        for v, c in exp["variants"].items()
    ]
    _grid(body, ("variant", "calls", "containment", "self-service resolution"), rows)
    for test in exp["tests"]:
        _text(
            body,
            "p",
            f"{test['metric'].capitalize()}, {' vs '.join(test['between'])}: {test['sentence']}",
            **{"class": "sentence"},
        )
    if not exp["tests"]:
        _text(body, "p", exp["sentence"], **{"class": "sentence"})


def _compare(body: ET.Element, report: Mapping[str, Any]) -> None:
    names = report["compare"]
    _text(body, "h1", f"ivr report: {names['a']} against {names['b']}")
    _text(body, "p", f"Records: {report['records']}", **{"class": "meta"})
    _text(body, "p", f"Generated {report['generated_at']}", **{"class": "meta"})
    for line in compare_windows(report):
        _text(body, "p", line, **{"class": "meta"})
    _grid(body, compare_headers(report), compare_rows(report))
    _text(body, "p", "Transfer rows: that reason's transfers as a share of all calls.")
    for test in report["tests"]:
        _text(
            body, "p", f"{test['metric'].capitalize()}: {test['sentence']}", **{"class": "sentence"}
        )
    for side in ("a", "b"):
        _text(body, "h2", f"{side.upper()}: {names[side]}")
        body.append(charts.outcomes_over_time(report[side]["per_day"]))
