"""SQLite sessions (the default): WAL, one connection on its own thread, durable per turn."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

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
    """A connection for one dedicated thread, in WAL mode (a crash loses no committed turn)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes, fast
    db.execute("PRAGMA busy_timeout=5000")
    return db


class SqliteSessions:
    """Sessions of one `ivr serve` process (several processes share Redis instead).

    Calls in progress are also kept in memory, so a turn reads no disk; saves that
    arrive together are committed together in one transaction on the store's thread
    (group commit), and each returns once its row is durable.
    """

    def __init__(self, path: Path) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ivr-sessions")
        self._db = self._thread.submit(self._open, path).result()
        self._locks = LocalLocks()
        self._saves = 0
        self._live: dict[str, tuple[Session, str, float]] = {}  # calls in progress
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._batch: asyncio.Future[None] | None = None

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = connect(path)
        db.executescript(_SCHEMA)
        return db

    async def _run(self, sql: str, *args: Any) -> list[Any]:
        def work() -> list[Any]:
            return self._db.execute(sql, args).fetchall()

        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def load(self, call_id: str) -> Stored | None:
        live = self._live.get(call_id)
        if live is not None and live[2] > time.time():
            return Stored(live[0].copy(), live[1])
        rows = await self._run(
            "SELECT session, reply FROM sessions WHERE call_id = ? AND expires > ?",
            call_id,
            time.time(),
        )
        return Stored(Session.from_json(rows[0][0]), rows[0][1]) if rows else None

    async def save(self, session: Session, reply: str) -> None:
        expires = time.time() + ttl(session)
        if session.ended:  # ended calls are read rarely (retries, callbacks): disk is enough
            self._live.pop(session.call_id, None)
        else:
            self._live[session.call_id] = (session.copy(), reply, expires)
        self._pending[session.call_id] = (
            session.call_id,
            session.to_json(),
            reply,
            expires,
            int(session.ended),
        )
        if self._batch is None:
            self._batch = asyncio.ensure_future(self._commit())
        await asyncio.shield(self._batch)
        self._saves += 1
        if self._saves % PURGE_EVERY == 0:
            await self._purge()

    async def _commit(self) -> None:
        await asyncio.sleep(0)  # turns that are ready now add their rows to this batch
        rows, self._pending, self._batch = list(self._pending.values()), {}, None

        def write() -> None:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

        await asyncio.get_running_loop().run_in_executor(self._thread, write)

    async def _purge(self) -> None:
        now = time.time()
        for call_id in [c for c, live in self._live.items() if live[2] < now]:
            del self._live[call_id]
        await self._run("DELETE FROM sessions WHERE expires < ? AND unrecorded = 0", now)

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks(call_id)

    async def unrecorded(self) -> list[Session]:
        rows = await self._run("SELECT session FROM sessions WHERE unrecorded = 1 ORDER BY call_id")
        return [Session.from_json(r[0]) for r in rows]

    async def mark_recorded(self, call_id: str) -> None:
        await self._run("UPDATE sessions SET unrecorded = 0 WHERE call_id = ?", call_id)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown()
