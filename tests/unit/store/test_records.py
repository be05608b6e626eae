"""Call records: what a record holds, the SQLite records store, and the background writer."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.engine.session import Session
from ivr.store.memory import MemorySessions
from ivr.store.records import CallRecord, RecordWriter, SqliteRecords, record_of
from ivr.store.sqlite import SqliteSessions

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
        path=["welcome", "main", "ask_account", "bye"],
        tasks=["balance_inquiry"],
        inputs={"dtmf.match": 2, "no_input": 1},
        reason="option:agent",
        outcome=outcome,
        queue="support" if outcome == "transferred" else None,
        started_at=1700000000.0,
        call_status="completed",
        ended_at=1700000042.5,
        sensitive=["account", "pin"],
    )
    session.__dict__.update(changes)
    return session


# -- record_of -------------------------------------------------------------------------------


def test_record_of_an_ended_call() -> None:
    record = record_of(ended(), hash_caller=False)
    assert record == CallRecord(
        call_sid="CA1",
        flow_id="telebanking",
        flow_version="v3",
        caller=CALLER,
        started_at=1700000000.0,
        ended_at=1700000042.5,
        duration=42.5,
        outcome="contained",
        queue=None,
        reason=None,
        tasks=("balance_inquiry",),
        path=("welcome", "main", "ask_account", "bye"),
        inputs={"dtmf.match": 2, "no_input": 1},
        status="completed",
        error=None,
    )


def test_caller_is_hashed_by_default() -> None:
    hashed = record_of(ended()).caller
    assert hashed.startswith("sha256:") and CALLER not in hashed
    assert record_of(ended()).caller == hashed  # the same caller can still be counted
    assert record_of(ended(), salt="pepper").caller not in (hashed, CALLER)
    assert record_of(ended(), hash_caller=False).caller == CALLER


def test_no_caller_stays_empty() -> None:
    session = ended()
    del session.vars["caller"]
    assert record_of(session).caller == ""


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
    session = ended(outcome="failed", error=error)
    for record in (record_of(session), record_of(session, hash_caller=False)):
        text = repr(record)
        assert ACCOUNT not in text and PIN not in text
        assert record.error == (error and error.replace(ACCOUNT, "****").replace(PIN, "****"))


def test_reason_only_for_transferred_calls() -> None:
    assert record_of(ended("CA1", "transferred")).reason == "option:agent"
    assert record_of(ended("CA1", "transferred")).queue == "support"
    for outcome in ("contained", "abandoned", "failed"):
        assert record_of(ended("CA1", outcome)).reason is None


def test_a_session_without_outcome_is_recorded_failed() -> None:
    record = record_of(ended(outcome=None, ended_at=None))  # type: ignore[arg-type]
    assert (record.outcome, record.ended_at, record.duration) == ("failed", 1700000000.0, 0.0)


# -- SqliteRecords -------------------------------------------------------------------------------


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[SqliteRecords]:
    store = SqliteRecords(tmp_path / "calls.db")
    yield store
    await store.close()


async def test_records_round_trip(records: SqliteRecords) -> None:
    first = record_of(ended("CA1"))
    second = record_of(ended("CA2", "transferred", ended_at=1700000050.0))
    await records.add(second)
    await records.add(first)
    assert await records.all() == [first, second]  # in order of ending


async def test_records_are_idempotent_by_call_sid(records: SqliteRecords) -> None:
    record = record_of(ended())
    await records.add(record)
    await records.add(record)
    assert await records.all() == [record]
    later = dataclasses.replace(record, status="canceled")
    await records.add(later)
    assert await records.all() == [later]


async def test_records_survive_reopen(tmp_path: Path) -> None:
    first = SqliteRecords(tmp_path / "calls.db")
    await first.add(record_of(ended()))
    await first.close()
    second = SqliteRecords(tmp_path / "calls.db")
    try:
        assert await second.all() == [record_of(ended())]
    finally:
        await second.close()


async def test_a_database_of_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    with sqlite3.connect(path) as db:  # the table as the first version made it
        db.execute(
            "CREATE TABLE calls (call_sid TEXT PRIMARY KEY, flow_id TEXT NOT NULL,"
            " flow_version TEXT NOT NULL, caller TEXT, started_at REAL, ended_at REAL,"
            " duration REAL, outcome TEXT NOT NULL, queue TEXT, reason TEXT, tasks TEXT,"
            " path TEXT, inputs TEXT, status TEXT, error TEXT)"
        )
        db.execute(
            "INSERT INTO calls VALUES ('CA0', 'telebanking', 'v1', '', 1.0, 2.0, 1.0,"
            " 'contained', NULL, NULL, '[]', '[\"welcome\"]', '{}', 'completed', NULL)"
        )
    db.close()
    records = SqliteRecords(path)
    try:
        transferred = record_of(ended("CA1", "transferred", transfer_result="no-answer"))
        await records.add(transferred)
        old, new = await records.all()
        assert (old.call_sid, old.path, old.transfer_result) == ("CA0", ("welcome",), None)
        assert new == transferred and new.transfer_result == "no-answer"
    finally:
        await records.close()


# -- RecordWriter --------------------------------------------------------------------------------


class DownRecords:
    """A records store whose database is unreachable."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    async def add(self, record: CallRecord) -> None:
        self.tried.append(record.call_sid)
        raise ConnectionError("records database is down")

    async def all(self) -> list[CallRecord]:
        return []

    async def close(self) -> None:
        pass


async def test_writer_drains_the_outbox_a_crash_left(
    tmp_path: Path, records: SqliteRecords
) -> None:
    before = SqliteSessions(tmp_path / "sessions.db")
    await before.save(ended("CA1"), "<Response/>")
    await before.close()  # the process dies before the record is written

    sessions = SqliteSessions(tmp_path / "sessions.db")
    try:
        writer = RecordWriter(sessions, records, hash_caller=False)
        await writer.start()
        await writer.stop()
        assert await records.all() == [record_of(ended("CA1"), hash_caller=False)]
        assert await sessions.unrecorded() == []
    finally:
        await sessions.close()


async def test_writer_writes_submitted_calls(records: SqliteRecords) -> None:
    sessions = MemorySessions()
    writer = RecordWriter(sessions, records, salt="pepper")
    await writer.start()
    session = ended("CA7", "transferred")
    await sessions.save(session, "<Response/>")
    writer.submit(session)
    await writer.stop()
    assert await records.all() == [record_of(session, salt="pepper")]
    assert await sessions.unrecorded() == []


async def test_failed_write_stays_in_outbox_and_is_logged(
    records: SqliteRecords, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = MemorySessions()
    await sessions.save(ended("CA1"), "<Response/>")
    down = DownRecords()
    writer = RecordWriter(sessions, down)
    with caplog.at_level(logging.ERROR, logger="ivr.records"):
        await writer.start()
        await writer.stop()
    assert down.tried == ["CA1"]
    assert await sessions.unrecorded() == [ended("CA1")]
    [logged] = [r for r in caplog.records if r.name == "ivr.records"]
    assert "call record not written" in logged.getMessage()
    assert getattr(logged, "call_sid", None) == "CA1" and logged.exc_info is not None

    retry = RecordWriter(sessions, records)  # the next start writes it
    await retry.start()
    await retry.stop()
    assert [r.call_sid for r in await records.all()] == ["CA1"]
    assert await sessions.unrecorded() == []
