"""A customer's history in both record stores (SQLite and a real PostgreSQL): the latest
task, outcome, queue and channel across channels, today's conversations counted from local
midnight, by an index; a failing store gives an empty history, never an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ivr.keys import Keys
from ivr.store import RecordStore, open_records
from ivr.store.history import EMPTY, History, lookup, midnight
from ivr.store.postgres_records import VERSION, PostgresRecords
from ivr.store.records import CallRecord
from ivr.store.sqlite_records import MIGRATIONS, SqliteRecords

KEYS = Keys.for_tests()
ALICE = KEYS.customer_id("+15550001")
BOB = KEYS.customer_id("+15550002")
ALMATY = ZoneInfo("Asia/Almaty")  # UTC+5
# 2026-11-25 10:00 in Almaty (05:00 UTC): Almaty's day began at 19:00 UTC the day before
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ALMATY).timestamp()
HOUR = 3600.0


def conversation(
    sid: str,
    customer: str | None,
    started: float,
    outcome: str = "contained",
    channel: str = "voice",
    tasks: tuple[str, ...] = (),
    queue: str | None = None,
) -> CallRecord:
    return CallRecord(
        call_sid=sid,
        flow_id="telebanking",
        flow_version="v1",
        started_at=started,
        ended_at=started + 60,
        duration=60.0,
        outcome=outcome,
        channel=channel,
        customer=customer,
        tasks=tasks,
        queue=queue,
    )


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


def test_midnight_is_local_to_the_time_zone() -> None:
    assert midnight(NOW, ALMATY) == datetime(2026, 11, 25, tzinfo=ALMATY).timestamp()
    assert midnight(NOW, UTC) == datetime(2026, 11, 25, tzinfo=UTC).timestamp()


async def test_a_first_time_caller_has_an_empty_history(store: RecordStore) -> None:
    assert ALICE is not None
    await store.add([conversation("CA9", BOB, NOW - HOUR, tasks=("balance_inquiry",))])
    assert await store.history(ALICE, NOW, ALMATY) == EMPTY
    assert EMPTY.calls_today == 0 and EMPTY.as_vars()["last_task"] is None


async def test_the_latest_of_each_across_channels(store: RecordStore) -> None:
    assert ALICE is not None
    await store.add(
        [
            # yesterday in Almaty: not today, but its queue is the latest one reached
            conversation("CA1", ALICE, NOW - 20 * HOUR, "transferred", queue="cards"),
            # 03:00 in Almaty, 22:00 UTC the day before: today in Almaty only
            conversation("CA5", ALICE, NOW - 7 * HOUR, channel="chat"),
            conversation("CA2", ALICE, NOW - 2 * HOUR, tasks=("balance_inquiry", "card_blocked")),
            conversation("CA3", BOB, NOW - HOUR / 2, "transferred", queue="loans"),
            # the latest: a chat that did nothing
            conversation("CA4", ALICE, NOW - HOUR, "abandoned", "whatsapp"),
        ]
    )
    assert await store.history(ALICE, NOW, ALMATY) == History(
        last_task="card_blocked",
        last_outcome="abandoned",
        last_queue="cards",
        last_channel="whatsapp",
        last_at=NOW - HOUR + 60,
        calls_today=3,
    )
    assert (await store.history(ALICE, NOW, UTC)).calls_today == 2  # CA5 was yesterday
    bob = KEYS.customer_id("whatsapp:+15550002")  # the same customer on WhatsApp
    assert bob is not None
    assert await store.history(bob, NOW, ALMATY) == History(
        None, "transferred", "loans", "voice", NOW - HOUR / 2 + 60, 1
    )


async def test_forgetting_a_customer_empties_their_history(store: RecordStore) -> None:
    assert ALICE is not None
    await store.add([conversation("CA1", ALICE, NOW - HOUR, tasks=("card_blocked",))])
    assert (await store.history(ALICE, NOW, ALMATY)).last_task == "card_blocked"
    assert await store.forget(ALICE) == 1
    assert await store.history(ALICE, NOW, ALMATY) == EMPTY


def test_sqlite_reads_a_history_by_the_customer_index(tmp_path: Path) -> None:
    from ivr.store.history import history_sql

    SqliteRecords(tmp_path / "calls.db")._db.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "calls.db")) as db:
        plan = db.execute("EXPLAIN QUERY PLAN " + history_sql(), ("c", 0.0, "c")).fetchall()
    details = [row[-1] for row in plan]
    assert all("SCAN calls" not in d or "calls_customer" in d for d in details), details
    assert sum("calls_customer" in d for d in details) == 2, details  # the rows and the count


async def test_postgresql_reads_a_history_by_the_customer_index(postgres_url: str) -> None:
    from ivr.store.history import history_sql

    store = PostgresRecords(postgres_url)
    await store.all()  # made
    await store.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("SET enable_seqscan = off")  # a few rows: the planner would scan them
        sql = "EXPLAIN " + history_sql("%s")
        plan = "\n".join(row[0] for row in db.execute(sql, ("c", 0.0, "c")).fetchall())
    assert "calls_customer" in plan and "Seq Scan" not in plan, plan


async def test_a_sqlite_database_of_the_version_before_gets_the_index(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    SqliteRecords(path)._db.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("DROP INDEX calls_customer")
        db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) - 1,))
    await (SqliteRecords(path)).close()  # opened: brought up to date
    with contextlib.closing(sqlite3.connect(path)) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "calls_customer" in names
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]


async def test_a_postgresql_database_of_the_version_before_gets_the_index(
    postgres_url: str,
) -> None:
    first = PostgresRecords(postgres_url)
    await first.all()
    await first.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("DROP INDEX calls_customer")
        db.execute("UPDATE schema_version SET version = %s", (VERSION - 1,))
    store = PostgresRecords(postgres_url)
    try:
        assert await store.history("c_nobody", NOW, UTC) == EMPTY
    finally:
        await store.close()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT to_regclass('calls_customer')").fetchone() == ("calls_customer",)
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(VERSION,)]


class Failing:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    async def history(self, customer: str, now: float, tz: object) -> History:
        if self.error is not None:
            raise self.error
        await asyncio.sleep(0.5)  # slower than the call start waits: left to finish
        return History(last_task="late")


async def test_a_failing_store_gives_an_empty_history_and_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, "ivr.history")
    broken = Failing(ConnectionError("database is down"))
    assert await lookup(broken, "c_x", NOW, UTC) == EMPTY
    monkeypatch.setattr("ivr.store.history.TIMEOUT", 0.05)
    assert await lookup(Failing(), "c_x", NOW, UTC) == EMPTY
    warned = [r.getMessage() for r in caplog.records]
    assert any("ConnectionError" in m for m in warned), warned
    assert any("TimeoutError" in m for m in warned), warned


async def test_nobody_or_no_store_has_an_empty_history(tmp_path: Path) -> None:
    store = SqliteRecords(tmp_path / "calls.db")
    try:
        assert await lookup(store, None, NOW) == EMPTY  # a withheld number
        assert await lookup(None, "c_x", NOW) == EMPTY  # no records (rehearsals)
    finally:
        await store.close()
