"""The report's charts as inline SVG elements, drawn server-side by pygal.

Each chart is an ElementTree element an HTML page embeds as it is: pygal's own config
`<script>` is dropped (the page has no JavaScript and loads nothing) and namespaces are
taken off, as an HTML parser puts `<svg>` and what it holds in the SVG namespace itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import pygal
from pygal.style import Style

OUTCOME_COLOURS = {
    "contained": "#2e7d32",
    "transferred": "#1565c0",
    "abandoned": "#ef6c00",
    "failed": "#c62828",
}
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    font_family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif",
    colors=("#2e7d32", "#1565c0", "#ef6c00", "#c62828", "#6a1b9a", "#00838f"),
    title_font_size=15,
    legend_font_size=12,
    label_font_size=11,
    major_label_font_size=11,
    value_font_size=11,
)
WIDTH = 860
MAX_BARS = 30  # nodes in a funnel chart: the rest are in its table


def _options(height: int, **more: Any) -> dict[str, Any]:
    return {
        "js": [],
        "style": STYLE,
        "width": WIDTH,
        "height": height,
        "explicit_size": True,
        "disable_xml_declaration": True,
        "legend_at_bottom": True,
        "print_values": False,
        "truncate_label": -1,
        "no_data_text": "no calls",
        **more,
    }


def element(chart: pygal.graph.graph.Graph) -> ET.Element:
    """`chart` as an SVG element to put in an HTML page: no script, no namespaces."""
    root = ET.fromstring(chart.render(is_unicode=True))
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag.endswith("}script") or child.tag == "script":
                parent.remove(child)
    for node in root.iter():
        node.tag = node.tag.rpartition("}")[2]
        for name in [n for n in node.attrib if n.startswith("{")]:
            node.attrib[name.rpartition("}")[2]] = node.attrib.pop(name)
    root.set("role", "img")
    return root


def outcomes_over_time(per_day: Sequence[Mapping[str, Any]]) -> ET.Element:
    """Calls per day, stacked by outcome."""
    chart = pygal.StackedBar(
        **_options(
            340,
            title="Outcomes per day (UTC)",
            x_label_rotation=-45 if len(per_day) > 10 else 0,
            style=_coloured(OUTCOME_COLOURS.values()),
        )
    )
    chart.x_labels = [d["day"][5:] for d in per_day]
    for outcome in OUTCOME_COLOURS:
        chart.add(outcome, [d.get(outcome, 0) for d in per_day])
    return element(chart)


def rates_over_time(days: Sequence[Mapping[str, Any]]) -> ET.Element:
    """Containment and self-service resolution per day, in percent of that day's calls."""
    chart = pygal.Line(
        **_options(
            300,
            title="Containment and self-service resolution per day (UTC)",
            x_label_rotation=-45 if len(days) > 10 else 0,
            range=(0, 100),
            style=_coloured(("#2e7d32", "#6a1b9a")),
        )
    )
    chart.x_labels = [d["day"][5:] for d in days]
    for name, key in (("containment %", "contained"), ("self-service resolution %", "resolved")):
        chart.add(name, [round(100 * d[key] / d["calls"], 1) if d["calls"] else None for d in days])
    return element(chart)


def funnel(flow_id: str, nodes: Sequence[Mapping[str, Any]]) -> ET.Element:
    """Per node: calls that reached it, went to an agent from it, hung up at it."""
    shown = list(nodes[:MAX_BARS])
    chart = pygal.HorizontalBar(
        **_options(
            90 + 26 * len(shown),
            title=f"Drop-off funnel: {flow_id}",
            style=_coloured(("#90a4ae", "#1565c0", "#ef6c00")),
        )
    )
    # pygal draws a horizontal bar chart's first label at the bottom: reversed, it reads
    # top down in the flow's order
    chart.x_labels = [n["node"] for n in reversed(shown)]
    chart.add("reached", [n["reached"] for n in reversed(shown)])
    chart.add("to an agent from it", [n["transferred"] for n in reversed(shown)])
    chart.add("hung up at it", [n["abandoned"] for n in reversed(shown)])
    return element(chart)


def transfer_reasons(by_reason: Mapping[str, Mapping[str, Any]]) -> ET.Element:
    chart = pygal.HorizontalBar(
        **_options(90 + 30 * len(by_reason), title="Transfers by reason", show_legend=False)
    )
    reasons = list(by_reason)[::-1]  # top down, as in the table
    chart.x_labels = reasons
    chart.add("transfers", [by_reason[r]["calls"] for r in reasons])
    return element(chart)


def modes(inputs: Mapping[str, Any]) -> ET.Element:
    """Inputs per mode, matched and not, and the inputs that were silence."""
    names = list(inputs["modes"])
    chart = pygal.StackedBar(
        **_options(
            300,
            title="DTMF vs speech: inputs and matches",
            style=_coloured(("#2e7d32", "#c62828", "#9e9e9e")),
        )
    )
    chart.x_labels = [*names, "no input"]
    chart.add("matched", [inputs["modes"][m]["match"] for m in names] + [None])
    chart.add("no match", [inputs["modes"][m]["no_match"] for m in names] + [None])
    chart.add("no input", [None] * len(names) + [inputs["no_input"]["inputs"]])
    return element(chart)


def _coloured(colours: Any) -> Style:
    return Style(**{**_style_fields(), "colors": tuple(colours)})


def _style_fields() -> dict[str, Any]:
    names = (
        "background",
        "plot_background",
        "font_family",
        "title_font_size",
        "legend_font_size",
        "label_font_size",
        "major_label_font_size",
        "value_font_size",
    )
    return {name: getattr(STYLE, name) for name in names}
