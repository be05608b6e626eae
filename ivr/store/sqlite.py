"""SQLite sessions (the default): WAL, durable per turn, for one server process."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from ivr.engine.session import Session
from ivr.store.base import LocalLocks, Stored, ttl

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    call_id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    reply TEXT NOT NULL,
    expires REAL NOT NULL,
    unrecorded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_unrecorded ON sessions (unrecorded) WHERE unrecorded = 1;
"""
PURGE_EVERY = 1000  # saves between sweeps of expired sessions


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode (a crash of the process loses no committed turn)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes, fast
    db.execute("PRAGMA busy_timeout=5000")
    return db


class SqliteSessions:
    """Sessions of one `ivr serve` process (several processes share Redis instead).

    A turn's write is a commit to the WAL without fsync (`synchronous=NORMAL`): a
    buffered write() that survives a crash of the process, ~30 µs. Measured, a hop
    to a thread and back costs ~100 µs of CPU around it, so commits run on the loop;
    what can really block, the checkpoint that copies the WAL into the database
    and syncs it, runs on a thread of its own. Calls in progress are kept in memory,
    so a turn reads no disk; `_known` says which calls have a row at all.
    """

    def __init__(self, path: Path, checkpoint_every: float = 5.0) -> None:
        self._db = connect(path)
        self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints are the thread's job
        self._path, self._checkpoint_every = path, checkpoint_every
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ivr-checkpoint")
        self._checkpointer: asyncio.Task[None] | None = None
        self._locks = LocalLocks()
        self._saves = 0
        self._live: dict[str, tuple[Session, str, float]] = {}  # calls in progress
        rows = self._db.execute("SELECT call_id FROM sessions WHERE expires > ?", (time.time(),))
        self._known: set[str] = {r[0] for r in rows}

    async def load(self, call_id: str) -> Stored | None:
        live = self._live.get(call_id)
        if live is not None and live[2] > time.time():
            return Stored(live[0].copy(), live[1])
        if call_id not in self._known:
            return None
        row = self._db.execute(
            "SELECT session, reply FROM sessions WHERE call_id = ? AND expires > ?",
            (call_id, time.time()),
        ).fetchone()
        return Stored(Session.from_json(row[0]), row[1]) if row else None

    async def save(self, session: Session, reply: str) -> None:
        expires = time.time() + ttl(session)
        if session.ended:  # ended calls are read rarely (retries, callbacks): disk is enough
            self._live.pop(session.call_id, None)
        else:
            self._live[session.call_id] = (session.copy(), reply, expires)
        self._known.add(session.call_id)
        self._db.execute(
            "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)",
            (session.call_id, session.to_json(), reply, expires, int(session.ended)),
        )
        if self._checkpointer is None:
            self._checkpointer = asyncio.create_task(self._checkpoints())
        self._saves += 1
        if self._saves % PURGE_EVERY == 0:
            self._purge()

    async def _checkpoints(self) -> None:
        def checkpoint() -> None:
            db = sqlite3.connect(self._path)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                db.close()

        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._checkpoint_every)
            await loop.run_in_executor(self._thread, checkpoint)

    def _purge(self) -> None:
        now = time.time()
        for call_id in [c for c, live in self._live.items() if live[2] < now]:
            del self._live[call_id]
        gone = self._db.execute(
            "DELETE FROM sessions WHERE expires < ? AND unrecorded = 0 RETURNING call_id", (now,)
        ).fetchall()
        self._known.difference_update(r[0] for r in gone)

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks(call_id)

    async def unrecorded(self) -> list[Session]:
        rows = self._db.execute(
            "SELECT session FROM sessions WHERE unrecorded = 1 ORDER BY call_id"
        ).fetchall()
        return [Session.from_json(r[0]) for r in rows]

    async def mark_recorded(self, call_id: str) -> None:
        self._db.execute("UPDATE sessions SET unrecorded = 0 WHERE call_id = ?", (call_id,))

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
        self._thread.shutdown()
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
