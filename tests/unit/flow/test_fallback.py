"""`defaults.fallback`: the transfer callers go to when their session store is unreachable."""

from __future__ import annotations

import pytest

from ivr.errors import FlowError, Problem
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow
from ivr.flow.schema import check_schema

FLOW = """flow: t
start: main
defaults:
  fallback: FALLBACK
nodes:
  main:
    menu:
      prompt: "Press 1 for an agent."
      options:
        agent: {dtmf: "1", goto: agent}
  agent:
    transfer: {to: "+15550199", queue: support, say: "Connecting you."}
  desk:
    transfer: {to: "{{ desk_number }}"}
  bye:
    end: {say: "Goodbye."}
  store_down:
    transfer: {to: "sip:agents@example.com"}
"""


def compile_text(text: str) -> tuple[Flow, list[Problem]]:
    doc = parse_flow(text, "f.yaml", {})
    assert check_schema(doc) == []
    return compile_flow(doc)


def errors(fallback: str) -> list[str]:
    with pytest.raises(FlowError) as e:
        compile_text(FLOW.replace("FALLBACK", fallback))
    return [str(p) for p in e.value.problems if p.severity == "error"]


def test_a_transfer_node_is_the_flows_fallback() -> None:
    flow, problems = compile_text(FLOW.replace("FALLBACK", "agent"))
    assert flow.fallback == "agent"
    unreachable = [p.where for p in problems if "unreachable" in p.message]
    assert unreachable == ["nodes.desk", "nodes.bye", "nodes.store_down"]


def test_a_node_reached_only_as_the_fallback_is_not_unreachable() -> None:
    _, problems = compile_text(FLOW.replace("FALLBACK", "store_down"))
    unreachable = [p.where for p in problems if "unreachable" in p.message]
    assert unreachable == ["nodes.desk", "nodes.bye"]


def test_without_a_fallback_there_is_none() -> None:
    flow, _ = compile_text(FLOW.replace("defaults:\n  fallback: FALLBACK\n", ""))
    assert flow.fallback is None


@pytest.mark.parametrize(
    ("fallback", "message"),
    [
        ("agnet", "'agnet' is not a node (did you mean 'agent'?)"),
        ("bye", "'bye' is a end node: the fallback must name a transfer node"),
        ("desk", "the transfer 'desk' has a templated `to`"),
    ],
)
def test_a_fallback_that_cannot_serve_is_an_error(fallback: str, message: str) -> None:
    found = errors(fallback)
    assert len(found) == 1 and found[0].startswith("f.yaml:4:13: defaults.fallback: ")
    assert message in found[0]
