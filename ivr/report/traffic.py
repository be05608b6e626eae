"""The heat map's counts (`ivr graph FLOW --traffic`): a flow's edges and nodes from the
rollups, and SVG through Graphviz."""

from __future__ import annotations

import shutil
import subprocess

from ivr.errors import ConfigError
from ivr.flow.graph import Traffic
from ivr.report.query import Filters, Reader, grouped
from ivr.report.sections import extent


def traffic(reader: Reader, filters: Filters) -> Traffic:
    """Calls along each edge and at each node of the flow `filters` names (all its
    versions unless one is named), over the window's whole hours."""
    with reader.snapshot():
        edges = grouped(reader, "hour_edges", ("src", "dst"), ("calls",), filters)
        nodes = grouped(
            reader, "hour_nodes", ("node",), ("reached", "transferred", "abandoned"), filters
        )
        first, last = extent(reader, filters)
    return Traffic(
        edges={(src, dst): n for src, dst, n in edges},
        nodes={node: (reached, left, hung_up) for node, reached, left, hung_up in nodes},
        window=filters.window.describe(first, last),
    )


def svg(dot: str) -> str:
    """DOT text drawn as SVG by Graphviz's `dot`."""
    binary = shutil.which("dot")
    if binary is None:
        raise ConfigError("--format svg needs Graphviz's dot: apt-get install graphviz")
    done = subprocess.run(
        [binary, "-Tsvg"], input=dot, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise ConfigError(f"dot -Tsvg failed: {done.stderr.strip()}")
    return done.stdout
