"""The ops-state table of hours closed by ops, in both record stores: close, close again,
reopen one flow's or every flow's, ended closures dropped; and databases of the version
before the table brought up to it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from ivr.flow.hours import Closure
from ivr.store import RecordStore, closures, open_records
from ivr.store.postgres_records import MIGRATIONS as PG_MIGRATIONS
from ivr.store.postgres_records import VERSION, PostgresRecords
from ivr.store.sqlite_records import MIGRATIONS, SqliteRecords


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordStore]:
    url = (
        f"sqlite://{tmp_path / 'calls.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    opened = open_records(url)
    yield opened
    await opened.close()


async def test_close_close_again_and_reopen(store: RecordStore) -> None:
    assert await store.closures() == []
    training = Closure("support", until=2000.0, message="Training.", closed_at=100.0)
    await store.close_hours(training, now=100.0)
    await store.close_hours(Closure("support", "telebanking", None, "", 110.0), now=110.0)
    assert await store.closures() == [training, Closure("support", "telebanking", None, "", 110.0)]
    longer = Closure("support", until=3000.0, message="Training, longer.", closed_at=120.0)
    await store.close_hours(longer, now=120.0)  # the same hours again: a new end and message
    assert (await store.closures())[0] == longer
    assert await store.open_hours("support", "telebanking") == 1
    assert await store.closures() == [longer]
    assert await store.open_hours("sales") == 0
    assert await store.open_hours("support") == 1
    assert await store.closures() == []


async def test_ended_closures_are_dropped_when_hours_are_closed(store: RecordStore) -> None:
    await store.close_hours(Closure("support", until=150.0, closed_at=100.0), now=100.0)
    await store.close_hours(Closure("sales", until=None, closed_at=100.0), now=100.0)
    await store.close_hours(Closure("lunch", until=500.0, closed_at=200.0), now=200.0)
    assert [c.hours for c in await store.closures()] == ["lunch", "sales"]


async def test_a_sqlite_database_of_the_version_before_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    SqliteRecords(path)._db.close()  # made at the current version
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # back to the version before
        db.execute("DROP TABLE hours_closures")
        before = MIGRATIONS.index(closures.add_table_sqlite)  # the version before the table
        db.execute("UPDATE schema_version SET version = ?", (before,))
    store = SqliteRecords(path)
    try:
        await store.close_hours(Closure("support", closed_at=1.0), now=1.0)
        assert await store.closures() == [Closure("support", closed_at=1.0)]
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]


async def test_a_postgresql_database_of_the_version_before_gets_the_table(
    postgres_url: str,
) -> None:
    first = PostgresRecords(postgres_url)
    await first.all()
    await first.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:  # back to the version before
        db.execute("DROP TABLE hours_closures")
        before = PG_MIGRATIONS.index(closures.add_table_postgres) + 1
        db.execute("UPDATE schema_version SET version = %s", (before,))
    store = PostgresRecords(postgres_url)
    try:
        await store.close_hours(Closure("support", closed_at=1.0), now=1.0)
        assert await store.closures() == [Closure("support", closed_at=1.0)]
    finally:
        await store.close()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(VERSION,)]
