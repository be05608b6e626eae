"""A voice call's life in the stores, the same for every voice transport.

The webhooks (`ivr.telephony.webhook`) and the Media Streams driver
(`ivr.telephony.stream`) both start calls, save them after every turn and end them
here, so a call is counted, saved and recorded the same way whichever path it took:
once started, once ended, its record written once it ends.
"""

from __future__ import annotations

import logging

from ivr.engine import new_session, step
from ivr.engine.events import HangUp
from ivr.engine.session import Session
from ivr.metrics import Metrics
from ivr.registry import FlowRegistry, Route
from ivr.runner import Runner
from ivr.store.base import SessionStore, Stored
from ivr.store.records import RecordWriter

log = logging.getLogger("ivr.calls")


class Calls:
    """Starts, saves and ends voice calls for one process: made by the server, used by the
    webhooks and the stream driver alike."""

    def __init__(
        self,
        flows: FlowRegistry,
        sessions: SessionStore,
        runner: Runner,
        writer: RecordWriter,
        metrics: Metrics,
    ) -> None:
        self.flows, self.sessions, self.runner = flows, sessions, runner
        self.writer, self.metrics = writer, metrics

    def start(self, route: Route, sid: str, direction: str) -> Session:
        """A new call's session on the route's flow (not yet stepped), counted as started.
        `direction` is Twilio's: inbound, or outbound-api / outbound-dial."""
        flow = route.flow
        session = new_session(flow, sid)
        session.experiment, session.variant = route.experiment, route.variant
        session.direction = "outbound" if direction.startswith("out") else "inbound"
        self.metrics.started(session)
        log.info(
            "call started on %s version %s%s",
            flow.id,
            flow.version,
            f" (experiment {route.experiment})" if route.experiment else "",
        )
        return session

    async def save(self, session: Session, reply: str) -> None:
        """Save the session with the answer a retried request gets; an ended call is
        counted and its record written, once."""
        try:
            await self.sessions.save(session, reply)
        except Exception:
            self.metrics.store_error("sessions", "save")
            raise
        if session.ended:
            log.info(
                "call ended: %s",
                session.outcome,
                extra={"outcome": session.outcome, "node": session.node, "reason": session.reason},
            )
            self.metrics.ended(session)
            self.writer.submit(session)

    async def hang_up(self, stored: Stored, status: str | None, at: float) -> Session:
        """The caller left before the flow ended: the call is abandoned where it was (failed
        when its flow is not loaded any more). `status` is Twilio's final CallStatus, when
        known. The caller of this holds the call's lock."""
        flow = self.flows.get(stored.session.flow_id, stored.session.version)
        if flow is None:
            error = f"flow {stored.session.flow_id} was not loaded when the caller left"
            session = self.runner.fail(None, stored.session, error).session
        else:
            session, _ = step(flow, stored.session, HangUp(at=at))
        session.call_status = status
        log.info("caller left at %s", session.node)
        await self.save(session, stored.reply)
        return session
