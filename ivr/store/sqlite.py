"""SQLite sessions (the default): WAL, durable per turn, for one server process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from ivr.engine.session import Session
from ivr.keys import Keys
from ivr.store.base import ACTIVE_TTL, LocalFetches, LocalLocks, Sealing, Stored, ttl

log = logging.getLogger("ivr.store")
Statements = Sequence[tuple[str, Sequence[Sequence[Any]]]]  # (sql, the rows it runs for)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    call_id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    reply TEXT NOT NULL,
    expires REAL NOT NULL,
    unrecorded INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_unrecorded ON sessions (unrecorded) WHERE unrecorded = 1;
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE TABLE IF NOT EXISTS links (
    key TEXT PRIMARY KEY, call_id TEXT NOT NULL, expires REAL NOT NULL
);
"""
# calls in progress, for the reaper (a database from before it gets the column first)
_ACTIVE = "CREATE INDEX IF NOT EXISTS sessions_active ON sessions (expires) WHERE active = 1"
# the purge runs on the loop: without the index on expires it read the whole table, and
# with an hour of calls at 20 calls/s (72,000 rows) every call in flight waited 114 ms;
# the index costs ~3 µs a saved turn
# an upsert rewrites the row in place (and moves its entry in the expires index), where
# INSERT OR REPLACE deletes and re-inserts it: new rowid, index and free-list pages
_UPSERT = """
INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET
    session = excluded.session, reply = excluded.reply, expires = excluded.expires,
    unrecorded = excluded.unrecorded, active = excluded.active
"""
_PURGE = "DELETE FROM sessions WHERE expires < ? AND unrecorded = 0 RETURNING call_id"
PURGE_EVERY = 1000  # saves between sweeps of expired sessions
WAL_LIMIT = 4096  # frames (16 MB of 4 KB pages) in the WAL before writes wait on a checkpoint
RECENT = 1000  # ended calls kept in memory


class WalDatabase:
    """A SQLite database written from the event loop, checkpointed from a thread.

    A commit in WAL mode with `synchronous=NORMAL` is a buffered write() with no
    fsync (~30 µs) that survives a crash of the process; a hop to a thread and back
    costs ~100 µs of CPU around it, so statements run on the loop. What can really
    block, the checkpoint that copies the WAL into the database and syncs it, runs
    every few seconds on a thread with a connection of its own.

    The WAL starts over only when a write begins on a WAL copied in full, and under
    steady load that never happens: writes go on while a checkpoint runs, and the WAL
    grew without end (550 MB in 40 s of the webhook bench). So when it holds more than
    WAL_LIMIT frames, writes wait in the queue while one more checkpoint copies the rest.
    """

    def __init__(self, path: Path, schema: str, checkpoint_every: float = 5.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self._every = path, checkpoint_every
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.execute("PRAGMA wal_autocheckpoint=0")  # the thread's job
        # a WAL grown past 64 MB is cut back to that size when it starts over
        self.db.execute(f"PRAGMA journal_size_limit={4 * WAL_LIMIT * 4096}")
        self.db.executescript(schema)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ivr-checkpoint")
        self._task: asyncio.Task[None] | None = None
        self._pending: list[tuple[Statements, asyncio.Future[None]]] = []
        self._held = False  # writes wait while a checkpoint catches up with the WAL

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no loop yet: start with the first on one
                self._task = asyncio.get_running_loop().create_task(self._checkpoints())
        return self.db.execute(sql, args).fetchall()

    def write(self, sql: str, args: Sequence[Any]) -> asyncio.Future[None]:
        """Queue a write; those queued in one pass of the loop commit in one transaction.

        Under load several turns reach their save in the same pass, and one commit
        costs about what each of theirs would have cost alone.
        """
        return self.write_all([(sql, [args])])

    def write_all(self, statements: Statements) -> asyncio.Future[None]:
        """Queue statements that commit together or not at all: each with its rows."""
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._commit)
        done = loop.create_future()
        self._pending.append((statements, done))
        return done

    def _commit(self) -> None:
        if self._held:
            return  # the checkpoint's end commits what queued up meanwhile
        batch, self._pending = self._pending, []
        try:
            if len(batch) == 1 and len(batch[0][0]) == 1 and len(batch[0][0][0][1]) == 1:
                sql, (args,) = batch[0][0][0]  # a statement alone commits itself
                self.execute(sql, args)
            else:
                self._transaction([s for statements, _ in batch for s in statements])
        except sqlite3.Error:
            for statements, done in batch:  # one by one, so only a bad write fails
                try:
                    self._transaction(statements)
                except sqlite3.Error as e:
                    _settle(done, e)
                else:
                    _settle(done, None)
        else:
            for _, done in batch:
                _settle(done, None)

    def _transaction(self, statements: Statements) -> None:
        try:
            self.execute("BEGIN")
            for sql, rows in statements:
                self.db.executemany(sql, rows)
            self.db.execute("COMMIT")
        except sqlite3.Error:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    async def _checkpoints(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._every)
            try:
                if await loop.run_in_executor(self._thread, self._checkpoint) > WAL_LIMIT:
                    self._held = True
                    await loop.run_in_executor(self._thread, self._checkpoint)
            except sqlite3.Error:  # a disk full or locked now may be gone next time
                log.exception("checkpoint of %s failed", self.path)
            finally:
                if self._held:
                    self._held = False
                    if self._pending:
                        self._commit()

    def _checkpoint(self) -> int:
        """Copy the WAL into the database; the frames it holds."""
        db = sqlite3.connect(self.path)
        try:
            return int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
        finally:
            db.close()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._held = False
        if self._pending:
            self._commit()
        self._thread.shutdown()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.cancelled():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class SqliteSessions(LocalFetches):
    """Sessions of one `ivr serve` process (several processes share Redis instead).

    Each turn commits on the loop (see WalDatabase). Calls in progress and the
    calls that ended last are kept in memory, so a turn or the status callback
    after the end reads no disk; `_known` says which calls have a row at all.
    """

    def __init__(self, path: Path, keys: Keys | None = None) -> None:
        super().__init__()
        self._sealing = Sealing(keys)
        self._db = WalDatabase(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "active" not in columns:
            self._db.execute("ALTER TABLE sessions ADD COLUMN active INTEGER NOT NULL DEFAULT 0")
        self._db.execute(_ACTIVE)
        self._locks = LocalLocks()
        self._saves = 0
        self._live: dict[str, tuple[Session, str, float]] = {}  # calls in progress
        self._recent: OrderedDict[str, tuple[Session, str, float]] = OrderedDict()  # ended
        rows = self._db.execute("SELECT call_id FROM sessions WHERE expires > ?", (time.time(),))
        self._known: set[str] = {r[0] for r in rows}

    async def load(self, call_id: str) -> Stored | None:
        live = self._live.get(call_id) or self._recent.get(call_id)
        if live is not None and live[2] > time.time():
            return Stored(live[0], live[1])
        if call_id not in self._known:
            return None
        rows = self._db.execute(
            "SELECT session, reply FROM sessions WHERE call_id = ? AND expires > ?",
            (call_id, time.time()),
        )
        if not rows:
            return None
        opened = self._sealing.open_turn(call_id, *rows[0])
        return None if opened is None else Stored(Session.from_json(opened[0]), opened[1])

    async def save(self, session: Session, reply: str) -> None:
        expires, ended = time.time() + ttl(session), int(session.ended)
        kept = (session, reply, expires)
        if session.ended:  # read by the status callback, seldom later: disk is enough then
            self._live.pop(session.call_id, None)
            self._recent[session.call_id] = kept
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        else:
            self._live[session.call_id] = kept
        self._known.add(session.call_id)
        call_id = session.call_id
        text, reply = self._sealing.seal_turn(call_id, session.to_json(), reply)
        try:
            await self._db.write(_UPSERT, (call_id, text, reply, expires, ended, 1 - ended))
        except Exception:  # memory must not claim what the disk may not have
            self._live.pop(session.call_id, None)
            self._recent.pop(session.call_id, None)
            raise
        self._saves += 1
        if self._saves % PURGE_EVERY == 0:
            self._purge()

    def _purge(self) -> None:
        now = time.time()
        for call_id in [c for c, live in self._live.items() if live[2] < now]:
            del self._live[call_id]
        gone = self._db.execute(_PURGE, (now,))
        self._db.execute("DELETE FROM links WHERE expires < ?", (now,))
        self._known.difference_update(r[0] for r in gone)

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks(call_id)

    async def link(self, key: str, call_id: str, keep: float) -> None:
        await self._db.write(
            "INSERT OR REPLACE INTO links VALUES (?, ?, ?)", (key, call_id, time.time() + keep)
        )

    async def linked(self, key: str) -> str | None:
        rows = self._db.execute(
            "SELECT call_id FROM links WHERE key = ? AND expires > ?", (key, time.time())
        )
        return str(rows[0][0]) if rows else None

    async def stale(self, before: float) -> list[str]:
        rows = self._db.execute(
            "SELECT call_id FROM sessions WHERE active = 1 AND expires < ?", (before + ACTIVE_TTL,)
        )
        return [r[0] for r in rows]

    async def unrecorded(self) -> list[Session]:
        rows = self._db.execute(
            "SELECT call_id, session, reply FROM sessions WHERE unrecorded = 1 ORDER BY call_id"
        )
        opened = (self._sealing.open_turn(call_id, text, reply) for call_id, text, reply in rows)
        return [Session.from_json(kept[0]) for kept in opened if kept is not None]

    async def mark_recorded(self, call_id: str, final: bool = False) -> None:
        if not final:
            await self._db.write(
                "UPDATE sessions SET unrecorded = 0 WHERE call_id = ? AND unrecorded = 1",
                (call_id,),
            )
            return
        self._live.pop(call_id, None)
        self._recent.pop(call_id, None)
        self._known.discard(call_id)
        await self.drop_fetch(call_id)
        await self._db.write("DELETE FROM sessions WHERE call_id = ?", (call_id,))

    async def close(self) -> None:
        self._db.close()
