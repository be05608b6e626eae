"""Called numbers across flows: a number routes to one flow, so a second claim is an error."""

from __future__ import annotations

from collections.abc import Mapping

from ivr.errors import FlowError, Problem
from ivr.flow.loader import read_flow_file
from ivr.flow.model import Flow


def taken(flow: Flow, owners: Mapping[str, Flow]) -> list[str]:
    """The numbers `flow` lists that a flow of another id in `owners` (number -> flow) has."""
    return [n for n in flow.numbers if n in owners and owners[n].id != flow.id]


def claim_problem(
    flow: Flow, number: str, owner: Flow, env: Mapping[str, str] | None = None
) -> Problem:
    """The error for `flow` listing `number`, which `owner` has: placed at the number in
    `flow`'s file, which is read again for that (only ever on this error's path)."""
    message = (
        f"number {number} is already routed to flow '{owner.id}' ({owner.file}): "
        "a number routes to one flow; remove it from one of the two"
    )
    try:
        doc = read_flow_file(flow.file, env)
        index = list(doc.data["numbers"]).index(number)
    except (FlowError, OSError, LookupError, TypeError, ValueError):  # changed since: no place
        return Problem(flow.file, 1, 1, "numbers", message)
    return doc.problem(("numbers", index), message)
