"""PostgreSQL call records, where SQLite has no counterpart: several processes writing the
same calls at once, lost deadlocks, migrations at a shared start, SQLite's schema.
The behaviour both stores share is tested on both in test_records.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ivr.errors import ConfigError
from ivr.store import open_records
from ivr.store.postgres_records import VERSION, PostgresRecords
from ivr.store.records import HOUR, ROLLUPS, CallRecord, facts, rollup
from ivr.store.sqlite_records import SqliteRecords, rollup_sql

OUTCOMES = ("contained", "transferred", "abandoned", "failed")
PATHS = (
    ("welcome", "main", "ask_account", "lookup", "tell"),
    ("welcome", "main", "agent"),
    ("welcome", "main", "main", "block_card", "bye"),
)


def call(n: int) -> CallRecord:
    """A made-up ended call: outcomes, paths and hours vary with `n`; durations are halves,
    so their sums are exact whatever order they are added in."""
    outcome, path = OUTCOMES[n % 4], PATHS[n % 3]
    ended = 1700000000.0 + (n % 3) * HOUR + n
    return CallRecord(
        call_sid=f"CA{n:04}",
        flow_id="telebanking",
        flow_version=f"v{n % 2}",
        started_at=ended - n / 2,
        ended_at=ended,
        duration=n / 2,
        outcome=outcome,
        variant="voice" if n % 5 == 0 else "",
        reason="option" if outcome == "transferred" else None,
        transfer_from="main" if outcome == "transferred" else None,
        queue="support" if outcome == "transferred" else None,
        tasks=("balance_inquiry",) if n % 2 else (),
        path=path,
        inputs={"main:dtmf:match": 1 + n % 2, "main:no_input": n % 3},
    )


def rollup_rows(url: str) -> dict[str, dict[tuple[Any, ...], tuple[float, ...]]]:
    """Every rollup table's rows as written: key -> counts."""
    out: dict[str, dict[tuple[Any, ...], tuple[float, ...]]] = {}
    with psycopg.connect(url) as db:
        for table, (_, counts) in ROLLUPS.items():
            rows = db.execute(f"SELECT * FROM {table}").fetchall()
            out[table] = {tuple(r[: -len(counts)]): tuple(r[-len(counts) :]) for r in rows}
    return out


def expected_rows(records: list[CallRecord]) -> dict[str, dict[tuple[Any, ...], tuple[float, ...]]]:
    return {
        table: {key: tuple(counts) for key, counts in rows.items()}
        for table, rows in rollup(records).items()
    }


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresRecords]:
    opened = PostgresRecords(postgres_url)
    yield opened
    await opened.close()


# -- several processes at once ---------------------------------------------------------------


async def test_writers_racing_on_the_same_calls_count_each_once(postgres_url: str) -> None:
    records = [call(n) for n in range(150)]
    # three processes' stores, each its own connection; their batches overlap, in orders
    # of their own, as when Twilio retries status callbacks to other processes
    stores = [PostgresRecords(postgres_url) for _ in range(3)]
    shuffled = random.Random(7)
    plans = []
    for first in (0, 40, 80):
        batches = [records[i : i + 12] for i in range(first, first + 70, 7)]
        shuffled.shuffle(batches)
        plans.append(batches)

    async def write(store: PostgresRecords, batches: list[list[CallRecord]]) -> None:
        for batch in batches:
            await store.add(batch)

    try:
        await asyncio.gather(*(write(s, p) for s, p in zip(stores, plans, strict=True)))
        written = await stores[0].all()
    finally:
        for opened in stores:
            await opened.close()
    sids = sorted({r.call_sid for plan in plans for batch in plan for r in batch})
    assert [r.call_sid for r in sorted(written, key=lambda r: r.call_sid)] == sids
    assert rollup_rows(postgres_url) == expected_rows([r for r in records if r.call_sid in sids])


async def test_a_transaction_that_loses_a_deadlock_is_run_again(
    store: PostgresRecords, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    record = call(1)
    await store.all()  # connected, tables made
    rows = {table: (*key, *counts) for table, key, counts in facts(record)}

    async def upsert(conn: psycopg.AsyncConnection[Any], table: str) -> None:
        await conn.execute(rollup_sql(table, "%s"), rows[table])

    connect = psycopg.AsyncConnection.connect
    async with (
        await connect(postgres_url, autocommit=True) as other,
        await connect(postgres_url, autocommit=True) as watch,
    ):
        await other.execute("SET deadlock_timeout = '10s'")  # the store's side finds it
        with caplog.at_level(logging.WARNING, logger="ivr.records"):
            async with other.transaction():
                await upsert(other, "hour_durations")  # the store's second rollup row
                adding = asyncio.create_task(store.add([record]))
                await _until_waiting_for_a_lock(watch)  # it holds its hour_calls row
                await upsert(other, "hour_calls")  # a cycle: the store's transaction is ended
            await adding  # and run again once `other` commits
    assert "DeadlockDetected; trying again (1)" in caplog.text
    assert await store.all() == [record]
    counted = rollup_rows(postgres_url)
    assert counted["hour_calls"] == {rows["hour_calls"][:-2]: (2, 2 * record.duration)}
    assert counted["hour_durations"] == {rows["hour_durations"][:-1]: (2,)}


async def _until_waiting_for_a_lock(watch: psycopg.AsyncConnection[Any]) -> None:
    sql = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'ivr' AND wait_event_type = 'Lock'"
    )
    for _ in range(1000):
        row = await (await watch.execute(sql)).fetchone()
        if row and row[0]:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the store never waited for the row lock")


async def test_a_connection_lost_while_idle_is_made_again(
    store: PostgresRecords, postgres_url: str
) -> None:
    await store.add([call(1)])
    with psycopg.connect(postgres_url, autocommit=True) as db:  # as a server restart would
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ivr'"
        )
    await store.add([call(2)])  # no error: connected again
    assert [r.call_sid for r in await store.all()] == ["CA0001", "CA0002"]


# -- the schema and its migrations -----------------------------------------------------------


async def test_the_schema_is_sqlites(postgres_url: str, tmp_path: Path) -> None:
    pg, lite = open_records(postgres_url.replace("postgresql:", "postgres:")), None
    assert isinstance(pg, PostgresRecords)
    try:
        await pg.all()
        lite = SqliteRecords(tmp_path / "calls.db")
    finally:
        await pg.close()
        if lite is not None:
            await lite.close()
    assert _pg_schema(postgres_url) == _sqlite_schema(tmp_path / "calls.db")


KINDS = {"REAL": "real", "double precision": "real", "TEXT": "text", "text": "text"}
KINDS |= {"INTEGER": "integer", "bigint": "integer", "integer": "integer"}


def _pg_schema(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as db:
        columns = db.execute(
            "SELECT table_name, column_name, data_type, is_nullable = 'NO'"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
        keys = db.execute(
            "SELECT c.table_name, k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k"
            " USING (constraint_schema, constraint_name, table_name)"
            " WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = 'public'"
            " ORDER BY c.table_name, k.ordinal_position"
        ).fetchall()
        version = db.execute("SELECT version FROM schema_version").fetchall()
    return {
        "columns": [(t, c, KINDS[kind], not_null) for t, c, kind, not_null in columns],
        "keys": keys,
        "version": version,
    }


def _sqlite_schema(path: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns, keys = [], []
        for table in sorted(tables):
            info = db.execute(f"PRAGMA table_info({table})").fetchall()
            # SQLite's PRIMARY KEY columns may hold NULL, PostgreSQL's never: the same data
            columns += [(table, c[1], KINDS[c[2]], bool(c[3] or c[5])) for c in info]
            keys += [(table, c[1]) for c in sorted(info, key=lambda c: c[5]) if c[5]]
        version = db.execute("SELECT version FROM schema_version").fetchall()
    return {"columns": columns, "keys": keys, "version": version}


async def test_processes_starting_together_make_the_tables_once(postgres_url: str) -> None:
    stores = [PostgresRecords(postgres_url) for _ in range(4)]
    try:
        assert await asyncio.gather(*(s.all() for s in stores)) == [[]] * 4
        await asyncio.gather(*(s.add([call(n)]) for n, s in enumerate(stores)))
    finally:
        for opened in stores:
            await opened.close()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(VERSION,)]
        assert db.execute("SELECT count(*) FROM calls").fetchone() == (4,)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            [
                "CREATE TABLE schema_version (version INTEGER NOT NULL)",
                f"INSERT INTO schema_version VALUES ({VERSION + 1})",
            ],
            f"at schema version {VERSION + 1}, newer than this ivr knows ({VERSION})",
        ),
        (["CREATE TABLE calls (id TEXT)"], "has a `calls` table but no schema_version"),
    ],
    ids=["newer", "not ours"],
)
async def test_a_database_ivr_cannot_use_is_named(
    store: PostgresRecords, postgres_url: str, tables: list[str], message: str
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as db:
        for sql in tables:
            db.execute(sql)
    with pytest.raises(ConfigError, match=re.escape(message)):
        await store.add([call(1)])
    with psycopg.connect(postgres_url) as db:  # and left as it was
        assert db.execute("SELECT to_regclass('hour_calls')").fetchone() == (None,)
