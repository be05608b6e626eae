"""A caller's history in the engine: `CallStarted.history` becomes `vars.history` (every
field, null when unknown) that conditions and prompts read, and a transfer's queue may be
a template that picks the queue that served the caller last."""

from __future__ import annotations

from types import MappingProxyType

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import NO_HISTORY, CallStarted
from ivr.engine.session import Session
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow
from ivr.flow.schema import check_schema
from ivr.metrics import Metrics
from ivr.store.history import History
from ivr.telephony.twiml import Voice, render

FLOW = """flow: returning
start: hello
nodes:
  hello:
    say: >-
      Hello{{ ' again' if history.calls_today else '' }}.
      Last time: {{ history.last_task or 'nothing' }}.
    next: route
  route:
    branch:
      - {if: "history.last_task == 'card_blocked' and history.calls_today > 0", goto: agent}
      - {else: bye}
  agent:
    transfer:
      to: "+15550199"
      queue: "{{ history.last_queue or 'general' }}"
      attributes: {last_task: "{{ history.last_task }}"}
  bye:
    end: {say: "Bye."}
"""


def flow_of(text: str = FLOW) -> Flow:
    compiled, problems = compile_flow(parse_flow(text, "returning.yaml", {}))
    assert compiled is not None and not [p for p in problems if p.severity == "error"], problems
    assert not problems, [str(p) for p in problems]  # `history` is a variable every flow has
    return compiled


def start(flow: Flow, **history: object) -> tuple[dict[str, object], list[act.Action]]:
    event = CallStarted("+15550001", "", at=1.0, history=MappingProxyType(history))
    session, actions = step(flow, new_session(flow, "CA1"), event)
    return session.vars, actions


def said(actions: list[act.Action]) -> str:
    return " ".join(a.text for a in actions if isinstance(a, act.Prompt))


def test_a_first_time_caller_has_every_field_null_and_no_calls_today() -> None:
    flow = flow_of()
    variables, actions = start(flow)
    assert variables["history"] == dict(NO_HISTORY)
    assert variables["history"] == History().as_vars()  # the store's fields, the engine's
    assert said(actions) == "Hello. Last time: nothing. Bye."
    assert "history" not in flow.sensitive


def test_a_returning_caller_is_greeted_and_goes_to_the_queue_of_last_time() -> None:
    variables, actions = start(
        flow_of(), last_task="card_blocked", last_queue="cards", calls_today=1
    )
    assert said(actions) == "Hello again. Last time: card_blocked."
    transfer = next(a for a in actions if isinstance(a, act.Transfer))
    assert (transfer.queue, transfer.attributes) == ("cards", {"last_task": "card_blocked"})
    assert variables["history"] == {**NO_HISTORY, "last_task": "card_blocked",
                                    "last_queue": "cards", "calls_today": 1}  # fmt: skip
    twiml = render([transfer], Voice(workflow_sid="WW" + "0" * 32), 1)
    assert "<Enqueue" in twiml and '"queue": "cards"' in twiml and "card_blocked" in twiml


def test_without_a_last_queue_the_template_default_is_taken() -> None:
    flow = flow_of()
    session, actions = step(
        flow,
        new_session(flow, "CA1"),
        CallStarted(at=1.0, history={"last_task": "card_blocked", "calls_today": 2}),
    )
    transfer = next(a for a in actions if isinstance(a, act.Transfer))
    assert transfer.queue == session.queue == "general"


def test_a_static_queue_stays_as_written() -> None:
    flow = flow_of(FLOW.replace("\"{{ history.last_queue or 'general' }}\"", "support"))
    assert flow.nodes["agent"].spec.queued is None
    _, actions = start(flow, last_task="card_blocked", last_queue="cards", calls_today=1)
    assert next(a for a in actions if isinstance(a, act.Transfer)).queue == "support"


def test_a_queue_that_is_neither_a_name_nor_a_template_is_refused() -> None:
    doc = parse_flow(FLOW.replace("\"{{ history.last_queue or 'general' }}\"", '"two words"'),
                     "returning.yaml", {})  # fmt: skip
    assert any("queue" in str(p) for p in check_schema(doc))


def test_the_metrics_of_a_templated_queue_are_not_made_up_front() -> None:
    metrics = Metrics()
    metrics.flow_loaded(flow_of())  # no series labelled with the template's text
    assert "history.last_queue" not in metrics.exposition().decode()


def test_the_history_is_kept_with_the_session() -> None:
    flow = flow_of()
    event = CallStarted(at=1.0, history={"last_task": "balance_inquiry", "last_at": 0.5})
    session, _ = step(flow, new_session(flow, "CA1"), event)
    again = Session.from_json(session.to_json())
    assert again.vars["history"] == {**NO_HISTORY, "last_task": "balance_inquiry", "last_at": 0.5}
    assert again.outcome == "contained"
