"""Diagrams of a compiled flow: Mermaid and Graphviz DOT text, pure functions of a Flow.

With `Traffic` (counts read from call records by ivr/report/traffic.py) a diagram is a heat
map: each edge's calls and share, each node's calls, hang-ups and transfers, the busier
edges thicker and darker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ivr.flow.model import Flow, Node

TERMINAL_KINDS = frozenset({"transfer", "end", "record", "callback"})

# kind -> Mermaid shape brackets (opening, closing) around a quoted label
_MERMAID_SHAPES = {
    "menu": ("{", "}"),  # rhombus: the caller decides
    "ask": ("{{", "}}"),  # hexagon
    "branch": ("{", "}"),
    "say": ("(", ")"),
    "http": ("[(", ")]"),  # cylinder: a backend
    "set": ("[", "]"),
    "subflow": ("[[", "]]"),
    "transfer": ("([", "])"),  # stadium: the call leaves the flow
    "end": ("([", "])"),
    "record": ("([", "])"),
}
_DOT_SHAPES = {
    "menu": "diamond",
    "ask": "hexagon",
    "branch": "diamond",
    "say": "box",
    "http": "cylinder",
    "set": "box",
    "subflow": "component",
    "transfer": "oval",
    "end": "oval",
    "record": "oval",
}
# what Mermaid may read as syntax, HTML or markdown in a label: written as `#NN;` codes
_MERMAID_ESCAPES = {c: f"#{ord(c)};" for c in '#"&<>|[]{}`;\\'}
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")
COLD, HOT = (0xB0, 0xBE, 0xC5), (0xB7, 0x1C, 0x1C)  # an edge's colour from no traffic to most
UNDRAWN = "taken, not drawn"  # an edge calls took that the flow (this version) does not have


@dataclass(frozen=True)
class Traffic:
    """Calls through a flow, for a heat map: made from the records' rollups by
    ivr/report/traffic.py, drawn by `to_mermaid` and `to_dot`."""

    edges: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (src, dst) -> calls
    # node -> (calls that reached it, left to an agent from it, hung up at it)
    nodes: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    window: str = ""  # the hours counted, in words

    def share(self, src: str, dst: str) -> float | None:
        """The calls that went src -> dst, of those that reached src."""
        reached = self.nodes.get(src, (0, 0, 0))[0]
        return self.edges.get((src, dst), 0) / reached if reached else None

    def heat(self, src: str, dst: str) -> float:
        """0..1: this edge's calls against the busiest edge's."""
        most = max(self.edges.values(), default=0)
        return self.edges.get((src, dst), 0) / most if most else 0.0

    def colour(self, src: str, dst: str) -> str:
        h = self.heat(src, dst)
        mixed = (round(c + (w - c) * h) for c, w in zip(COLD, HOT, strict=True))
        return "#" + "".join(f"{c:02x}" for c in mixed)

    def width(self, src: str, dst: str) -> float:
        return round(1 + 7 * self.heat(src, dst), 1)

    def edge_label(self, label: str, src: str, dst: str) -> str:
        if src == dst:
            return label  # a re-prompt: not a way between nodes
        calls, share = self.edges.get((src, dst), 0), self.share(src, dst)
        return f"{label}\n{calls:,} calls" + (f" ({share:.0%})" if share is not None else "")

    def node_line(self, name: str) -> str:
        reached, transferred, abandoned = self.nodes.get(name, (0, 0, 0))
        return f"{reached:,} calls, {abandoned:,} hung up, {transferred:,} to agent"


def edges(flow: Flow, traffic: Traffic | None = None) -> list[tuple[str, str, str]]:
    """(source, label, target) of every edge to draw. With traffic, the edges between one
    pair of nodes are one edge (its calls cannot be told apart), and ways calls took that
    the flow does not draw (an older version's) are added."""
    found = [(n.name, label, target) for n in flow.nodes.values() for label, target in n.edges()]
    if traffic is None:
        return found
    merged: dict[tuple[str, str], list[str]] = {}
    for src, label, dst in found:
        merged.setdefault((src, dst), []).append(label)
    for src, dst in sorted(traffic.edges):
        merged.setdefault((src, dst), [UNDRAWN])
    return [(src, " | ".join(labels), dst) for (src, dst), labels in merged.items()]


def node_label(node: Node, traffic: Traffic | None = None) -> str:
    """What a node's box says: its name and kind, the task it resolves, and its traffic."""
    label = f"{node.name}\n{node.kind}"
    label += f"\nresolves {node.resolves}" if node.resolves else ""
    return label + (f"\n{traffic.node_line(node.name)}" if traffic is not None else "")


def mermaid_ids(flow: Flow) -> dict[str, str]:
    """A safe, unique Mermaid id for every node (names may hold '.', '-', or be `end`)."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for name in flow.nodes:
        ident = base = "n_" + _UNSAFE_ID.sub("_", name)
        while ident in taken:  # `a.b` and `a_b` would both be n_a_b
            ident = f"{base}_{len(taken)}"
        ids[name] = ident
        taken.add(ident)
    return ids


def mermaid_text(text: str) -> str:
    """`text` for a quoted Mermaid label: specials as `#NN;` codes, newlines as `<br>`."""
    escaped = "".join(_MERMAID_ESCAPES.get(c, c) for c in text.replace("\r", ""))
    return escaped.replace("\n", "<br>")


def dot_text(text: str) -> str:
    """`text` as a quoted DOT string, backslashes and quotes escaped, newlines as `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "")
    return '"' + escaped.replace("\n", "\\n") + '"'


def to_mermaid(flow: Flow, traffic: Traffic | None = None) -> str:
    """The flow as a Mermaid flowchart (`flowchart TD`), subflows as subgraphs; with
    `traffic`, a heat map."""
    ids = mermaid_ids(flow)
    lines = ["flowchart TD", '  flow_start(("start"))']
    for i, (prefix, nodes) in enumerate(_groups(flow)):
        indent = "  "
        if prefix:
            lines.append(f'  subgraph sub{i} ["{mermaid_text(prefix)}"]')
            indent = "    "
        for node in nodes:
            opening, closing = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
            label = mermaid_text(node_label(node, traffic))
            lines.append(f'{indent}{ids[node.name]}{opening}"{label}"{closing}')
        if prefix:
            lines.append("  end")
    lines.append(f"  flow_start --> {ids[flow.start]}")
    if flow.voicemail in ids:  # an outbound call an answering machine took starts there
        lines += ['  flow_machine(("machine"))', f"  flow_machine --> {ids[flow.voicemail]}"]
    styles = []
    for link, (src, label, target) in enumerate(edges(flow, traffic), start=1):
        start = ids.get(src) or _missing(lines, ids, src)
        to = ids.get(target) or _missing(lines, ids, target)
        arrow = "-.->" if label == UNDRAWN else "-->"
        if traffic is not None:
            label = traffic.edge_label(label, src, target)
            styles.append(
                f"  linkStyle {link} stroke-width:{traffic.width(src, target)}px,"
                f"stroke:{traffic.colour(src, target)}"
            )
        lines.append(f'  {start} {arrow}|"{mermaid_text(label)}"| {to}')
    terminals = [ids[n.name] for n in flow.nodes.values() if n.kind in TERMINAL_KINDS]
    lines.append("  classDef terminal stroke-width:3px")
    lines.append("  classDef first stroke-width:3px,stroke-dasharray:4")
    if terminals:
        lines.append(f"  class {','.join(terminals)} terminal")
    lines.append(f"  class {ids[flow.start]} first")
    return "\n".join([*lines, *styles]) + "\n"


def to_dot(flow: Flow, traffic: Traffic | None = None) -> str:
    """The flow as a Graphviz digraph, subflows as clusters; render with `dot -Tsvg`;
    with `traffic`, a heat map."""
    lines = [
        f"digraph {dot_text(flow.id)} {{",
        "  node [fontname=Helvetica, fontsize=11];",
        "  edge [fontname=Helvetica, fontsize=9];",
        '  "flow start" [shape=circle, label="start", style=filled, fillcolor=black, '
        "fontcolor=white, fontsize=9];",
    ]
    for prefix, nodes in _groups(flow):
        indent = "  "
        if prefix:
            lines.append(f"  subgraph {dot_text('cluster_' + prefix)} {{")
            lines.append(f"    label={dot_text(prefix)}; style=dashed;")
            indent = "    "
        for node in nodes:
            attrs = [
                f"shape={_DOT_SHAPES.get(node.kind, 'box')}",
                f"label={dot_text(node_label(node, traffic))}",
            ]
            rounded = ["rounded"] if node.kind == "say" else []
            if traffic is not None:
                attrs.append(f'fillcolor="{_fill(traffic, node.name)}"')
                attrs.append(f'style="{",".join([*rounded, "filled"])}"')
            elif rounded:
                attrs.append('style="rounded"')
            if node.kind in TERMINAL_KINDS:
                attrs.append("peripheries=2")
            if node.name == flow.start:
                attrs.append("penwidth=2")
            lines.append(f"{indent}{dot_text(node.name)} [{', '.join(attrs)}];")
        if prefix:
            lines.append("  }")
    lines.append(f'  "flow start" -> {dot_text(flow.start)};')
    if flow.voicemail is not None:  # an outbound call an answering machine took starts there
        lines.append('  "flow machine" [shape=circle, label="machine", fontsize=9];')
        lines.append(f'  "flow machine" -> {dot_text(flow.voicemail)};')
    for src, label, target in edges(flow, traffic):
        dashed = ("on_fail", "on_no_input", "on_no_match", "on_error", UNDRAWN)
        style = ", style=dashed" if label in dashed else ""
        if traffic is not None:
            colour = traffic.colour(src, target)
            style += f', penwidth={traffic.width(src, target)}, color="{colour}"'
            label = traffic.edge_label(label, src, target)
        lines.append(f"  {dot_text(src)} -> {dot_text(target)} [label={dot_text(label)}{style}];")
    if traffic is not None and traffic.window:
        lines.append(f"  label={dot_text('calls ' + traffic.window)}; labelloc=t;")
    return "\n".join(lines) + "\n}\n"


def _fill(traffic: Traffic, name: str) -> str:
    """A node's fill: white for no calls, a warm tint for the most reached."""
    most = max((n[0] for n in traffic.nodes.values()), default=0)
    heat = traffic.nodes.get(name, (0, 0, 0))[0] / most if most else 0.0
    return "#" + "".join(f"{round(255 - (255 - c) * heat):02x}" for c in (0xFF, 0xCC, 0xBC))


def _groups(flow: Flow) -> Iterator[tuple[str, list[Node]]]:
    """Nodes by subflow prefix (`auth.ask_pin` -> `auth`), the top flow's ('') first."""
    groups: dict[str, list[Node]] = {"": []}
    for node in flow.nodes.values():
        groups.setdefault(node.name.rpartition(".")[0], []).append(node)
    yield from groups.items()


def _missing(lines: list[str], ids: dict[str, str], target: str) -> str:
    """An id for an edge's target that is not a node (a broken flow still draws)."""
    ident = f"missing{len(ids)}_" + _UNSAFE_ID.sub("_", target)
    ids[target] = ident
    lines.append(f'  {ident}["{mermaid_text(target)}<br>missing"]')
    return ident
