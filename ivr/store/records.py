"""Call records: one durable row per ended call, and the hourly facts reports add up.

A record is written once, when the call's outcome is final; a late signal (a dial
result, a status callback after the flow ended) updates its row and never the counts.
The facts of a call (per hour: its outcome, tasks, the nodes it reached, its inputs,
the ways it took between nodes) go into rollup tables with the record, in the same
transaction, so a report over a million calls adds up a few thousand rows.
Ended sessions sit in the session store's outbox until their record is written, so a
crash between the two loses nothing; a failed write is tried again while the server runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from itertools import pairwise
from typing import Any, Protocol

import orjson

from ivr.engine.session import MASK, Session
from ivr.flow.hours import Closure
from ivr.keys import Keys
from ivr.store.base import SessionStore
from ivr.store.history import History

log = logging.getLogger("ivr.records")

HOUR = 3600
# upper bounds (s) of the time-in-IVR buckets that percentiles are read from
DURATION_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1800, 3600)
RETRY_FIRST, RETRY_MOST = 1.0, 60.0  # seconds before a failed write is tried again, doubling
WRITTEN = 10_000  # calls remembered as written: their late signals come within minutes
LINGER = 0.2  # seconds a record waits for others to be written with (the outbox keeps it)


@dataclass(frozen=True)
class CallRecord:
    """An ended call as kept: made by `record_of`, written by a RecordStore, read by reports.
    Nothing personal is in clear: `customer` is a keyed HMAC of the caller's number,
    `caller` the number and `transcript` the masked transcript, both encrypted."""

    call_sid: str
    flow_id: str
    flow_version: str
    started_at: float
    ended_at: float
    duration: float
    outcome: str
    channel: str = "voice"
    direction: str = "inbound"
    experiment: str = ""
    variant: str = ""
    customer: str | None = None
    caller: str | None = None  # encrypted
    reason: str | None = None  # a transfer's KIND (ivr.engine.session.REASONS)
    reason_detail: str | None = None  # the option, node or backend behind it
    transfer_from: str | None = None  # the node where the transfer was decided
    queue: str | None = None
    tasks: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    inputs: dict[str, int] = field(default_factory=dict)
    status: str | None = None  # Twilio's final CallStatus when it told us
    transfer_result: str | None = None  # Twilio's DialCallStatus or QueueResult
    error: str | None = None
    transcript: str | None = None  # encrypted JSON
    callback: str | None = None  # a callback request (number, window, queue): encrypted JSON
    survey: dict[str, str] = field(default_factory=dict)  # answers by survey name (csat: "4")
    recording: str | None = None  # the URL of the call's recording: encrypted
    # a conversation that went on by text: its legs in order, each {channel, at, outcome,
    # ended}; () for one on a single channel (counted under the first: `channel`)
    legs: tuple[dict[str, Any], ...] = ()

    @property
    def last_node(self) -> str | None:
        return self.path[-1] if self.path else None

    @property
    def resolved(self) -> bool:
        """Self-service resolved: a task done, and no agent."""
        return bool(self.tasks) and self.outcome != "transferred"

    @property
    def after_task(self) -> bool:
        """Hung up after a task was done: the caller heard their balance and left."""
        return self.outcome == "abandoned" and bool(self.tasks)

    @property
    def hour(self) -> int:
        return int(self.ended_at // HOUR) * HOUR


def record_of(session: Session, keys: Keys | None) -> CallRecord:
    """The record of an ended session; sensitive values never appear in one. Without
    `keys`, what needs them (the caller, the transcript) is left out: enough for a late
    signal about a call whose record is written already."""
    caller = str(session.vars.get("caller", "")) if keys else ""
    end = session.ended_at if session.ended_at is not None else session.started_at
    kind, _, detail = (session.reason or "").partition(":")
    transferred = session.outcome == "transferred"
    return CallRecord(
        call_sid=session.call_id,
        flow_id=session.flow_id,
        flow_version=session.version,
        started_at=session.started_at,
        ended_at=end,
        duration=round(max(0.0, end - session.started_at), 3),
        outcome=session.outcome or "failed",
        channel=session.channel,
        direction=session.direction,
        experiment=session.experiment or "",
        variant=session.variant or "",
        customer=keys.customer_id(session.address or caller)
        if keys and (session.address or caller)
        else None,
        caller=keys.seal(caller) if keys and caller else None,
        reason=kind if transferred and kind else None,
        reason_detail=detail or None if transferred else None,
        transfer_from=session.reason_at if transferred else None,
        queue=session.queue,
        tasks=tuple(session.tasks),
        path=tuple(session.path),
        inputs=dict(session.inputs),
        status=session.call_status,
        transfer_result=session.transfer_result,
        error=_masked(session.error, session),
        transcript=keys.seal(orjson.dumps(session.transcript).decode()) if keys else None,
        callback=keys.seal(orjson.dumps(session.callback).decode())
        if keys and session.callback
        else None,
        survey=dict(session.survey),
        recording=keys.seal(session.recording) if keys and session.recording else None,
        legs=_legs(session, end),
    )


def _legs(session: Session, end: float) -> tuple[dict[str, Any], ...]:
    """The legs of a conversation that moved between channels, the last one ended too."""
    if not session.legs:
        return ()
    *before, last = session.legs
    return (*before, {**last, "outcome": session.outcome or "failed", "ended": end})


def _masked(text: str | None, session: Session) -> str | None:
    """`text` with the values of sensitive variables masked: errors may quote them."""
    for name in session.sensitive:
        value = session.vars.get(name)
        if text and value not in (None, ""):
            text = text.replace(str(value), MASK)
    return text


# -- the facts reports add up --------------------------------------------------------------

# the columns every rollup row is keyed by, after its hour
DIMENSIONS = ("flow_id", "flow_version", "experiment", "variant", "channel", "direction")
# rollup table -> (its own key columns, its count columns)
ROLLUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hour_calls": (
        ("outcome", "reason", "queue", "resolved", "after_task"),
        ("calls", "seconds"),
    ),
    "hour_durations": (("outcome", "bucket"), ("calls",)),
    "hour_tasks": (("task",), ("calls",)),
    "hour_nodes": (("node",), ("reached", "transferred", "abandoned")),
    "hour_inputs": (("node", "mode", "result"), ("inputs",)),
    "hour_edges": (("src", "dst"), ("calls",)),
    # survey answers (CSAT 1-5, or any menu's) by how the call ended: the voice of the customer
    "hour_surveys": (("outcome", "reason", "queue", "survey", "answer"), ("calls",)),
    # conversations that went on in another channel ("voice>sms"), by how they ended
    "hour_legs": (("legs", "outcome"), ("calls",)),
}


def facts(record: CallRecord) -> Iterator[tuple[str, tuple[Any, ...], tuple[float, ...]]]:
    """(rollup table, key, counts) of one call: what it adds to each rollup."""
    base = (record.hour, *(getattr(record, d) for d in DIMENSIONS))
    reason, queue = record.reason or "", record.queue or ""
    resolved, after = int(record.resolved), int(record.after_task)
    yield (
        "hour_calls",
        (*base, record.outcome, reason, queue, resolved, after),
        (1, record.duration),
    )
    yield "hour_durations", (*base, record.outcome, duration_bucket(record.duration)), (1,)
    for task in dict.fromkeys(record.tasks):
        yield "hour_tasks", (*base, task), (1,)
    last = record.last_node
    for node in dict.fromkeys(record.path):  # reached, counted once a call
        left = int(node == record.transfer_from and record.outcome == "transferred")
        hung_up = int(node == last and record.outcome == "abandoned")
        yield "hour_nodes", (*base, node), (1, left, hung_up)
    for key, count in record.inputs.items():
        node, *how = key.split(":")
        mode, result = how if len(how) == 2 else ("", how[0])
        yield "hour_inputs", (*base, node, mode, result), (count,)
    for src, dst in dict.fromkeys(pairwise(record.path)):
        if src != dst:
            yield "hour_edges", (*base, src, dst), (1,)
    for survey, answer in record.survey.items():
        yield "hour_surveys", (*base, record.outcome, reason, queue, survey, answer[:40]), (1,)
    if record.legs:
        legs = ">".join(str(leg.get("channel")) for leg in record.legs)
        yield "hour_legs", (*base, legs, record.outcome), (1,)


def duration_bucket(seconds: float) -> int:
    """The upper bound of the time-in-IVR bucket `seconds` falls in (0: past the last)."""
    return next((b for b in DURATION_BUCKETS if seconds <= b), 0)


def rollup(records: Sequence[CallRecord]) -> dict[str, dict[tuple[Any, ...], list[float]]]:
    """The rollup increments of `records`, summed per row: a batch writes each row once."""
    out: dict[str, dict[tuple[Any, ...], list[float]]] = {table: {} for table in ROLLUPS}
    for record in records:
        for table, key, counts in facts(record):
            row = out[table].setdefault(key, [0] * len(counts))
            for i, n in enumerate(counts):
                row[i] += n
    return out


# -- stores and the writer -------------------------------------------------------------------


class RecordStore(Protocol):
    """Where call records go: SQLite (ivr/store/sqlite_records.py) or PostgreSQL."""

    async def add(self, records: Sequence[CallRecord]) -> None:
        """Write records in one transaction. A call written before only has its late
        fields (status, transfer_result) updated: the rollups never count it twice."""

    async def all(self) -> list[CallRecord]:
        """Every record, oldest first (tests and small tools)."""

    async def purge(self, before: float) -> int:
        """Delete the records of calls that ended before `before` (Unix time), their
        transcripts with them; how many. The hourly rollups, which name nobody, stay."""

    async def forget(self, customer: str) -> int:
        """Delete every record of one customer (a keyed id: `Keys.customer_id`); how many."""

    async def history(self, customer: str, now: float, tz: tzinfo) -> History:
        """One customer's history at `now` (ivr.store.history), `calls_today` counted
        from the last midnight in `tz`: one indexed query."""

    # the ops state kept beside the records (ivr/store/closures.py): hours ops closed

    async def closures(self) -> list[Closure]:
        """Every closure in the table, those that have ended too (they cover no time)."""

    async def close_hours(self, closure: Closure, now: float) -> None:
        """Close hours (again: a new end and message); closures ended by `now` are deleted."""

    async def open_hours(self, hours: str, flow: str | None = None) -> int:
        """Reopen the hours of that name, in one flow or (None) every flow; rows deleted."""

    async def close(self) -> None: ...


class RecordWriter:
    """Writes records in the background, batched; a failed batch stays in the outbox and
    is tried again, later and later, while the server runs."""

    def __init__(
        self,
        sessions: SessionStore,
        records: RecordStore,
        keys: Keys,
        on_error: Callable[[], None] = lambda: None,
        linger: float = LINGER,
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_error` is told of each failed write to the records store, `on_written` of
        each that worked (the server's metrics and store health)."""
        self.sessions, self.records, self.keys, self.on_error = sessions, records, keys, on_error
        self.linger, self.on_written = linger, on_written
        self._queue: asyncio.Queue[Session | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._retry: asyncio.Task[None] | None = None
        self._written: dict[str, None] = {}  # calls whose record this process wrote, latest last
        self._wait = RETRY_FIRST

    async def start(self) -> None:
        try:
            await self._from_outbox()  # what a crash left behind
        except Exception:  # the session store is down: the server starts all the same
            log.exception("the outbox of unwritten call records could not be read")
            self._try_again()
        self._task = asyncio.create_task(self._drain(), name="ivr-record-writer")

    def wrote(self, call_id: str) -> bool:
        """Whether this process wrote the call's record (one of the last WRITTEN calls)."""
        return call_id in self._written

    def submit(self, session: Session) -> None:
        """Queue the record of an ended call; returns at once."""
        self._queue.put_nowait(session)

    async def _from_outbox(self) -> None:
        for session in await self.sessions.unrecorded():
            self._queue.put_nowait(session)

    async def _drain(self) -> None:
        stopping = False
        while not stopping:
            batch = [await self._queue.get()]
            if batch[0] is not None:
                # records wait a moment to be written together: one transaction for many
                # calls, and the status callback that follows a call's end in the same one
                await asyncio.sleep(self.linger)
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stopping = None in batch
            sessions = list({s.call_id: s for s in batch if s is not None}.values())
            if sessions:
                await self._write(sessions)

    async def _write(self, sessions: list[Session]) -> None:
        written = self._written
        try:
            # a call written already only needs what a late signal told: no encryption
            records = [record_of(s, None if s.call_id in written else self.keys) for s in sessions]
            await self.records.add(records)
        except Exception:
            log.exception("%d call record(s) not written; they stay in the outbox", len(sessions))
            self.on_error()
            self._try_again()
            return
        self.on_written()
        for session in sessions:
            written[session.call_id] = None
            if len(written) > WRITTEN:
                del written[next(iter(written))]
        try:
            for session in sessions:
                # Twilio's status callback is the call's last webhook (or the reaper closed
                # it): its record is final, and the session would only sit out ENDED_TTL.
                # A text conversation has no status callback: ended, it is final at once
                final = session.call_status is not None or session.medium != "voice"
                await self.sessions.mark_recorded(session.call_id, final)
            self._wait = RETRY_FIRST
        except Exception:  # the session store is down: written again (idempotent) later
            log.exception("written call records stay in the outbox of the session store")
            self._try_again()

    def _try_again(self) -> None:
        if self._retry is None:
            self._retry = asyncio.create_task(self._again(self._wait), name="ivr-record-retry")
            self._wait = min(RETRY_MOST, self._wait * 2)

    async def _again(self, after: float) -> None:
        await asyncio.sleep(after)
        self._retry = None
        try:
            await self._from_outbox()
        except Exception:  # the session store may be down too
            log.exception("the outbox of unwritten call records could not be read")
            self._try_again()

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
