"""`/flows`: every loaded flow as its diagram (`ivr graph`'s, drawn by Graphviz here), with
its version, its warnings, the heat map of its calls (`ivr graph --traffic`'s counts) and,
for a file whose edit did not load, its `file:line:col` errors beside the version serving.

Node convention for scripts (ivr/web/static/flows.js): each node of a diagram is an SVG
`<g>` with `id="ivr-node--FLOW--NODE"` (`node_id`), class `ivr-node` and `data-node=NODE`,
inside `<section data-flow=FLOW>`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web

from ivr.errors import ConfigError, Problem
from ivr.flow.graph import Traffic, to_dot
from ivr.flow.model import Flow
from ivr.registry import FileState, FlowRegistry
from ivr.report.query import Filters, connect
from ivr.report.traffic import svg, traffic
from ivr.web.layout import page

log = logging.getLogger("ivr.admin")
START = "flow start"  # the diagram's start dot: not a node of the flow
MACHINE = "flow machine"  # nor the dot an answering machine's calls start from
SCRIPTS = ["flows.js"]
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"


def node_id(flow: str, node: str) -> str:
    """The SVG id of `node` in `flow`'s diagram (the same rule as flows.js's `nodeId`)."""
    return f"ivr-node--{flow}--{node}"


@dataclass(frozen=True)
class FlowView:
    """One section of the page: a flow that serves (with its diagram and heat) and/or the
    errors of its file's latest edit."""

    flow: Flow | None
    file: str
    problems: tuple[Problem, ...]  # the file's latest findings
    loaded: bool  # the file's latest content is what serves
    heat: Traffic | None = None
    diagram: ET.Element | None = None  # the SVG

    @property
    def id(self) -> str:
        return self.flow.id if self.flow else Path(self.file).stem


def views(
    current: Mapping[str, Flow], files: Mapping[Path, FileState], records_url: str
) -> list[FlowView]:
    """The page's sections from a registry's `current` and `files`: flows by id, then the
    files that serve nothing. Blocking (reads the records, runs Graphviz): off the loop."""
    found: list[FlowView] = []
    seen: set[str] = set()
    heat = _traffic(records_url, sorted(current))
    for flow_id, flow in sorted(current.items()):
        state = files.get(Path(flow.file))
        seen.add(flow.file)
        problems = state.problems if state else ()
        loaded = state.loaded if state else True
        drawn = heat.get(flow_id, Traffic())
        if not drawn.nodes:  # no call yet: no "calls no calls" over the drawing
            drawn = replace(drawn, window="")
        found.append(FlowView(flow, flow.file, problems, loaded, drawn, _diagram(flow, drawn)))
    for path, state in sorted(files.items()):
        if not state.loaded and str(path) not in seen:
            found.append(FlowView(None, str(path), state.problems, False))
    return found


def _traffic(records_url: str, flow_ids: list[str]) -> dict[str, Traffic]:
    """Each flow's heat over all its records (`ivr graph FLOW --traffic`); none before
    the first call is recorded."""
    try:
        reader = connect(records_url)
    except ConfigError as e:  # none yet, or a database down: the diagrams still draw
        log.info("/flows without heat: %s", e)
        return {}
    with reader:
        return {flow_id: traffic(reader, Filters(flow_id=flow_id)) for flow_id in flow_ids}


def _diagram(flow: Flow, heat: Traffic) -> ET.Element:
    return _ids(_svg(to_dot(flow, heat)), flow.id)


@functools.lru_cache(maxsize=64)  # the same flow and counts: the same drawing
def _svg(dot: str) -> str:
    return svg(dot)


def _ids(drawing: str, flow_id: str) -> ET.Element:
    """Graphviz's SVG with the node convention applied, namespaces off (an HTML parser
    puts an inline `<svg>` in the SVG namespace itself), sized by the page."""
    root = ET.fromstring(drawing)
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
        for name in [n for n in element.attrib if n.startswith("{")]:
            element.attrib[name.rpartition("}")[2]] = element.attrib.pop(name)
    for group in root.iter("g"):
        title = group.find("title")
        if (
            group.get("class") == "node"
            and title is not None
            and title.text not in (START, MACHINE)
        ):
            name = title.text or ""
            group.set("id", node_id(flow_id, name))
            group.set("class", "node ivr-node")
            group.set("data-node", name)
    root.set("role", "img")
    root.set("aria-label", f"Diagram of flow {flow_id}")
    return root


# -- the page ------------------------------------------------------------------------------------


def render(found: list[FlowView]) -> str:
    """The whole page."""
    body = ET.Element("div")
    intro = ET.SubElement(body, "p", {"class": "meta"})
    intro.text = (
        f"{sum(1 for v in found if v.flow)} flows loaded. Heat maps count every recorded "
        "call; a node lights up while a call from /phone is at it."
    )
    status = ET.SubElement(body, "p", {"id": "live-status", "class": "meta", "role": "status"})
    status.text = "Live calls: not connected."
    if found:
        nav = ET.SubElement(body, "nav", {"aria-label": "flows on this page"})
        items = ET.SubElement(nav, "ul", {"class": "inline"})
        for view in found:
            link = ET.SubElement(ET.SubElement(items, "li"), "a", href=f"#flow-{view.id}")
            link.text = view.id
    for view in found:
        _section(body, view)
    html = "".join(ET.tostring(child, encoding="unicode", method="html") for child in body)
    return page("Flows", html, SCRIPTS)


def _section(body: ET.Element, view: FlowView) -> None:
    section = ET.SubElement(
        body,
        "section",
        {"class": "flow", "id": f"flow-{view.id}", "aria-labelledby": f"title-{view.id}"},
    )
    if view.flow is not None:
        section.set("data-flow", view.flow.id)
    _text(section, "h2", view.id, id=f"title-{view.id}")
    if view.flow is not None:
        _meta(section, view.flow)
    if not view.loaded:
        _failure(section, view)
    else:
        _warnings(section, view.problems)
    if view.flow is not None and view.heat is not None and view.diagram is not None:
        figure = ET.SubElement(section, "figure")
        # focusable: a wide diagram scrolls by keyboard too
        holder = ET.SubElement(
            figure,
            "div",
            {"class": "diagram", "tabindex": "0", "role": "group", "aria-label": view.flow.id},
        )
        holder.append(view.diagram)
        caption = f"Heat map of {view.flow.id}: calls {view.heat.window or 'none recorded yet'}"
        _text(figure, "figcaption", caption)
        _heat_table(section, view.flow, view.heat)


def _meta(section: ET.Element, flow: Flow) -> None:
    meta = ET.SubElement(section, "p", {"class": "meta"})
    _text(meta, "span", "version ")
    _text(meta, "code", flow.version, **{"class": "version"})
    details = [flow.file, f"{len(flow.nodes)} nodes", flow.language]
    if flow.numbers:
        details.append(", ".join(flow.numbers))
    if flow.experiment is not None:
        details.append(f"experiment {flow.experiment.name}")
    _text(meta, "span", " · " + " · ".join(details))


def _failure(section: ET.Element, view: FlowView) -> None:
    box = ET.SubElement(section, "div", {"class": "failure", "role": "alert"})
    serving = (
        f"version {view.flow.version} still serves" if view.flow is not None else "none serves"
    )
    _text(box, "p", f"The latest edit of {view.file} did not load; {serving}.")
    items = ET.SubElement(box, "ul", {"class": "problems"})
    for problem in view.problems:
        _text(items, "li", str(problem), **{"class": f"problem {problem.severity}"})


def _warnings(section: ET.Element, problems: tuple[Problem, ...]) -> None:
    warnings = [p for p in problems if p.severity == "warning"]
    if not warnings:
        _text(section, "p", "No warnings.", **{"class": "meta"})
        return
    details = ET.SubElement(section, "details", {"class": "warnings", "open": "open"})
    _text(details, "summary", f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}")
    items = ET.SubElement(details, "ul", {"class": "problems"})
    for problem in warnings:
        _text(items, "li", str(problem), **{"class": "problem warning"})


def _heat_table(section: ET.Element, flow: Flow, heat: Traffic) -> None:
    details = ET.SubElement(section, "details", {"class": "heat"})
    _text(details, "summary", "Calls per node")
    table = ET.SubElement(details, "table")
    row = ET.SubElement(ET.SubElement(table, "thead"), "tr")
    for header in ("node", "calls", "hung up", "to an agent"):
        _text(row, "th", header, scope="col")
    tbody = ET.SubElement(table, "tbody")
    names = [*flow.nodes, *sorted(set(heat.nodes) - set(flow.nodes))]
    for name in names:
        reached, transferred, abandoned = heat.nodes.get(name, (0, 0, 0))
        row = ET.SubElement(tbody, "tr", {"data-node": name})
        _text(row, "th", name, scope="row")
        for key, value in (
            ("reached", reached),
            ("abandoned", abandoned),
            ("to_agent", transferred),
        ):
            _text(row, "td", f"{value:,}", **{"data-key": key, "data-value": str(value)})


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def handler(flows: FlowRegistry, records_url: str) -> web.RouteDef:
    """`GET /flows`."""

    async def show(request: web.Request) -> web.Response:
        current, files = dict(flows.current), dict(flows.files)  # as they are now
        found = await asyncio.to_thread(views, current, files, records_url)
        return web.Response(
            text=render(found),
            content_type="text/html",
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
        )

    return web.get("/flows", show)
