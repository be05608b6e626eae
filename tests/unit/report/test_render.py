"""The report's renderings: CSV rows, terminal tables, the HTML page's structure."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from ivr.report import charts, compose, render_csv, render_html, render_text
from ivr.report.query import Filters, connect
from tests.unit.report.conftest import FLOWS


@pytest.fixture
def report(known_url: str) -> dict[str, Any]:
    with connect(known_url) as reader:
        return compose.report(reader, Filters(), FLOWS)


def test_csv_flattens_lists_by_their_node_or_day() -> None:
    text = render_csv.render(
        {
            "calls": 2,
            "funnel": {"f": [{"node": "main", "reached": 2}]},
            "per_day": [{"day": "d", "calls": 2}],
            "b": [1, None],
        }
    )
    assert list(csv.reader(io.StringIO(text))) == [
        ["section", "item", "metric", "value"],
        ["calls", "", "calls", "2"],
        ["funnel", "f/main", "reached", "2"],
        ["per_day", "d", "calls", "2"],
        ["b", "", "b", "1;"],
    ]


def test_tables_align_numbers_right() -> None:
    assert render_text.table(("name", "n"), [("a", "1"), ("bbb", "100")]) == [
        "  name    n",
        "  a       1",
        "  bbb   100",
    ]


def test_the_terminal_shows_every_table(report: dict[str, Any]) -> None:
    text = render_text.render(report)
    for title, _, _ in render_text.tables(report):
        assert f"\n{title}\n" in text
    assert "Time in IVR" in text and "the mean is exact" in text


def test_the_page_is_html_with_inline_charts(report: dict[str, Any]) -> None:
    page = render_html.render(report)
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert page.count("<svg") == 5 and page.count("<table>") == len(render_text.tables(report))
    assert "<script" not in page and "xmlns:" not in page


def test_a_chart_is_svg_without_script_or_namespaces(report: dict[str, Any]) -> None:
    chart = charts.outcomes_over_time(report["per_day"])
    tags = {e.tag for e in chart.iter()}
    assert chart.tag == "svg" and "script" not in tags and not any("}" in t for t in tags)
    assert ET.tostring(chart, encoding="unicode").count("<rect") > 4  # bars and legend
