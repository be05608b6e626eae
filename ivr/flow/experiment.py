"""Experiments across flows: the variant a new call runs on, and the checks that need
every flow (each variant is a flow served beside the experiment's, and splits no further).

The choice is a pure function of the experiment and a unit: the caller's keyed id (so a
caller who calls back gets the same variant) or, for a withheld number, the call's SID.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from ivr.errors import FlowError, Problem
from ivr.flow.loader import Path as DocPath
from ivr.flow.loader import dotted, read_flow_file
from ivr.flow.model import Experiment, Flow


def choose(experiment: Experiment, unit: str) -> str:
    """The variant for `unit`: a point in [0, total weight) from a hash of the experiment's
    name and the unit, placed among the variants' weights (in flow id order). The same
    unit always gets the same variant; over many units each variant's share is its weight's.
    The name is hashed in, so that two experiments split the same callers independently."""
    digest = hashlib.sha256(f"{experiment.name}\0{unit}".encode()).digest()
    # 64 bits scaled to the total: no modulo bias worth the name (total / 2**64)
    point = int.from_bytes(digest[:8], "big") * experiment.total >> 64
    for flow_id, weight in experiment.split:
        if point < weight:
            return flow_id
        point -= weight
    return experiment.split[-1][0]  # not reached: point < total


@dataclass(frozen=True)
class Conflict:
    """What is wrong with a flow's experiment (or its part in another's), and where in its
    file: made by `conflicts`, placed in the file by `conflict_problems`."""

    where: DocPath
    message: str


def conflicts(flow: Flow, flows: Mapping[str, Flow], as_variant: bool = True) -> list[Conflict]:
    """`flow`'s experiment against the other flows (`flows`: id -> flow): a variant that is
    not one of them, or that runs an experiment of its own. With `as_variant`, also `flow`
    running an experiment while another's experiment has it as a variant (a reload that
    would make a chain). Reads no file: cheap enough to ask before every load."""
    experiment = flow.experiment
    if experiment is None:
        return []
    found: list[Conflict] = []
    for variant in experiment.variants:
        if variant == flow.id:
            continue  # the flow itself may be a variant: its calls run on it, unsplit
        other = flows.get(variant)
        if other is None:
            close = difflib.get_close_matches(variant, [f for f in flows if f != flow.id], 1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            message = (
                f"variant '{variant}' is not a flow served here (no flow file beside this "
                f"one has 'flow: {variant}', or it has errors){hint}"
            )
        elif other.experiment is not None:
            message = (
                f"variant '{variant}' runs an experiment of its own "
                f"('{other.experiment.name}', {other.file}): a variant's calls are not split "
                "again; remove one of the two experiments"
            )
        else:
            continue
        found.append(Conflict(("experiment", "split", variant), message))
    for other in flows.values() if as_variant else ():
        if other.id != flow.id and other.experiment and flow.id in other.experiment.variants:
            found.append(
                Conflict(
                    ("experiment",),
                    f"this flow is a variant of experiment '{other.experiment.name}' in flow "
                    f"'{other.id}' ({other.file}): a variant's calls are not split again; "
                    "remove one of the two experiments",
                )
            )
            break
    return found


def conflict_problems(
    flow: Flow, found: list[Conflict], env: Mapping[str, str] | None = None
) -> list[Problem]:
    """The conflicts as errors placed in `flow`'s file (at the variant's name, or at
    `experiment`), which is read again for that: only ever on an error's path."""
    if not found:
        return []
    try:
        doc = read_flow_file(flow.file, env)
    except (FlowError, OSError):  # changed or gone since: no place to point at
        return [Problem(flow.file, 1, 1, dotted(c.where), c.message) for c in found]
    return [doc.problem(c.where, c.message, key=True) for c in found]
