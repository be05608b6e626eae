"""Prometheus metrics of calls; one registry per app so tests and servers do not share counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ivr.engine.session import Session


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "ivr_calls_total",
            "Ended calls by outcome.",
            ["flow", "outcome"],
            registry=self.registry,
        )
        self.transfers = Counter(
            "ivr_transfers_total",
            "Transfers by queue and reason.",
            ["flow", "queue", "reason"],
            registry=self.registry,
        )
        self.transfer_results = Counter(
            "ivr_transfer_results_total",
            "Ended transfers by queue and what Twilio said of them (answered, no-answer, ...).",
            ["flow", "queue", "result"],
            registry=self.registry,
        )
        self.tasks = Counter(
            "ivr_tasks_resolved_total",
            "Self-service tasks completed.",
            ["flow", "task"],
            registry=self.registry,
        )
        self.turns = Counter(
            "ivr_turns_total", "Webhook turns served.", ["flow"], registry=self.registry
        )
        self.turn_seconds = Histogram(
            "ivr_turn_seconds",
            "Time to answer a webhook turn.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self._turns: dict[str, Counter] = {}  # by flow: labels() locks and checks each time
        self.rejected = Counter(
            "ivr_webhook_rejected_total",
            "Webhooks refused, by reason.",
            ["reason"],
            registry=self.registry,
        )

    def turn(self, flow: str) -> None:
        counter = self._turns.get(flow)
        if counter is None:
            counter = self._turns[flow] = self.turns.labels(flow)
        counter.inc()

    def ended(self, session: Session) -> None:
        """Count an ended call once (labels never carry caller input or sensitive values)."""
        flow = session.flow_id
        self.calls.labels(flow, session.outcome or "failed").inc()
        if session.outcome == "transferred":
            self.transfers.labels(flow, session.queue or "", session.reason or "").inc()
        for task in session.tasks:
            self.tasks.labels(flow, task).inc()

    def transfer_result(self, session: Session) -> None:
        queue = session.queue or ""
        self.transfer_results.labels(session.flow_id, queue, session.transfer_result or "").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
