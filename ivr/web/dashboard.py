"""`/dashboard`: `ivr report`'s figures (one source: `ivr.report.compose.report`, read
from the server's records in a thread), with the running experiments and the rates per
day, refreshed live: `dashboard.js` fetches `/dashboard/panel` every few seconds.

`/dashboard/data` is the JSON behind it: `report` is exactly what `ivr report --json`
prints over the same records and flows.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.flow.model import Flow
from ivr.registry import FlowRegistry
from ivr.report import charts, compose, sections
from ivr.report.query import Filters, connect
from ivr.report.render_html import experiment_body, report_body
from ivr.web.layout import page

REFRESH = 5  # seconds between the page's fetches
FRESH = 2.0  # seconds a computed snapshot is shared by every page that asks
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"


def experiments(current: Mapping[str, Flow]) -> list[str]:
    """The experiments the loaded flows run, by name."""
    return sorted({f.experiment.name for f in current.values() if f.experiment is not None})


def snapshot(records_url: str, flows_dir: Path, running: list[str]) -> dict[str, Any] | None:
    """The dashboard's data; None before the server has made its SQLite records (a
    database that cannot be read raises: the page says it could not refresh). Blocking."""
    if records_url.startswith("sqlite://") and not Path(records_url[9:]).is_file():
        return None
    reader = connect(records_url)
    whole = Filters(direction="inbound")  # containment: callers who called (outbound apart)
    with reader:
        report = compose.report(reader, whole, flows_dir)
        with reader.snapshot():
            per_day = sections.resolved_per_day(reader, whole)
        tested = {
            name: compose.experiment(reader, name, whole, flows_dir)["experiment"]
            for name in running
        }
    return {"report": report, "rates_per_day": per_day, "experiments": tested}


def panel(data: dict[str, Any] | None) -> str:
    """The refreshed part of the page, as HTML."""
    body = ET.Element("div", {"id": "panel"})
    if data is None or not data["report"]["calls"]:
        _text(body, "p", "No calls recorded yet: call a flow (from /phone) and come back.")
        return ET.tostring(body, encoding="unicode", method="html")
    report = data["report"]
    _text(
        body,
        "p",
        f"{report['calls']:,} ended calls, {report['window']['text']}; "
        f"updated {report['generated_at']}",
        **{"class": "meta", "id": "generated"},
    )
    report_body(body, report)
    # the rates over time right under today's figures (the cards report_body opens with)
    cards = next(i for i, child in enumerate(body) if child.get("class") == "cards")
    over_time = ET.Element("h2")
    over_time.text = "Containment and self-service resolution over time"
    body[cards + 1 : cards + 1] = [over_time, charts.rates_over_time(data["rates_per_day"])]
    if data["experiments"]:
        _text(body, "h2", "Running experiments")
        for found in data["experiments"].values():
            experiment_body(body, found)
    return ET.tostring(body, encoding="unicode", method="html")


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


class Dashboard:
    """The routes, and one snapshot at a time shared by every page open within FRESH
    seconds: ten open tabs cost one report, not ten."""

    def __init__(self, flows: FlowRegistry, records_url: str, flows_dir: Path) -> None:
        self.flows, self.records_url, self.flows_dir = flows, records_url, flows_dir
        self._lock = asyncio.Lock()
        self._last: tuple[float, dict[str, Any] | None] | None = None

    async def data(self) -> dict[str, Any] | None:
        async with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < FRESH:
                return self._last[1]
            running = experiments(self.flows.current)
            found = await asyncio.to_thread(snapshot, self.records_url, self.flows_dir, running)
            self._last = (time.monotonic(), found)
            return found

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/dashboard", self.show),
            web.get("/dashboard/panel", self.refreshed),
            web.get("/dashboard/data", self.json),
        ]

    async def show(self, request: web.Request) -> web.Response:
        html = panel(await self.data())
        body = (
            f'<div id="dashboard" data-refresh="{REFRESH}" aria-live="off">{html}</div>'
            '<p class="meta" id="refresh-status" role="status"></p>'
        )
        return web.Response(
            text=page("Dashboard", body, ["dashboard.js"]),
            content_type="text/html",
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
        )

    async def refreshed(self, request: web.Request) -> web.Response:
        return web.Response(
            text=panel(await self.data()),
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )

    async def json(self, request: web.Request) -> web.Response:
        return web.json_response(await self.data(), headers={"Cache-Control": "no-store"})
