"""`ivr report --csv`: every figure of the report's JSON as one row, long format.

Columns `section,item,metric,value`: `section` is the JSON's top key (`a.outcomes` and
`b.outcomes` in a comparison), `item` the keys between it and the figure joined by `/`
(a list of nodes or days is keyed by its node or day), `metric` the figure's own key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

COLUMNS = ("section", "item", "metric", "value")
SIDES = ("a", "b")  # a comparison's two reports: their sections are prefixed


def render(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for path, value in flatten(report):
        metric = path[-1]
        if path[0] in SIDES and len(path) > 1 and "compare" in report:
            path = (f"{path[0]}.{path[1]}", *path[2:])
        item = "/".join(path[1:-1])
        writer.writerow((path[0], item, metric, _cell(value)))
    return out.getvalue()


def flatten(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(keys down to a figure, the figure) for every figure in `value`."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from flatten(inner, (*path, str(key)))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, inner in enumerate(value):
            name = inner.get("node") or inner.get("day") or inner.get("metric") or str(i)
            rest = {k: v for k, v in inner.items() if k not in ("node", "day")}
            yield from flatten(rest, (*path, str(name)))
    else:
        yield path, value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join("" if v is None else str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
