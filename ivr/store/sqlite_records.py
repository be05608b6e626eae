"""Call records in SQLite (the default): the record rows and their hourly rollups.

Written on the loop like sessions (see WalDatabase); reports read with connections of
their own. The schema is versioned: `MIGRATIONS[n]` takes a database from version n
to n + 1, and `schema_version` says where a database is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import tzinfo
from functools import cache
from pathlib import Path
from typing import Any

from ivr.flow.hours import Closure
from ivr.store import closures
from ivr.store.history import INDEX_SQL, History, history_of, history_sql, midnight
from ivr.store.records import DIMENSIONS, ROLLUPS, CallRecord, rollup
from ivr.store.sqlite import Statements, WalDatabase

log = logging.getLogger("ivr.records")

COLUMNS = tuple(CallRecord.__dataclass_fields__)
JSON_COLUMNS = ("tasks", "path", "inputs", "survey", "legs")
LATE = ("status", "transfer_result")  # what a signal after the end may still tell


def schema_sql(real: str = "REAL", integer: str = "INTEGER") -> list[str]:
    """The tables of records and rollups, in SQL both SQLite and PostgreSQL read."""
    text = "TEXT NOT NULL DEFAULT ''"
    calls = f"""CREATE TABLE calls (
        call_sid TEXT PRIMARY KEY, flow_id TEXT NOT NULL, flow_version TEXT NOT NULL,
        started_at {real} NOT NULL, ended_at {real} NOT NULL, duration {real} NOT NULL,
        outcome TEXT NOT NULL, channel TEXT NOT NULL, direction TEXT NOT NULL,
        experiment {text}, variant {text}, customer TEXT, caller TEXT,
        reason TEXT, reason_detail TEXT, transfer_from TEXT, queue TEXT,
        tasks TEXT NOT NULL, path TEXT NOT NULL, inputs TEXT NOT NULL,
        status TEXT, transfer_result TEXT, error TEXT, transcript TEXT,
        last_node TEXT, hour {integer} NOT NULL, {CALLS_V2}, {CALLS_V4})"""
    out = [
        calls,
        "CREATE INDEX calls_ended ON calls (ended_at)",
        "CREATE INDEX calls_flow_ended ON calls (flow_id, ended_at)",
        INDEX_SQL,
    ]
    for table, (keys, counts) in ROLLUPS.items():
        key_columns = ("hour", *DIMENSIONS, *keys)
        columns = [f"hour {integer} NOT NULL"]
        columns += [
            f"{name} {integer if name in INTEGER_KEYS else text}" for name in key_columns[1:]
        ]
        columns += [f"{name} {real if name == 'seconds' else integer} NOT NULL" for name in counts]
        columns.append(f"PRIMARY KEY ({', '.join(key_columns)})")
        out.append(f"CREATE TABLE {table} ({', '.join(columns)})")
    return out


INTEGER_KEYS = ("resolved", "after_task", "bucket")
# the columns version 2 added: callback requests, survey answers, the recording
CALLS_V2 = "callback TEXT, survey TEXT NOT NULL DEFAULT '{}', recording TEXT"


# the column version 4 added: the legs of a conversation that went on by text
CALLS_V4 = "legs TEXT NOT NULL DEFAULT '[]'"


def v4_sql(integer: str = "INTEGER") -> list[str]:
    """From version 3 to 4, in SQL both databases read: the legs column and rollup."""
    legs = [sql for sql in schema_sql(integer=integer) if "TABLE hour_legs" in sql]
    return [f"ALTER TABLE calls ADD COLUMN {CALLS_V4}", *legs]


def v2_sql(integer: str = "INTEGER") -> list[str]:
    """From version 1 to 2, in SQL both databases read: the new columns, the survey rollup."""
    added = [f"ALTER TABLE calls ADD COLUMN {column}" for column in CALLS_V2.split(", ")]
    surveys = [sql for sql in schema_sql(integer=integer) if "TABLE hour_surveys" in sql]
    return [*added, *surveys]


@cache
def insert_sql(placeholder: str = "?") -> str:
    marks = ", ".join([placeholder] * (len(COLUMNS) + 2))
    return f"INSERT INTO calls ({', '.join(COLUMNS)}, last_node, hour) VALUES ({marks})"


@cache
def update_sql(placeholder: str = "?") -> str:
    late = ", ".join(f"{name} = COALESCE({placeholder}, {name})" for name in LATE)
    return f"UPDATE calls SET {late} WHERE call_sid = {placeholder}"


@cache
def rollup_sql(table: str, placeholder: str = "?") -> str:
    keys, counts = ROLLUPS[table]
    key_columns = ("hour", *DIMENSIONS, *keys)
    names = (*key_columns, *counts)
    marks = ", ".join([placeholder] * len(names))
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counts)
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key_columns)}) DO UPDATE SET {added}"
    )


def row_of(record: CallRecord) -> tuple[Any, ...]:
    values = [getattr(record, name) for name in COLUMNS]
    for i, name in enumerate(COLUMNS):
        if name in JSON_COLUMNS:
            values[i] = json.dumps(values[i])
    return (*values, record.last_node, record.hour)


def record_from(row: Sequence[Any]) -> CallRecord:
    data = dict(zip(COLUMNS, row, strict=False))
    for key in JSON_COLUMNS:
        value = json.loads(data[key])
        data[key] = tuple(value) if isinstance(value, list) else value
    return CallRecord(**data)


def statements(
    records: Sequence[CallRecord], known: set[str], placeholder: str = "?"
) -> Statements:
    """What writing `records` takes, given the call SIDs of them already written: new calls
    are inserted and counted in the rollups, known ones get their late fields."""
    new = list({r.call_sid: r for r in records if r.call_sid not in known}.values())
    late = [(*(getattr(r, n) for n in LATE), r.call_sid) for r in records if r.call_sid in known]
    out: list[tuple[str, Sequence[Sequence[Any]]]] = []
    if new:
        out.append((insert_sql(placeholder), [row_of(r) for r in new]))
        for table, rows in rollup(new).items():
            if rows:
                out.append((rollup_sql(table, placeholder), [(*k, *v) for k, v in rows.items()]))
    if late:
        out.append((update_sql(placeholder), late))
    return out


def _migrate_v0(db: sqlite3.Connection) -> None:
    """Version 0: a `calls` table with no rollups (ivr before them). Its rows move into
    the new table with what they knew, and are counted in the rollups."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(calls)")]
    db.execute("ALTER TABLE calls RENAME TO calls_v0")
    for sql in schema_sql():
        db.execute(sql)
    old = [dict(zip(columns, row, strict=True)) for row in db.execute("SELECT * FROM calls_v0")]
    records = [_record_v0(row) for row in old]
    for sql, rows in statements(records, set()):
        db.executemany(sql, rows)
    db.execute("DROP TABLE calls_v0")


def _record_v0(row: dict[str, Any]) -> CallRecord:
    kind, _, detail = (row.get("reason") or "").partition(":")
    return CallRecord(
        call_sid=row["call_sid"],
        flow_id=row["flow_id"],
        flow_version=row["flow_version"],
        started_at=row["started_at"] or 0.0,
        ended_at=row["ended_at"] or 0.0,
        duration=row["duration"] or 0.0,
        outcome=row["outcome"],
        customer=None,  # an unkeyed hash, which identified callers all too well: dropped
        reason=kind or None,
        reason_detail=detail or None,
        queue=row.get("queue"),
        tasks=tuple(json.loads(row.get("tasks") or "[]")),
        path=tuple(json.loads(row.get("path") or "[]")),
        status=row.get("status"),
        transfer_result=row.get("transfer_result"),
        error=row.get("error"),
    )


def _migrate_v1(db: sqlite3.Connection) -> None:
    if "survey" in [row[1] for row in db.execute("PRAGMA table_info(calls)")]:
        return  # made at version 2 by _migrate_v0
    for sql in v2_sql():
        db.execute(sql)


def _migrate_v3(db: sqlite3.Connection) -> None:
    if "legs" in [row[1] for row in db.execute("PRAGMA table_info(calls)")]:
        return  # made at version 4 by _migrate_v0
    for sql in v4_sql():
        db.execute(sql)


def _add_customer_index(db: sqlite3.Connection) -> None:
    """Customers' histories are read by an index (ivr.store.history)."""
    db.execute(INDEX_SQL)


def _create(db: sqlite3.Connection) -> None:
    for sql in schema_sql():
        db.execute(sql)
    db.execute(closures.schema_sql())


def migrate(db: sqlite3.Connection) -> int:
    """Bring the database to the current version in one transaction; the version now."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    version = row[0] if row else (0 if "calls" in tables else None)
    steps: list[Callable[[sqlite3.Connection], None]] = (
        [_create] if version is None else MIGRATIONS[version:]
    )
    if steps:
        db.execute("BEGIN")
        for step in steps:
            step(db)
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
        db.execute("COMMIT")
        log.info("call records at schema version %d", len(MIGRATIONS))
    return len(MIGRATIONS)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_v0,
    _migrate_v1,
    closures.add_table_sqlite,
    _migrate_v3,
    _add_customer_index,
]


class SqliteRecords:
    """Call records in SQLite, written on the loop like sessions (see WalDatabase)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = WalDatabase(path, "")
        migrate(self._db.db)

    async def add(self, records: Sequence[CallRecord]) -> None:
        sids = list({r.call_sid for r in records})
        marks = ", ".join("?" * len(sids))
        found = self._db.execute(
            f"SELECT call_sid FROM calls WHERE call_sid IN ({marks})", tuple(sids)
        )
        await self._db.write_all(statements(records, {r[0] for r in found}))

    async def all(self) -> list[CallRecord]:
        rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM calls ORDER BY ended_at")
        return [record_from(row) for row in rows]

    async def purge(self, before: float) -> int:
        return await self._erase("ended_at < ?", before)

    async def forget(self, customer: str) -> int:
        return await self._erase("customer = ?", customer)

    async def history(self, customer: str, now: float, tz: tzinfo) -> History:
        return history_of(self._db.execute(history_sql(), (customer, midnight(now, tz), customer)))

    async def _erase(self, where: str, value: Any) -> int:
        """Delete rows, their bytes overwritten (secure_delete) and the WAL that held them
        copied back and truncated: a deleted record is not left in the file's free pages."""
        (count,) = self._db.execute(f"SELECT count(*) FROM calls WHERE {where}", (value,))[0]
        if count:
            self._db.execute("PRAGMA secure_delete=ON")
            try:
                await self._db.write(f"DELETE FROM calls WHERE {where}", (value,))
            finally:
                self._db.execute("PRAGMA secure_delete=OFF")
            await asyncio.to_thread(self._truncate_wal)
        return int(count)

    async def closures(self) -> list[Closure]:
        return [closures.closure_from(row) for row in self._db.execute(closures.select_sql())]

    async def close_hours(self, closure: Closure, now: float) -> None:
        statements = [(closures.expired_sql(), [(now,)])]
        statements.append((closures.upsert_sql(), [closures.row_of(closure)]))
        await self._db.write_all(statements)

    async def open_hours(self, hours: str, flow: str | None = None) -> int:
        args = (hours,) if flow is None else (hours, flow)
        sql = closures.delete_sql(flow).replace("DELETE", "SELECT count(*)", 1)
        (count,) = self._db.execute(sql, args)[0]
        if count:
            await self._db.write(closures.delete_sql(flow), args)
        return int(count)

    def _truncate_wal(self) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        self._db.close()
