"""Prometheus metrics of calls, turns, backends and flows: one registry per app, so tests
and servers never share counts. Labels carry only bounded values (flow, version, node,
task, queue, outcome, reason kind, route): never a caller's number, a call SID or what a
caller said. Per-turn work is one counter and one histogram observation; what a call did
(path, inputs, tasks) is counted once, when its outcome is final."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from ivr.config import TWILIO_WAIT
from ivr.engine import actions as act
from ivr.engine.events import FetchResult, MessageSent
from ivr.engine.session import OUTCOMES, REASONS, Session
from ivr.flow.model import Flow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, TWILIO_WAIT)
BACKEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
CALL_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800)
STATUSES = ("2xx", "4xx", "5xx", "error")  # a backend answer's class; error: none came
# the (mode, result) pairs of an input; "none": silence, which has no mode
INPUTS = (
    ("dtmf", "match"),
    ("dtmf", "no_match"),
    ("speech", "match"),
    ("speech", "no_match"),
    ("none", "no_input"),
)
STORE_OPERATIONS = (("sessions", "load"), ("sessions", "save"), ("records", "write"))
# refused webhooks, and connections the guard closed (ivr.connections): too slow, or too many
REJECTIONS = (
    "signature",
    "bad_request",
    "slow_client",
    "connections",
    "caller_rate",
    "max_calls",
    "ws_message_size",
    "ws_rate",
    "origin",  # a web chat socket opened by a page of another site (IVR_CHAT_ORIGINS)
)
NO_FLOW = "unknown"  # the flow of a call no flow took (its number routes nowhere)
LEFT = ("abandoned", "transferred")  # the drop-off: exits that start at 0 at every node
START = ("voice", "inbound")  # channel and direction whose series start at 0 with a flow

# a `_created` gauge beside every counter and histogram doubles what each scrape carries,
# and rules and dashboards never read it (this is process-wide: one server per process)
disable_created_metrics()


class _Counts:
    """Counters (or a gauge) of one name, kept as plain numbers by label values and read at
    each scrape. An increment is a dict update, where a prometheus_client child takes a
    lock (about 1 µs) and a call's end makes some twenty. Only the event loop's thread
    touches them, and the exposition is made on it too."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        doc: str,
        labels: tuple[str, ...] = (),
        gauge: bool = False,
    ) -> None:
        self.name, self.doc, self.labels, self.gauge = name, doc, labels, gauge
        self.values: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def zero(self, *values: str) -> None:
        """The series of these label values, at 0 until counted."""
        self.values.setdefault(values, 0.0)

    def inc(self, *values: str) -> None:
        self.values[values] = self.values.get(values, 0.0) + 1.0

    def add(self, amount: float, *values: str) -> None:
        self.values[values] = self.values.get(values, 0.0) + amount

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        family = self._family()
        for values, value in self.values.items():
            family.add_metric(values, value)
        return [family]

    def _family(self) -> CounterMetricFamily | GaugeMetricFamily:
        kind = GaugeMetricFamily if self.gauge else CounterMetricFamily
        return kind(self.name, self.doc, labels=self.labels)


class _Family:
    """A labelled histogram whose children are kept by label values: `labels()` takes a
    lock and checks every value each time, which on the turn path adds up."""

    __slots__ = ("metric", "children")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values)
        return child


class Metrics:
    """The metrics of one app: made by the server; fed by the webhooks (`started`, `turn`,
    `ended`, ...), the runner (`backend_call`, `message`) and the flow registry (`flow_loaded`,
    `reload_failed`); read by Prometheus on the admin listener (`exposition`)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

        def counts(name: str, doc: str, *labels: str) -> _Counts:
            return _Counts(registry, name, doc, labels)

        def histogram(name: str, doc: str, labels: tuple[str, ...], buckets: Any) -> _Family:
            return _Family(Histogram(name, doc, labels, registry=registry, buckets=buckets))

        call = ("flow", "version", "channel", "direction")
        ended = ("flow", "version", "outcome", "channel", "direction")
        self._started = counts("ivr_calls_started", "Calls started.", *call)
        self._active = _Counts(registry, "ivr_calls_active", "Calls in progress here.", call, True)
        self._ended = counts("ivr_calls_ended", "Calls ended, by outcome.", *ended)
        self._resolved = counts(
            "ivr_calls_resolved",
            "Ended calls with at least one task resolved and no agent (self-service).",
            *ended,
        )
        self._seconds = histogram(
            "ivr_call_duration_seconds",
            "Time in the IVR, from the call's start to its outcome.",
            ("flow", "outcome"),
            CALL_BUCKETS,
        )
        self._transfers = counts(
            "ivr_transfers",
            "Calls transferred, by queue and by the kind of reason that led there.",
            *("flow", "queue", "reason"),
        )
        self._transfer_results = counts(
            "ivr_transfer_results",
            "Ended transfers by queue and what Twilio said of them (answered, no-answer, ...).",
            *("flow", "queue", "result"),
        )
        self._tasks = counts("ivr_tasks_resolved", "Self-service tasks completed.", "flow", "task")
        self._visits = counts("ivr_node_visits", "Nodes entered by ended calls.", "flow", "node")
        self._exits = counts(
            "ivr_call_exits",
            "Ended calls by the node they left from (for a transfer: the node that led to "
            "it) and outcome: the drop-off funnel.",
            *("flow", "node", "outcome"),
        )
        self._inputs = counts(
            "ivr_inputs",
            "Caller inputs of ended calls, by node, mode (dtmf, speech, none) and result.",
            *("flow", "node", "mode", "result"),
        )
        self._turns = counts("ivr_turns", "Webhook turns run by a flow.", "flow")
        self._switches = counts(
            "ivr_channel_switches",
            "Conversations that went on in another channel (a call answered by SMS).",
            *("flow", "from_channel", "to_channel"),
        )
        self._webhook = histogram(
            "ivr_webhook_seconds",
            "Time to answer a Twilio webhook, by route.",
            ("route",),
            WEBHOOK_BUCKETS,
        )
        self._rejected = counts("ivr_webhook_rejected", "Webhooks refused, by reason.", "reason")
        self._backend = histogram(
            "ivr_backend_seconds",
            "Backend calls (each attempt) by flow, node and status class (2xx, 4xx, 5xx, error).",
            ("flow", "node", "status"),
            BACKEND_BUCKETS,
        )
        self._messages = counts(
            "ivr_messages",
            "Messages `message` nodes sent (result sent) or could not (failed), by channel.",
            *("flow", "node", "channel", "result"),
        )
        self._info = _Counts(
            registry,
            "ivr_flow_info",
            "The version of each flow new calls get.",
            ("flow", "version"),
            gauge=True,
        )
        self._failures = counts(
            "ivr_flow_reload_failures",
            "Flow files that failed to load after a change (the old version goes on).",
        )
        self._store_errors = counts(
            "ivr_store_errors",
            "Store operations that raised (unreachable or failing store).",
            *("store", "operation"),
        )
        self._current: dict[str, str] = {}  # flow id -> the version its info series shows
        self._failures.zero()
        for reason in REJECTIONS:
            self._rejected.zero(reason)
        for store, operation in STORE_OPERATIONS:
            self._store_errors.zero(store, operation)
        for outcome in OUTCOMES:  # calls to numbers no flow serves
            self._ended.zero(NO_FLOW, "", outcome, *START)
            self._resolved.zero(NO_FLOW, "", outcome, *START)

    # -- flows: called by the registry -------------------------------------------------------

    def flow_loaded(self, flow: Flow) -> None:
        """A flow version now takes new calls: its info series, and every series of its
        flow, outcomes and nodes at 0, so that rates start at 0 rather than missing."""
        old = self._current.get(flow.id)
        if old is not None and old != flow.version:
            self._info.values.pop((flow.id, old), None)
        self._current[flow.id] = flow.version
        self._info.values[(flow.id, flow.version)] = 1.0
        fid = flow.id
        self._turns.zero(fid)
        self._started.zero(fid, flow.version, *START)
        self._active.zero(fid, flow.version, *START)
        for outcome in OUTCOMES:
            self._ended.zero(fid, flow.version, outcome, *START)
            self._resolved.zero(fid, flow.version, outcome, *START)
            self._seconds(fid, outcome)
        for node in flow.nodes.values():
            self._visits.zero(fid, node.name)
            for outcome in LEFT:
                self._exits.zero(fid, node.name, outcome)
            if node.resolves:
                self._tasks.zero(fid, node.resolves)
            if node.kind in ("menu", "ask"):
                for mode, result in INPUTS:
                    self._inputs.zero(fid, node.name, mode, result)
            elif node.kind == "http":
                for status in STATUSES:
                    self._backend(fid, node.name, status)
            elif node.kind == "transfer" and not node.spec.queued:  # a template: known per call
                for reason in REASONS:
                    self._transfers.zero(fid, node.spec.queue or "", reason)

    def reload_failed(self, path: Path) -> None:
        """A changed flow file did not load (the registry logged why)."""
        self._failures.inc()

    # -- calls: called by the webhooks --------------------------------------------------------

    def started(self, session: Session) -> None:
        """A call reached its flow; call once, before its first turn."""
        labels = (session.flow_id, session.version, session.channel, session.direction)
        self._started.inc(*labels)
        self._active.inc(*labels)

    def turn(self, flow: str) -> None:
        self._turns.inc(flow)

    def ended(self, session: Session) -> None:
        """Count an ended call: call once per call, when its outcome is final."""
        s, flow = session, session.flow_id
        outcome = s.outcome if s.outcome in OUTCOMES else "failed"
        self._ended.inc(flow, s.version, outcome, s.channel, s.direction)
        if s.tasks and outcome != "transferred":
            self._resolved.inc(flow, s.version, outcome, s.channel, s.direction)
        if s.turn:  # stepped by its flow, so `started` counted it (unlike an unknown number)
            self._active.add(-1.0, flow, s.version, s.channel, s.direction)
        if s.started_at and s.ended_at:
            self._seconds(flow, outcome).observe(max(0.0, s.ended_at - s.started_at))
        if outcome == "transferred":
            kind = (s.reason or "").partition(":")[0]
            self._transfers.inc(flow, s.queue or "", kind if kind in REASONS else "unknown")
        for task in s.tasks:
            self._tasks.inc(flow, task)
        for node in s.path:
            self._visits.inc(flow, node)
        left = s.reason_at if outcome == "transferred" and s.reason_at else s.node
        if left:
            self._exits.inc(flow, left, outcome)
        for key, times in s.inputs.items():
            self._inputs.add(times, flow, *_input(key))

    def transfer_result(self, session: Session) -> None:
        """What became of a transfer (`session.transfer_result`, one of Twilio's words)."""
        queue = session.queue or ""
        self._transfer_results.inc(session.flow_id, queue, session.transfer_result or "")

    def webhook(self, route: str) -> Callable[[float], None]:
        """What times a webhook route: call it with the seconds a request took."""
        observe: Callable[[float], None] = self._webhook(route).observe
        return observe

    def switched(self, flow: str, src: str, dst: str) -> None:
        """A conversation went on from channel `src` to `dst`."""
        self._switches.inc(flow, src, dst)

    def rejected(self, reason: str) -> None:
        """A webhook refused (`signature`, `bad_request`), a new call refused
        (`caller_rate`, `max_calls`), a connection closed by the guard (`slow_client`,
        `connections`) or a WebSocket closed for a message too big (`ws_message_size`) or
        messages too fast (`ws_rate`), or a chat socket from another site (`origin`)."""
        self._rejected.inc(reason)

    def store_error(self, store: str, operation: str) -> None:
        """A store operation raised: `store` sessions or records, `operation` load, save or
        write."""
        self._store_errors.inc(store, operation)

    # -- backends: called by the runner ------------------------------------------------------

    def backend_call(
        self, flow: str, fetch: act.Fetch, result: FetchResult, seconds: float
    ) -> None:
        """One attempt of a backend call and how long it took."""
        status = result.status
        ok = result.error is None and 200 <= status < 600
        label = f"{status // 100}xx" if ok else "error"
        self._backend(flow, fetch.node, label).observe(seconds)

    def message(self, flow: str, message: act.Message, sent: MessageSent) -> None:
        """A `message` node's message: sent, or failed (refused, unreachable, timed out)."""
        self._messages.inc(flow, message.node, message.channel, "sent" if sent.ok else "failed")

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _input(key: str) -> tuple[str, str, str]:
    """A session's input key ("main:dtmf:match", "main:no_input") as node, mode, result."""
    if key.endswith(":no_input"):
        return key.removesuffix(":no_input"), "none", "no_input"
    node, mode, result = key.rsplit(":", 2)
    return node, mode, result
