"""Call records: one durable row per ended call, written off the caller's turn.

Ended sessions sit in the session store's outbox until their record is written,
so a crash between the two loses nothing: the outbox is drained at start-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ivr.engine.session import MASK, Session
from ivr.store.base import SessionStore
from ivr.store.sqlite import WalDatabase

log = logging.getLogger("ivr.records")


@dataclass(frozen=True)
class CallRecord:
    call_sid: str
    flow_id: str
    flow_version: str
    caller: str  # hashed unless IVR_STORE_CALLER=plain
    started_at: float
    ended_at: float
    duration: float
    outcome: str
    queue: str | None
    reason: str | None
    tasks: tuple[str, ...]
    path: tuple[str, ...]
    inputs: dict[str, int] = field(default_factory=dict)
    status: str | None = None  # Twilio's final CallStatus when it told us
    transfer_result: str | None = None  # Twilio's DialCallStatus or QueueResult
    error: str | None = None


def record_of(session: Session, hash_caller: bool = True, salt: str = "") -> CallRecord:
    """The call record of an ended session; sensitive values never appear in one."""
    caller = str(session.vars.get("caller", ""))
    if hash_caller and caller:
        caller = "sha256:" + hashlib.sha256((salt + caller).encode()).hexdigest()[:16]
    end = session.ended_at if session.ended_at is not None else session.started_at
    return CallRecord(
        call_sid=session.call_id,
        flow_id=session.flow_id,
        flow_version=session.version,
        caller=caller,
        started_at=session.started_at,
        ended_at=end,
        duration=round(max(0.0, end - session.started_at), 3),
        outcome=session.outcome or "failed",
        queue=session.queue,
        reason=session.reason if session.outcome == "transferred" else None,
        tasks=tuple(session.tasks),
        path=tuple(session.path),
        inputs=dict(session.inputs),
        status=session.call_status,
        transfer_result=session.transfer_result,
        error=_masked(session.error, session),
    )


def _masked(text: str | None, session: Session) -> str | None:
    """`text` with the values of sensitive variables masked: errors may quote them."""
    for name in session.sensitive:
        value = session.vars.get(name)
        if text and value not in (None, ""):
            text = text.replace(str(value), MASK)
    return text


class RecordStore(Protocol):
    async def add(self, record: CallRecord) -> None:
        """Idempotent by call_sid: writing the same call twice keeps one row."""

    async def all(self) -> list[CallRecord]: ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_sid TEXT PRIMARY KEY, flow_id TEXT NOT NULL, flow_version TEXT NOT NULL, caller TEXT,
    started_at REAL, ended_at REAL, duration REAL, outcome TEXT NOT NULL, queue TEXT, reason TEXT,
    tasks TEXT, path TEXT, inputs TEXT, status TEXT, error TEXT, transfer_result TEXT
);
CREATE INDEX IF NOT EXISTS calls_ended ON calls (ended_at);
"""
_JSON_FIELDS = ("tasks", "path", "inputs")
_FIELDS = tuple(CallRecord.__dataclass_fields__)
_INSERT = (
    f"INSERT OR REPLACE INTO calls ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"
)


class SqliteRecords:
    """Call records in SQLite, written on the loop like sessions (see WalDatabase)."""

    def __init__(self, path: Path) -> None:
        self._db = WalDatabase(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(calls)")}
        for name in _FIELDS:  # a database from an older version lacks the newer columns
            if name not in columns:
                self._db.execute(f"ALTER TABLE calls ADD COLUMN {name}")

    async def add(self, record: CallRecord) -> None:
        row = {name: getattr(record, name) for name in _FIELDS}  # asdict() deep-copies: slow
        for key in _JSON_FIELDS:
            row[key] = json.dumps(row[key])
        await self._db.write(_INSERT, tuple(row.values()))

    async def all(self) -> list[CallRecord]:
        out = []
        for row in self._db.execute(f"SELECT {', '.join(_FIELDS)} FROM calls ORDER BY ended_at"):
            data = dict(zip(_FIELDS, row, strict=True))
            for key in _JSON_FIELDS:
                value = json.loads(data[key])
                data[key] = tuple(value) if isinstance(value, list) else value
            out.append(CallRecord(**data))
        return out

    async def close(self) -> None:
        self._db.close()


class RecordWriter:
    """Writes records in the background; a failure is logged and retried from the outbox."""

    def __init__(
        self, sessions: SessionStore, records: RecordStore, hash_caller: bool = True, salt: str = ""
    ) -> None:
        self.sessions, self.records = sessions, records
        self.hash_caller, self.salt = hash_caller, salt
        self._queue: asyncio.Queue[Session | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for session in await self.sessions.unrecorded():  # what a crash left behind
            self._queue.put_nowait(session)
        self._task = asyncio.create_task(self._drain(), name="ivr-record-writer")

    def submit(self, session: Session) -> None:
        """Queue the record of an ended call; returns at once."""
        self._queue.put_nowait(session)

    async def _drain(self) -> None:
        stopping = False
        while not stopping:
            batch = [await self._queue.get()]
            while not self._queue.empty():  # written together: the store commits them as one
                batch.append(self._queue.get_nowait())
            stopping = None in batch
            await asyncio.gather(*(self._write(s) for s in batch if s is not None))

    async def _write(self, session: Session) -> None:
        try:
            await self.records.add(record_of(session, self.hash_caller, self.salt))
            await self.sessions.mark_recorded(session.call_id)
        except Exception:
            log.exception(
                "call record not written; it stays in the outbox",
                extra={"call_sid": session.call_id},
            )

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
