"""The metrics of calls: what one ended call adds, series that start at 0 for every flow,
outcome and node, and labels that never carry what a caller said or who they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from ivr.engine import actions as act
from ivr.engine.events import FetchResult
from ivr.engine.session import OUTCOMES, REASONS, Session
from ivr.flow import load_flow
from ivr.flow.model import Flow
from ivr.metrics import Metrics, _Counts

FLOW = """
flow: shop
start: main
defaults: {on_fail: agent}
global:
  agent: {dtmf: "0", goto: agent}
nodes:
  main:
    menu:
      prompt: "Press 1 for your order."
      options:
        order: {dtmf: "1", speech: [order], goto: ask_order}
  ask_order:
    ask: {prompt: "Your order number?", input: digits, save_as: order}
    next: lookup
  lookup:
    http: {method: GET, url: "http://127.0.0.1:9/orders/{{ order }}", timeout: 1, save_as: found}
    next: told
    on_error: agent
  told:
    say: "It has shipped."
    resolves: order_status
    next: bye
  agent:
    transfer: {to: "+15550188", queue: orders}
  bye:
    end: {say: "Goodbye."}
"""
NODES = ("main", "ask_order", "lookup", "told", "agent", "bye")
SID = "CA" + "f" * 32
CALLER = "+15557654321"


@pytest.fixture
def flow(tmp_path: Path) -> Flow:
    path = tmp_path / "shop.yaml"
    path.write_text(FLOW)
    return load_flow(path)


@pytest.fixture
def metrics(flow: Flow) -> Metrics:
    metrics = Metrics()
    metrics.flow_loaded(flow)
    return metrics


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def ended(flow: Flow, **fields: object) -> Session:
    """A session of `flow` as the engine leaves an ended call (by default: a contained one
    that resolved a task)."""
    session = Session(SID, flow.id, flow.version, node="bye", outcome="contained", turn=4)
    session.started_at, session.ended_at = 1000.0, 1042.0
    session.path = ["main", "ask_order", "lookup", "told", "bye"]
    session.tasks = ["order_status"]
    session.inputs = {"main:dtmf:match": 1, "ask_order:dtmf:no_match": 1, "ask_order:no_input": 2}
    for name, given in fields.items():
        setattr(session, name, given)
    return session


def test_series_start_at_zero_for_every_flow_outcome_and_node(metrics: Metrics, flow: Flow):
    """So that rate() over a series starts at 0 rather than missing its first call."""
    call = {"flow": "shop", "version": flow.version, "channel": "voice", "direction": "inbound"}
    assert value(metrics, "ivr_flow_info", flow="shop", version=flow.version) == 1
    assert value(metrics, "ivr_calls_started_total", **call) == 0
    assert value(metrics, "ivr_calls_active", **call) == 0
    for outcome in OUTCOMES:
        assert value(metrics, "ivr_calls_ended_total", outcome=outcome, **call) == 0
        assert value(metrics, "ivr_calls_resolved_total", outcome=outcome, **call) == 0
        assert value(metrics, "ivr_call_duration_seconds_count", flow="shop", outcome=outcome) == 0
        unknown = {"flow": "unknown", "version": "", "channel": "voice", "direction": "inbound"}
        assert value(metrics, "ivr_calls_ended_total", outcome=outcome, **unknown) == 0
    for node in NODES:
        assert value(metrics, "ivr_node_visits_total", flow="shop", node=node) == 0
        exits = {"flow": "shop", "node": node, "outcome": "abandoned"}
        assert value(metrics, "ivr_call_exits_total", **exits) == 0
    for node in ("main", "ask_order"):
        for mode, result in [("dtmf", "match"), ("speech", "no_match"), ("none", "no_input")]:
            labels = {"flow": "shop", "node": node, "mode": mode, "result": result}
            assert value(metrics, "ivr_inputs_total", **labels) == 0
    for reason in REASONS:
        labels = {"flow": "shop", "queue": "orders", "reason": reason}
        assert value(metrics, "ivr_transfers_total", **labels) == 0
    for status in ("2xx", "4xx", "5xx", "error"):
        labels = {"flow": "shop", "node": "lookup", "status": status}
        assert value(metrics, "ivr_backend_seconds_count", **labels) == 0
    assert value(metrics, "ivr_tasks_resolved_total", flow="shop", task="order_status") == 0
    assert value(metrics, "ivr_turns_total", flow="shop") == 0
    assert value(metrics, "ivr_flow_reload_failures_total") == 0
    assert value(metrics, "ivr_store_errors_total", store="sessions", operation="save") == 0
    assert value(metrics, "ivr_webhook_rejected_total", reason="signature") == 0


def test_the_zero_series_are_not_the_ones_of_a_mistaken_label(metrics: Metrics):
    assert value(metrics, "ivr_calls_ended_total", flow="unknown", outcome="contained") is None


def test_a_new_version_replaces_the_info_series(metrics: Metrics, flow: Flow, tmp_path: Path):
    path = tmp_path / "shop.yaml"
    path.write_text(FLOW.replace("It has shipped.", "It is on its way."))
    new = load_flow(path)
    metrics.flow_loaded(new)
    assert value(metrics, "ivr_flow_info", flow="shop", version=new.version) == 1
    assert value(metrics, "ivr_flow_info", flow="shop", version=flow.version) is None
    # the old version's call series stay: calls in flight still end on it
    call = {"flow": "shop", "version": flow.version, "channel": "voice", "direction": "inbound"}
    assert value(metrics, "ivr_calls_ended_total", outcome="failed", **call) == 0


def test_an_ended_call_counts_what_it_did(metrics: Metrics, flow: Flow):
    session = ended(flow)
    metrics.started(session)
    metrics.ended(session)
    call = {"flow": "shop", "version": flow.version, "channel": "voice", "direction": "inbound"}
    assert value(metrics, "ivr_calls_started_total", **call) == 1
    assert value(metrics, "ivr_calls_active", **call) == 0
    assert value(metrics, "ivr_calls_ended_total", outcome="contained", **call) == 1
    assert value(metrics, "ivr_calls_resolved_total", outcome="contained", **call) == 1
    assert value(metrics, "ivr_tasks_resolved_total", flow="shop", task="order_status") == 1
    for node in session.path:
        assert value(metrics, "ivr_node_visits_total", flow="shop", node=node) == 1
    assert value(metrics, "ivr_node_visits_total", flow="shop", node="agent") == 0
    exits = {"flow": "shop", "node": "bye", "outcome": "contained"}
    assert value(metrics, "ivr_call_exits_total", **exits) == 1
    inputs = {"flow": "shop", "node": "ask_order"}
    assert value(metrics, "ivr_inputs_total", mode="dtmf", result="no_match", **inputs) == 1
    assert value(metrics, "ivr_inputs_total", mode="none", result="no_input", **inputs) == 2
    main = {"flow": "shop", "node": "main", "mode": "dtmf", "result": "match"}
    assert value(metrics, "ivr_inputs_total", **main) == 1
    seconds = {"flow": "shop", "outcome": "contained"}
    assert value(metrics, "ivr_call_duration_seconds_sum", **seconds) == 42
    assert value(metrics, "ivr_call_duration_seconds_bucket", le="45.0", **seconds) == 1
    assert value(metrics, "ivr_call_duration_seconds_bucket", le="30.0", **seconds) == 0
    assert value(metrics, "ivr_transfers_total", flow="shop", queue="orders", reason="node") == 0


def test_a_transfer_counts_its_reason_kind_and_the_node_that_led_there(
    metrics: Metrics, flow: Flow
):
    session = ended(
        flow,
        outcome="transferred",
        node="agent",
        reason="on_error:lookup",
        reason_at="lookup",
        queue="orders",
        tasks=[],
    )
    metrics.ended(session)
    labels = {"flow": "shop", "queue": "orders"}
    assert value(metrics, "ivr_transfers_total", reason="on_error", **labels) == 1
    exits = {"flow": "shop", "outcome": "transferred"}
    assert value(metrics, "ivr_call_exits_total", node="lookup", **exits) == 1
    assert value(metrics, "ivr_call_exits_total", node="agent", **exits) == 0


def test_a_reason_of_no_known_kind_is_unknown(metrics: Metrics, flow: Flow):
    metrics.ended(ended(flow, outcome="transferred", reason="whatever:x", queue="orders"))
    labels = {"flow": "shop", "queue": "orders", "reason": "unknown"}
    assert value(metrics, "ivr_transfers_total", **labels) == 1


@pytest.mark.parametrize(
    ("outcome", "tasks", "resolved"),
    [
        ("contained", ["order_status"], True),
        ("abandoned", ["order_status"], True),  # heard the answer, then hung up: served
        ("transferred", ["order_status"], False),  # reached an agent after all
        ("contained", [], False),
        ("abandoned", [], False),
        ("failed", ["order_status"], True),
    ],
)
def test_resolved_is_a_task_done_and_no_agent(metrics, flow, outcome, tasks, resolved):
    metrics.ended(ended(flow, outcome=outcome, tasks=tasks))
    labels = {"flow": "shop", "version": flow.version, "outcome": outcome}
    assert (
        value(metrics, "ivr_calls_resolved_total", channel="voice", direction="inbound", **labels)
        == resolved
    )


def test_active_counts_only_calls_that_started(metrics: Metrics, flow: Flow):
    """A call to a number no flow serves ends without having started: active stays 0."""
    call = {"flow": "shop", "version": flow.version, "channel": "voice", "direction": "inbound"}
    session = ended(flow)
    metrics.started(session)
    assert value(metrics, "ivr_calls_active", **call) == 1
    never_stepped = ended(flow, turn=0, path=[], node=None, outcome="failed")
    metrics.ended(never_stepped)
    assert value(metrics, "ivr_calls_active", **call) == 1
    metrics.ended(session)
    assert value(metrics, "ivr_calls_active", **call) == 0


def test_outbound_calls_have_their_own_series(metrics: Metrics, flow: Flow):
    session = ended(flow, direction="outbound")
    metrics.started(session)
    metrics.ended(session)
    call = {"flow": "shop", "version": flow.version, "channel": "voice", "direction": "outbound"}
    assert value(metrics, "ivr_calls_ended_total", outcome="contained", **call) == 1


@pytest.mark.parametrize(
    ("status", "error", "label"),
    [
        (200, None, "2xx"),
        (204, None, "2xx"),
        (404, None, "4xx"),
        (503, None, "5xx"),
        (0, "timed out", "error"),
        (0, "connection refused", "error"),
        (200, "not JSON", "error"),  # an answer that could not be used
    ],
)
def test_backend_calls_by_status_class(metrics, status, error, label):
    fetch = act.Fetch("lookup", "GET", "http://127.0.0.1:9/orders/1", 1.0)
    metrics.backend_call("shop", fetch, FetchResult(status, error=error, at=0.0), 0.2)
    labels = {"flow": "shop", "node": "lookup", "status": label}
    assert value(metrics, "ivr_backend_seconds_count", **labels) == 1
    assert value(metrics, "ivr_backend_seconds_bucket", le="0.25", **labels) == 1


def test_webhooks_are_timed_by_route_and_turns_counted_apart(metrics: Metrics):
    timed = metrics.webhook("gather")
    timed(0.02)
    timed(14.0)
    metrics.webhook("status")(0.001)
    metrics.turn("shop")
    assert value(metrics, "ivr_webhook_seconds_count", route="gather") == 2
    assert value(metrics, "ivr_webhook_seconds_bucket", route="gather", le="15.0") == 2
    assert value(metrics, "ivr_webhook_seconds_bucket", route="gather", le="10.0") == 1
    assert value(metrics, "ivr_webhook_seconds_count", route="status") == 1
    assert value(metrics, "ivr_turns_total", flow="shop") == 1


def test_reload_failures_and_store_errors(metrics: Metrics, tmp_path: Path):
    metrics.reload_failed(tmp_path / "shop.yaml")
    metrics.store_error("sessions", "save")
    metrics.rejected("signature")
    assert value(metrics, "ivr_flow_reload_failures_total") == 1
    assert value(metrics, "ivr_store_errors_total", store="sessions", operation="save") == 1
    assert value(metrics, "ivr_webhook_rejected_total", reason="signature") == 1


def test_labels_never_carry_who_called_or_what_they_said(metrics: Metrics, flow: Flow):
    session = ended(flow, vars={"caller": CALLER, "order": "123456"})
    session.transcript = [[1.0, "main", "speech", "match", "my order please", 0.9]]
    metrics.started(session)
    metrics.ended(session)
    text = metrics.exposition().decode()
    for secret in (SID, CALLER, "123456", "my order please"):
        assert secret not in text


def test_process_and_gc_collectors(metrics: Metrics):
    text = metrics.exposition().decode()
    assert "process_cpu_seconds_total" in text
    assert "python_gc_collections_total" in text
    assert "python_info" in text
    assert "_created" not in text  # a gauge beside every series that no rule reads


def test_each_metrics_has_its_own_registry(flow: Flow):
    one, other = Metrics(), Metrics()
    one.turn("shop")
    assert other.registry.get_sample_value("ivr_turns_total", {"flow": "shop"}) is None


@pytest.mark.parametrize("labels", [(), ("flow", "node")])
def test_the_plain_counts_expose_what_prometheus_client_would(labels):
    """`_Counts` stands in for prometheus_client's Counter and Gauge on the call path:
    the same updates must read the same."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counts = _Counts(ours, "ivr_things", "Things.", labels)
    gauge = _Counts(ours, "ivr_level", "Level.", labels, gauge=True)
    counter = Counter("ivr_things", "Things.", labels, registry=theirs)
    level = Gauge("ivr_level", "Level.", labels, registry=theirs)
    values = [("a", "x"), ("a", "x"), ("b", "y")] if labels else [(), (), ()]
    for amount, of in zip([1.0, 2.5, 1.0], values, strict=True):
        counts.add(amount, *of)
        (counter.labels(*of) if labels else counter).inc(amount)
        gauge.add(-amount, *of)
        (level.labels(*of) if labels else level).dec(amount)
    if labels:
        counts.zero("c", "z")
        counter.labels("c", "z")
    counts.inc(*values[0])
    (counter.labels(*values[0]) if labels else counter).inc()
    assert generate_latest(ours) == generate_latest(theirs)
