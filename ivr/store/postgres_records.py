"""Call records in PostgreSQL: SQLite's tables, for several `ivr serve` processes at once.

The schema and the statements are SQLite's (ivr/store/sqlite_records.py). What differs is
that processes race: a status callback that Twilio retries may reach another process, so
two of them can write the same call at once. The database decides which call is new
(`INSERT ... ON CONFLICT DO NOTHING RETURNING`), in the transaction that counts it, so a
call is counted once whoever writes it. Every transaction takes its row locks in one
order (call SIDs, then each rollup table's keys, sorted), so writers cannot deadlock one
another; one that still fails on a deadlock or serialization error is run again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import tzinfo
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ivr.errors import ConfigError
from ivr.flow.hours import Closure
from ivr.store import closures
from ivr.store.history import INDEX_SQL, History, history_of, history_sql, midnight
from ivr.store.records import CallRecord, rollup
from ivr.store.sqlite_records import (
    COLUMNS,
    LATE,
    insert_sql,
    record_from,
    rollup_sql,
    row_of,
    schema_sql,
    update_sql,
    v2_sql,
    v4_sql,
)

log = logging.getLogger("ivr.records")

# what the URL does not say: a bounded connect, a bounded statement (a lock held elsewhere
# never stalls the writer for good), a dead peer noticed in about a minute, and a name
# that tells ops in pg_stat_activity whose connection this is
CONNECT: dict[str, str | int] = {
    "connect_timeout": 5,
    "options": "-c statement_timeout=30s",
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "application_name": "ivr",
}
ATTEMPTS = 5  # tries of a transaction that lost a deadlock or serialization race
BACKOFF = 0.02  # seconds, doubling, randomised: the racers do not meet again
# pg_advisory_xact_lock key: processes starting together migrate one after another
MIGRATION_LOCK = 0x6976_725F_7265_63  # "ivr_rec"
# The schema version this ivr writes; SQLite's MIGRATIONS reach the same. PostgreSQL
# databases start at 1 (no PostgreSQL store had version 0): MIGRATIONS[n - 1] takes one
# from version n to n + 1.


async def _migrate_v1(conn: AsyncConnection[Any]) -> None:
    for sql in v2_sql("BIGINT"):
        await conn.execute(sql)


async def _migrate_v3(conn: AsyncConnection[Any]) -> None:
    for sql in v4_sql("BIGINT"):  # (idempotent: a test takes a database back a version)
        sql = sql.replace("ADD COLUMN", "ADD COLUMN IF NOT EXISTS")
        await conn.execute(sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))


async def _add_customer_index(conn: AsyncConnection[Any]) -> None:
    await conn.execute(INDEX_SQL)  # customers' histories (ivr.store.history)


MIGRATIONS: list[Callable[[AsyncConnection[Any]], Awaitable[None]]] = [
    _migrate_v1,
    closures.add_table_postgres,
    _migrate_v3,
    _add_customer_index,
]
VERSION = len(MIGRATIONS) + 1  # never out of step with the list
INSERT_NEW = insert_sql("%s") + " ON CONFLICT (call_sid) DO NOTHING RETURNING call_sid"
RACES = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
T = TypeVar("T")


class PostgresRecords:
    """Call records in PostgreSQL, over one connection made on first use and again after
    it broke; the schema is brought up to date when it is made. One connection is enough:
    the RecordWriter writes one batch at a time, and reports open their own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()  # one operation at a time on the connection

    async def add(self, records: Sequence[CallRecord]) -> None:
        if not records:
            return
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._run(lambda conn: _transaction(conn, records))
            except RACES as e:
                if attempt == ATTEMPTS:
                    raise
                log.warning("call records: %s; trying again (%d)", type(e).__name__, attempt)
                await asyncio.sleep(random.uniform(0, BACKOFF * 2**attempt))

    async def all(self) -> list[CallRecord]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM calls ORDER BY ended_at, call_sid"

        async def read(conn: AsyncConnection[Any]) -> list[Any]:
            return await (await conn.execute(sql)).fetchall()

        return [record_from(row) for row in await self._run(read)]

    async def purge(self, before: float) -> int:
        return await self._erase("ended_at < %s", before)

    async def forget(self, customer: str) -> int:
        return await self._erase("customer = %s", customer)

    async def history(self, customer: str, now: float, tz: tzinfo) -> History:
        args = (customer, midnight(now, tz), customer)

        async def read(conn: AsyncConnection[Any]) -> list[Any]:
            return await (await conn.execute(history_sql("%s"), args)).fetchall()

        return history_of(await self._run(read))

    async def _erase(self, where: str, value: Any) -> int:
        async def delete(conn: AsyncConnection[Any]) -> int:
            return (await conn.execute(f"DELETE FROM calls WHERE {where}", (value,))).rowcount

        return await self._run(delete)

    async def closures(self) -> list[Closure]:
        async def read(conn: AsyncConnection[Any]) -> list[Any]:
            return await (await conn.execute(closures.select_sql())).fetchall()

        return [closures.closure_from(row) for row in await self._run(read)]

    async def close_hours(self, closure: Closure, now: float) -> None:
        async def write(conn: AsyncConnection[Any]) -> None:
            async with conn.transaction():
                await conn.execute(closures.expired_sql("%s"), (now,))
                await conn.execute(closures.upsert_sql("%s"), closures.row_of(closure))

        await self._run(write)

    async def open_hours(self, hours: str, flow: str | None = None) -> int:
        args = (hours,) if flow is None else (hours, flow)

        async def delete(conn: AsyncConnection[Any]) -> int:
            return (await conn.execute(closures.delete_sql(flow, "%s"), args)).rowcount

        return await self._run(delete)

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def _run(self, operation: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
        """`operation` on the connection, alone; run again on a new connection when the one
        it found had broken while idle (the server restarted, a proxy timed it out)."""
        async with self._lock:
            reused = self._conn is not None and not self._conn.closed
            conn = await self._connection()
            try:
                return await operation(conn)
            except psycopg.OperationalError:
                if not (reused and conn.closed):
                    raise
                log.warning("call records: the database connection was lost; connecting again")
            return await operation(await self._connection())

    async def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            given = conninfo_to_dict(self.url)
            defaults = {k: v for k, v in CONNECT.items() if k not in given}
            conninfo = make_conninfo(self.url, **defaults)
            conn = await AsyncConnection.connect(conninfo, autocommit=True)
            try:
                await migrate(conn)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn


async def _transaction(conn: AsyncConnection[Any], records: Sequence[CallRecord]) -> None:
    async with conn.transaction():
        await _write(conn, records)


async def _write(conn: AsyncConnection[Any], records: Sequence[CallRecord]) -> None:
    """Write `records` in the caller's transaction: the calls new to the database are
    inserted and counted, the others get their late fields."""
    latest = {r.call_sid: r for r in records}  # a call twice in a batch: its last word
    ordered = [latest[sid] for sid in sorted(latest)]
    async with conn.cursor() as cursor:
        await cursor.executemany(INSERT_NEW, [row_of(r) for r in ordered], returning=True)
        inserted: set[str] = set()
        async for result in cursor.results():  # one per row: the SID, or none when known
            inserted.update(row[0] for row in await result.fetchall())
        new = [r for r in ordered if r.call_sid in inserted]
        for table, counts in rollup(new).items():
            if counts:
                rows = [(*key, *n) for key, n in sorted(counts.items(), key=_order)]
                await cursor.executemany(rollup_sql(table, "%s"), rows)
        # every late signal in batch order, per call (a stable sort): as SQLite applies them
        late = sorted((r for r in records if r.call_sid not in inserted), key=_sid)
        if late:
            rows = [(*(getattr(r, name) for name in LATE), r.call_sid) for r in late]
            await cursor.executemany(update_sql("%s"), rows)


def _sid(record: CallRecord) -> str:
    return record.call_sid


def _order(item: tuple[tuple[Any, ...], list[float]]) -> tuple[tuple[bool, Any], ...]:
    """A rollup row's place in the lock order: its key, with None (never expected) first
    rather than a TypeError that would keep the batch from ever being written."""
    return tuple((value is not None, value) for value in item[0])


async def migrate(conn: AsyncConnection[Any]) -> int:
    """Bring the database to VERSION in one transaction, one process at a time; VERSION."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        version = row[0] if row else None
        if version is None:
            found = await (await conn.execute("SELECT to_regclass('calls')")).fetchone()
            if found and found[0] is not None:
                raise ConfigError(
                    "IVR_RECORDS: the database has a `calls` table but no schema_version:"
                    " not one ivr made; use an empty database"
                )
            for sql in schema_sql("DOUBLE PRECISION", "BIGINT"):
                await conn.execute(sql)
            await conn.execute(closures.schema_sql("DOUBLE PRECISION"))
        elif version > VERSION:
            raise ConfigError(
                f"IVR_RECORDS: the records database is at schema version {version}, newer"
                f" than this ivr knows ({VERSION}): run a newer ivr"
            )
        else:
            for step in MIGRATIONS[version - 1 :]:
                await step(conn)
        if version != VERSION:
            await conn.execute("DELETE FROM schema_version")
            await conn.execute("INSERT INTO schema_version VALUES (%s)", (VERSION,))
            log.info("call records at schema version %d", VERSION)
    return VERSION
