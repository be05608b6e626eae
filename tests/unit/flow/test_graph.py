"""Flow diagrams: every node and edge drawn, labels escaped so Graphviz and Mermaid read them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ivr.flow import Flow, load_flow
from ivr.flow.graph import to_dot, to_mermaid
from ivr.flow.model import End, Node

FLOWS = Path(__file__).resolve().parents[3] / "flows"
AWKWARD = 'a "quoted" | {{ x | currency }} [y] {% if z %}\\n back\\slash\nsecond line; #1 <b>'


@pytest.fixture(scope="module")
def telebanking() -> Flow:
    return load_flow(FLOWS / "telebanking.yaml")


def awkward_flow() -> Flow:
    """Hand-built: a subflow's nodes, a node called `end`, a branch with every special."""
    nodes = [
        Node("welcome", "branch", ((AWKWARD, None, "auth.ask"), (None, None, "end"))),
        Node("auth.ask", "subflow", None, next="auth.done"),
        Node("auth.done", "end", End(None, "contained", returns_to="end")),
        Node("end", "end", End(None, "contained")),
    ]
    return Flow("odd-flow", "v1", "odd.yaml", "welcome", {n.name: n for n in nodes})


def expected_edges(flow: Flow) -> Counter[tuple[str, str, str]]:
    return Counter((n.name, label, to) for n in flow.nodes.values() for label, to in n.edges())


# -- Graphviz ---------------------------------------------------------------------------------


def graphviz(dot: str, fmt: str) -> str:
    if shutil.which("dot") is None:
        pytest.fail("install graphviz: apt-get install -y graphviz")
    done = subprocess.run(
        ["dot", f"-T{fmt}"], input=dot, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def drawn_text(item: dict[str, Any]) -> str:
    """The text Graphviz actually drew for a node or edge, one line per text operation."""
    return "\n".join(op["text"] for op in item.get("_ldraw_", ()) if op["op"] == "T")


def laid_out(flow: Flow) -> dict[str, Any]:
    """The DOT output as Graphviz understood it: nodes, edges and clusters with drawn text."""
    data = json.loads(graphviz(to_dot(flow), "json"))
    objects = data["objects"]
    names = {o["_gvid"]: o["name"] for o in objects}
    return {
        "nodes": {o["name"]: drawn_text(o) for o in objects if "nodes" not in o},
        "clusters": {o["name"]: {names[i] for i in o["nodes"]} for o in objects if "nodes" in o},
        "edges": Counter(
            (names[e["tail"]], drawn_text(e), names[e["head"]]) for e in data.get("edges", ())
        ),
        "attrs": {o["name"]: o for o in objects},
    }


def test_dot_is_accepted_by_graphviz(telebanking: Flow) -> None:
    svg = graphviz(to_dot(telebanking), "svg")
    assert "<svg" in svg and "ask_account" in svg


def test_dot_draws_every_node_and_edge_with_its_label(telebanking: Flow) -> None:
    drawn = laid_out(telebanking)
    for node in telebanking.nodes.values():
        assert drawn["nodes"][node.name].split("\n")[:2] == [node.name, node.kind]
    assert drawn["edges"] - Counter({("flow start", "", "welcome"): 1}) == expected_edges(
        telebanking
    )
    assert {"[1] / balance / how much money", "no_input / no_match"} <= {
        label for _, label, _ in drawn["edges"]
    }


def test_dot_marks_the_start_and_shapes_by_kind(telebanking: Flow) -> None:
    drawn = laid_out(telebanking)
    assert drawn["edges"][("flow start", "", telebanking.start)] == 1
    attrs = drawn["attrs"]
    assert attrs[telebanking.start]["penwidth"] == "2"
    assert attrs["main"]["shape"] == "diamond" and attrs["ask_account"]["shape"] == "hexagon"
    for terminal in ("agent", "closed", "goodbye"):
        assert attrs[terminal]["peripheries"] == "2"


def test_dot_escapes_labels_and_clusters_subflows() -> None:
    flow = awkward_flow()
    drawn = laid_out(flow)
    assert drawn["edges"] - Counter({("flow start", "", "welcome"): 1}) == expected_edges(flow)
    assert drawn["clusters"] == {"cluster_auth": {"auth.ask", "auth.done"}}
    assert set(drawn["nodes"]) == {"flow start", *flow.nodes}


# -- Mermaid ----------------------------------------------------------------------------------

SAFE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NODE = re.compile(r'\s*(\w+)(\(\(|\(\[|\[\(|\[\[|\{\{|[\[({])"([^"]*)"[\])}]+')
EDGE = re.compile(r'\s*(\w+) -->(?:\|"([^"]*)"\|)? (\w+)')
RESERVED = {"end", "subgraph", "graph", "flowchart", "class", "classDef", "style", "click"}


def unescape(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m[1])), label.replace("<br>", "\n"))


def parse_mermaid(text: str) -> dict[str, Any]:
    """The nodes (id -> shape, label), edges and subgraphs of our Mermaid output."""
    lines = text.splitlines()
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str]] = []
    subgraphs: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in lines[1:]:
        if m := re.fullmatch(r'\s*subgraph (\w+) \["([^"]*)"\]', line):
            current = subgraphs.setdefault(unescape(m[2]), set())
        elif line.strip() == "end":
            current = None
        elif m := EDGE.fullmatch(line):
            edges.append((m[1], unescape(m[2] or ""), m[3]))
        elif m := NODE.fullmatch(line):
            assert m[1] not in nodes, f"node id {m[1]} defined twice"
            nodes[m[1]] = (m[2], unescape(m[3]))
            if current is not None:
                current.add(m[1])
        else:
            assert re.fullmatch(r"\s*(classDef|class) [\w,]+ [\w:,-]+", line), line
    return {"header": lines[0], "nodes": nodes, "edges": edges, "subgraphs": subgraphs}


def test_mermaid_draws_every_node_and_edge_with_its_label(telebanking: Flow) -> None:
    chart = parse_mermaid(to_mermaid(telebanking))
    assert chart["header"] == "flowchart TD"
    names = {label.split("\n")[0]: ident for ident, (_, label) in chart["nodes"].items()}
    for ident in chart["nodes"]:
        assert SAFE_ID.fullmatch(ident) and ident not in RESERVED
    for node in telebanking.nodes.values():
        assert chart["nodes"][names[node.name]][1].split("\n")[:2] == [node.name, node.kind]
    by_id = {ident: name for name, ident in names.items()}
    drawn = Counter((by_id[a], label, by_id[b]) for a, label, b in chart["edges"])
    assert drawn - Counter({("start", "", "welcome"): 1}) == expected_edges(telebanking)


def test_mermaid_marks_the_start_and_shapes_by_kind(telebanking: Flow) -> None:
    text = to_mermaid(telebanking)
    chart = parse_mermaid(text)
    assert ("flow_start", "", "n_welcome") in chart["edges"]
    assert re.search(r"^\s*class n_welcome first$", text, re.M)
    assert chart["nodes"]["n_main"][0] == "{" and chart["nodes"]["n_ask_account"][0] == "{{"
    assert chart["nodes"]["n_goodbye"][0] == "(["


def test_mermaid_escapes_labels_and_groups_subflows() -> None:
    flow = awkward_flow()
    text = to_mermaid(flow)
    chart = parse_mermaid(text)
    assert chart["subgraphs"] == {"auth": {"n_auth_ask", "n_auth_done"}}
    ids = {*chart["nodes"], *(e[0] for e in chart["edges"]), *(e[2] for e in chart["edges"])}
    assert "n_end" in ids and not ids & RESERVED
    assert all(SAFE_ID.fullmatch(i) for i in ids)
    labels = {label for _, label, _ in chart["edges"]}
    assert AWKWARD in labels and "else" in labels
    quoted = "".join(re.findall(r'"([^"]*)"', text)).replace("<br>", "")
    for char in "|[]{}<>`\n":
        assert char not in quoted, char


def test_an_outbound_flows_voicemail_is_drawn_from_its_own_start() -> None:
    notice = load_flow(FLOWS / "delivery_notice.yaml")
    chart = parse_mermaid(to_mermaid(notice))
    assert ("flow_machine", "", "n_voicemail") in chart["edges"]
    assert chart["nodes"]["n_send_link"][1].split("\n")[:2] == ["send_link", "message"]
    drawn = laid_out(notice)
    assert drawn["edges"][("flow machine", "", "voicemail")] == 1
    assert drawn["edges"] - Counter(
        {("flow start", "", "hello"): 1, ("flow machine", "", "voicemail"): 1}
    ) == expected_edges(notice)
