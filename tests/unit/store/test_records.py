"""Call records: what a record holds, the record stores (SQLite and PostgreSQL: one suite),
and the background writer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import psycopg
import pytest

from ivr.engine.session import Session
from ivr.keys import Keys
from ivr.store import RecordStore, open_records
from ivr.store import records as records_module
from ivr.store.memory import MemorySessions
from ivr.store.records import CallRecord, RecordWriter, facts, record_of
from ivr.store.sqlite import SqliteSessions
from ivr.store.sqlite_records import MIGRATIONS, SqliteRecords

CALLER = "+15550123"
ACCOUNT = "12345678"
PIN = "4321"


def ended(call_id: str = "CA1", outcome: str = "contained", **changes: object) -> Session:
    session = Session(
        call_id,
        "telebanking",
        "v3",
        node="bye",
        vars={"caller": CALLER, "account": ACCOUNT, "pin": PIN},
        path=["welcome", "main", "ask_account", "main", "bye"],
        tasks=["balance_inquiry"],
        inputs={"main:dtmf:match": 2, "main:no_input": 1},
        reason="global:agent",
        reason_at="main",
        outcome=outcome,
        queue="support" if outcome == "transferred" else None,
        started_at=1700000000.0,
        call_status="completed",
        ended_at=1700000042.5,
        sensitive=["account", "pin"],
        transcript=[[0.0, "main", "prompt"], [3.5, "ask_account", "dtmf", "match", "****"]],
    )
    session.__dict__.update(changes)
    return session


KEYS = Keys.for_tests()


def readable(record: CallRecord) -> CallRecord:
    """`record` with its encrypted fields opened (encryption is randomised: compare these)."""
    caller, transcript = KEYS.open(record.caller), KEYS.open(record.transcript)
    return dataclasses.replace(record, caller=caller, transcript=transcript)


# -- record_of -------------------------------------------------------------------------------


def test_record_of_an_ended_call() -> None:
    record = record_of(ended("CA1", "transferred"), KEYS)
    assert record == CallRecord(
        call_sid="CA1",
        flow_id="telebanking",
        flow_version="v3",
        started_at=1700000000.0,
        ended_at=1700000042.5,
        duration=42.5,
        outcome="transferred",
        customer=KEYS.customer_id(CALLER),
        caller=record.caller,
        reason="global",
        reason_detail="agent",
        transfer_from="main",
        queue="support",
        tasks=("balance_inquiry",),
        path=("welcome", "main", "ask_account", "main", "bye"),
        inputs={"main:dtmf:match": 2, "main:no_input": 1},
        status="completed",
        transcript=record.transcript,
    )
    assert (record.channel, record.direction, record.experiment) == ("voice", "inbound", "")
    assert (record.last_node, record.resolved, record.after_task) == ("bye", False, False)


def test_the_caller_is_a_keyed_id_and_an_encrypted_number() -> None:
    record = record_of(ended(), KEYS)
    assert record.customer == KEYS.customer_id(CALLER) == record_of(ended(), KEYS).customer
    assert record_of(ended(), Keys.for_tests()).customer != record.customer  # another key
    assert CALLER not in repr(record)
    assert KEYS.open(record.caller) == CALLER
    assert Keys.for_tests().open(record.caller) is None  # without the key: nothing
    assert json.loads(KEYS.open(record.transcript) or "") == ended().transcript


def test_no_caller_stays_empty() -> None:
    session = ended()
    del session.vars["caller"]
    assert (record_of(session, KEYS).customer, record_of(session, KEYS).caller) == (None, None)


def _int_error(text: str) -> str:
    try:
        int(text, 2)
    except ValueError as e:  # how the engine words a template failing at a node
        return f"ValueError at lookup: {e}"
    raise AssertionError("not an error")


@pytest.mark.parametrize(
    "error",
    [
        None,
        _int_error(ACCOUNT),
        f"backend call at lookup failed: InvalidURL https://bank.example/accounts/{ACCOUNT}",
        f"UndefinedError at check_pin: 'dict object' has no attribute '{PIN}'",
    ],
)
def test_sensitive_values_never_in_the_record(error: str | None) -> None:
    record = record_of(ended(outcome="failed", error=error), KEYS)
    text = repr(record) + (KEYS.open(record.transcript) or "")
    assert ACCOUNT not in text and PIN not in text
    assert record.error == (error and error.replace(ACCOUNT, "****").replace(PIN, "****"))


def test_reason_only_for_transferred_calls() -> None:
    for outcome in ("contained", "abandoned", "failed"):
        record = record_of(ended("CA1", outcome), KEYS)
        assert (record.reason, record.reason_detail, record.transfer_from) == (None, None, None)


def test_resolved_and_abandoned_after_a_task() -> None:
    assert record_of(ended(outcome="contained"), KEYS).resolved
    assert not record_of(ended(outcome="contained", tasks=[]), KEYS).resolved
    left = record_of(ended(outcome="abandoned"), KEYS)
    assert left.resolved and left.after_task  # heard the balance, then hung up
    assert not record_of(ended(outcome="abandoned", tasks=[]), KEYS).after_task


def test_a_session_without_outcome_is_recorded_failed() -> None:
    record = record_of(ended(outcome=None, ended_at=None), KEYS)  # type: ignore[arg-type]
    assert (record.outcome, record.ended_at, record.duration) == ("failed", 1700000000.0, 0.0)


def test_the_facts_of_a_call() -> None:
    record = record_of(ended("CA1", "transferred"), KEYS)
    found = {(table, key[7:]): counts for table, key, counts in facts(record)}
    assert found == {
        ("hour_calls", ("transferred", "global", "support", 0, 0)): (1, 42.5),
        ("hour_durations", ("transferred", 45)): (1,),
        ("hour_tasks", ("balance_inquiry",)): (1,),
        # reached once each; left to the agent from main, where the zero-out was pressed
        ("hour_nodes", ("welcome",)): (1, 0, 0),
        ("hour_nodes", ("main",)): (1, 1, 0),
        ("hour_nodes", ("ask_account",)): (1, 0, 0),
        ("hour_nodes", ("bye",)): (1, 0, 0),
        ("hour_inputs", ("main", "dtmf", "match")): (2,),
        ("hour_inputs", ("main", "", "no_input")): (1,),
        ("hour_edges", ("welcome", "main")): (1,),
        ("hour_edges", ("main", "ask_account")): (1,),
        ("hour_edges", ("ask_account", "main")): (1,),
        ("hour_edges", ("main", "bye")): (1,),
    }
    hour = 1700000042.5 // 3600 * 3600
    assert {key[:7] for _, key, _ in facts(record)} == {
        (hour, "telebanking", "v3", "", "", "voice", "inbound")
    }
    abandoned = record_of(ended("CA2", "abandoned"), KEYS)
    nodes = {key[7]: counts for table, key, counts in facts(abandoned) if table == "hour_nodes"}
    assert nodes["bye"] == (1, 0, 1)  # hung up there


# -- the record stores ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'calls.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def records(records_url: str) -> AsyncIterator[RecordStore]:
    store = open_records(records_url)
    yield store
    await store.close()


def counted(url: str, table: str = "hour_calls", column: str = "calls") -> int:
    """The sum of a rollup column, read from the database behind `url`."""
    sql = f"SELECT COALESCE(SUM({column}), 0) FROM {table}"
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as db:
            return int(db.execute(sql).fetchone()[0])
    with psycopg.connect(url) as pg:
        row = pg.execute(sql).fetchone()
        return int(row[0]) if row else 0


async def test_records_round_trip(records: RecordStore, records_url: str) -> None:
    first = record_of(ended("CA1"), KEYS)
    second = record_of(ended("CA2", "transferred", ended_at=1700000050.0), KEYS)
    await records.add([second])
    await records.add([first])
    assert await records.all() == [first, second]  # in order of ending
    assert counted(records_url) == 2
    assert counted(records_url, "hour_nodes", "reached") == 8


async def test_records_are_idempotent_and_late_signals_count_once(
    records: RecordStore, records_url: str
) -> None:
    record = record_of(ended("CA1", "transferred", call_status=None), KEYS)
    await records.add([record, record])
    await records.add([record])
    assert await records.all() == [record]
    later = dataclasses.replace(record, transfer_result="no-answer")
    await records.add([later])
    final = dataclasses.replace(later, status="completed")
    await records.add([final])
    assert await records.all() == [final]  # what the late signals told, kept
    assert counted(records_url) == 1  # and counted once
    assert counted(records_url, "hour_tasks") == 1


async def test_a_batch_keeps_every_late_signal_and_a_new_calls_last_word(
    records: RecordStore, records_url: str
) -> None:
    record = record_of(ended("CA1", "transferred", call_status=None), KEYS)
    fresh = record_of(ended("CA2", call_status=None), KEYS)
    told = dataclasses.replace(fresh, status="completed")
    await records.add([record, fresh, told])  # CA2 twice in its first batch: the last
    dialled = dataclasses.replace(record, transfer_result="no-answer")
    hung_up = dataclasses.replace(record, status="completed")  # knows no dial result
    await records.add([dialled, hung_up])
    assert await records.all() == [dataclasses.replace(dialled, status="completed"), told]
    assert counted(records_url) == 2


async def test_records_survive_reopen(records_url: str) -> None:
    first = open_records(records_url)
    await first.add([record_of(ended(), KEYS)])
    await first.close()
    second = open_records(records_url)
    try:
        assert [readable(r) for r in await second.all()] == [readable(record_of(ended(), KEYS))]
    finally:
        await second.close()


async def test_a_database_of_the_first_version_is_migrated_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # as the first version made it
        db.execute(
            "CREATE TABLE calls (call_sid TEXT PRIMARY KEY, flow_id TEXT NOT NULL,"
            " flow_version TEXT NOT NULL, caller TEXT, started_at REAL, ended_at REAL,"
            " duration REAL, outcome TEXT NOT NULL, queue TEXT, reason TEXT, tasks TEXT,"
            " path TEXT, inputs TEXT, status TEXT, error TEXT)"
        )
        db.execute(
            "INSERT INTO calls VALUES ('CA0', 'telebanking', 'v1', 'sha256:0123', 1.0, 2.0,"
            " 1.0, 'transferred', 'support', 'option:agent', '[]', '[\"welcome\"]', '{}',"
            " 'completed', NULL)"
        )
    records = SqliteRecords(path)
    try:
        new = record_of(ended("CA1"), KEYS)
        await records.add([new])
        old, again = await records.all()
        assert (old.call_sid, old.path, old.reason, old.reason_detail) == (
            "CA0",
            ("welcome",),
            "option",
            "agent",
        )
        assert old.customer is None  # the old unkeyed hash is not kept
        assert again == new
        assert counted(f"sqlite://{path}") == 2
    finally:
        await records.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]


# -- RecordWriter --------------------------------------------------------------------------------


class DownRecords:
    """A records store whose database is unreachable until `up` is set."""

    def __init__(self, into: RecordStore | None = None) -> None:
        self.tried: list[str] = []
        self.into, self.up = into, False

    async def add(self, records: Sequence[CallRecord]) -> None:
        self.tried += [r.call_sid for r in records]
        if not self.up or self.into is None:
            raise ConnectionError("records database is down")
        await self.into.add(records)

    async def all(self) -> list[CallRecord]:
        return []

    async def close(self) -> None:
        pass


async def test_writer_drains_the_outbox_a_crash_left(tmp_path: Path, records: RecordStore) -> None:
    before = SqliteSessions(tmp_path / "sessions.db")
    await before.save(ended("CA1"), "<Response/>")
    await before.close()  # the process dies before the record is written

    sessions = SqliteSessions(tmp_path / "sessions.db")
    try:
        writer = RecordWriter(sessions, records, KEYS)
        await writer.start()
        await writer.stop()
        assert [readable(r) for r in await records.all()] == [
            readable(record_of(ended("CA1"), KEYS))
        ]
        assert await sessions.unrecorded() == []
    finally:
        await sessions.close()


async def test_writer_writes_submitted_calls(records: RecordStore) -> None:
    sessions = MemorySessions()
    writer = RecordWriter(sessions, records, KEYS)
    await writer.start()
    session = ended("CA7", "transferred")
    await sessions.save(session, "<Response/>")
    writer.submit(session)
    await writer.stop()
    assert [readable(r) for r in await records.all()] == [readable(record_of(session, KEYS))]
    assert await sessions.unrecorded() == []


async def test_late_signals_through_the_writer_keep_what_was_written(
    records: RecordStore,
) -> None:
    sessions = MemorySessions()
    writer = RecordWriter(sessions, records, KEYS)
    await writer.start()
    session = ended("CA8", "transferred", call_status=None)
    for late in (session, dataclasses.replace(session, transfer_result="no-answer")):
        await sessions.save(late, "<Response/>")
        writer.submit(late)
        await writer.stop()  # written, one after the other
        await writer.start()
    final = dataclasses.replace(session, transfer_result="no-answer", call_status="completed")
    writer.submit(final)
    await writer.stop()
    assert [readable(r) for r in await records.all()] == [readable(record_of(final, KEYS))]


async def test_a_failed_write_is_tried_again_while_the_server_runs(
    records: RecordStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records_module, "RETRY_FIRST", 0.05)
    sessions = MemorySessions()
    await sessions.save(ended("CA1"), "<Response/>")
    down = DownRecords(records)
    writer = RecordWriter(sessions, down, KEYS)
    with caplog.at_level(logging.ERROR, logger="ivr.records"):
        await writer.start()
        await wait_until(lambda: len(down.tried) >= 2)  # tried, and tried again
        assert await sessions.unrecorded() == [ended("CA1")]  # meanwhile kept
        down.up = True
        await wait_until(lambda: not sessions._outbox)
    await writer.stop()
    assert [r.call_sid for r in await records.all()] == ["CA1"]
    logged = [r for r in caplog.records if r.name == "ivr.records"]
    assert "1 call record(s) not written" in logged[0].getMessage()


async def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "still false"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("changes", "kept"),
    [
        ({"call_status": None}, True),  # a call: kept for its status callback
        ({"call_status": "completed"}, False),
        ({"call_status": None, "channel": "sms"}, False),  # no status callback comes by text
        ({"call_status": None, "channel": "whatsapp"}, False),
        # a call that went on by SMS and ended there (its own status came earlier)
        ({"legs": [{"channel": "voice"}, {"channel": "sms"}]}, False),
    ],
)
async def test_a_session_goes_once_its_record_is_final(
    records: RecordStore, changes: dict[str, object], kept: bool
) -> None:
    sessions = MemorySessions()
    writer = RecordWriter(sessions, records, KEYS, linger=0)
    await writer.start()
    session = ended("TX1", **changes)
    await sessions.save(session, "[]")
    writer.submit(session)
    await writer.stop()
    assert [r.call_sid for r in await records.all()] == ["TX1"]
    assert (await sessions.load("TX1") is not None) is kept
