"""Diagrams of a compiled flow: Mermaid and Graphviz DOT text, pure functions of a Flow."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ivr.flow.model import Flow, Node

TERMINAL_KINDS = frozenset({"transfer", "end", "record"})

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


def node_label(node: Node) -> str:
    """What a node's box says: its name and kind, and the task it resolves."""
    label = f"{node.name}\n{node.kind}"
    return label + (f"\nresolves {node.resolves}" if node.resolves else "")


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


def to_mermaid(flow: Flow) -> str:
    """The flow as a Mermaid flowchart (`flowchart TD`), subflows as subgraphs."""
    ids = mermaid_ids(flow)
    lines = ["flowchart TD", '  flow_start(("start"))']
    for i, (prefix, nodes) in enumerate(_groups(flow)):
        indent = "  "
        if prefix:
            lines.append(f'  subgraph sub{i} ["{mermaid_text(prefix)}"]')
            indent = "    "
        for node in nodes:
            opening, closing = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
            label = mermaid_text(node_label(node))
            lines.append(f'{indent}{ids[node.name]}{opening}"{label}"{closing}')
        if prefix:
            lines.append("  end")
    lines.append(f"  flow_start --> {ids[flow.start]}")
    for node in flow.nodes.values():
        for label, target in node.edges():
            to = ids.get(target) or _missing(lines, ids, target)
            lines.append(f'  {ids[node.name]} -->|"{mermaid_text(label)}"| {to}')
    terminals = [ids[n.name] for n in flow.nodes.values() if n.kind in TERMINAL_KINDS]
    lines.append("  classDef terminal stroke-width:3px")
    lines.append("  classDef first stroke-width:3px,stroke-dasharray:4")
    if terminals:
        lines.append(f"  class {','.join(terminals)} terminal")
    lines.append(f"  class {ids[flow.start]} first")
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    """The flow as a Graphviz digraph, subflows as clusters; render with `dot -Tsvg`."""
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
                f"label={dot_text(node_label(node))}",
            ]
            if node.kind == "say":
                attrs.append('style="rounded"')
            if node.kind in TERMINAL_KINDS:
                attrs.append("peripheries=2")
            if node.name == flow.start:
                attrs.append("penwidth=2")
            lines.append(f"{indent}{dot_text(node.name)} [{', '.join(attrs)}];")
        if prefix:
            lines.append("  }")
    lines.append(f'  "flow start" -> {dot_text(flow.start)};')
    for node in flow.nodes.values():
        for label, target in node.edges():
            style = ", style=dashed" if label in ("on_fail", "on_error") else ""
            lines.append(
                f"  {dot_text(node.name)} -> {dot_text(target)} [label={dot_text(label)}{style}];"
            )
    return "\n".join(lines) + "\n}\n"


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
