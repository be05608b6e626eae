"""Heat maps: a flow's diagram with the traffic of its edges and nodes (`Traffic`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.flow import load_flow
from ivr.flow.graph import UNDRAWN, Traffic, edges, to_dot, to_mermaid

FLOWS = Path(__file__).resolve().parents[3] / "flows"
TRAFFIC = Traffic(
    edges={
        ("welcome", "returning"): 10,  # the greeting, then the history check
        ("main", "ask_account"): 6,
        ("main", "check_hours"): 3,
        ("main", "gone"): 1,
    },
    nodes={"welcome": (10, 0, 0), "main": (10, 2, 1), "ask_account": (6, 0, 1)},
    window="2026-11-02 10:00 to 2026-11-03 10:00 UTC, 24 whole hours",
)


@pytest.fixture(scope="module")
def flow():  # type: ignore[no-untyped-def]
    return load_flow(FLOWS / "telebanking.yaml")


def test_shares_heat_and_widths() -> None:
    assert TRAFFIC.share("main", "ask_account") == 0.6
    assert TRAFFIC.share("nowhere", "main") is None
    assert (TRAFFIC.width("welcome", "returning"), TRAFFIC.colour("welcome", "returning")) == (
        8.0,
        "#b71c1c",
    )
    assert (TRAFFIC.width("a", "b"), TRAFFIC.colour("a", "b")) == (1.0, "#b0bec5")


def test_edges_between_two_nodes_are_one_and_taken_ways_are_added(flow) -> None:  # type: ignore[no-untyped-def]
    drawn = {(src, dst): label for src, label, dst in edges(flow, TRAFFIC)}
    # balance, block and transactions all lead main -> ask_account: one edge, their calls
    assert drawn[("main", "ask_account")].count(" | ") == 2
    assert drawn[("main", "gone")] == UNDRAWN
    plain = edges(flow)
    assert len(plain) > len(drawn) - 1 and ("main", UNDRAWN, "gone") not in plain


def test_mermaid_heat_map(flow) -> None:  # type: ignore[no-untyped-def]
    text = to_mermaid(flow, TRAFFIC)
    assert "10 calls, 1 hung up, 2 to agent" in text
    assert "6 calls (60%)" in text
    links = [line for line in text.splitlines() if re.search(r" (-->|-\.->)", line)]
    styles = dict(re.findall(r"linkStyle (\d+) (\S+)", text))
    # every styled link index is the link it means: flow_start's is 0
    ask = next(
        i for i, line in enumerate(links) if "n_main -->" in line and "n_ask_account" in line
    )
    assert styles[str(ask)] == "stroke-width:5.2px,stroke:#b45d60"  # 60% of the way to HOT
    assert links[ask].count("6 calls") == 1
    assert to_mermaid(flow) == to_mermaid(flow, None)  # without traffic: as before


def test_dot_heat_map_renders(flow) -> None:  # type: ignore[no-untyped-def]
    text = to_dot(flow, TRAFFIC)
    assert (
        '"welcome" -> "returning" [label="next\\n10 calls (100%)", penwidth=8.0, color="#b71c1c"];'
        in text
    )
    assert "style=dashed, penwidth=1.7" in text  # the way not drawn in the flow
    assert 'label="calls 2026-11-02 10:00 to 2026-11-03 10:00 UTC, 24 whole hours"' in text
    dot = shutil.which("dot")
    if dot is None:
        pytest.fail("Graphviz is not installed: apt-get install graphviz (make test does this)")
    done = subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout
