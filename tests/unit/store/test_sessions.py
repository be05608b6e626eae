"""The one session store suite, run against every store: memory, SQLite and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

import ivr.store.redis as redis_store
import ivr.store.sqlite as sqlite_store
from ivr.engine.events import FetchResult
from ivr.engine.session import Session
from ivr.keys import Keys
from ivr.store import SessionStore, Stored, base, open_sessions
from ivr.store.redis import RedisSessions, SessionLocked
from ivr.store.sqlite import _PURGE, SqliteSessions, WalDatabase

KEYS = Keys.for_tests()  # stores on disk seal what they keep, as the server's do
SHORT_TTL = 0.4  # seconds a session lives in the expiry tests
PAST_TTL = 0.8  # how long those tests wait for it to be gone
DEADLOCK_BOUND = 10.0  # a lock test that waits this long has deadlocked; passing ones never do


def active(call_id: str = "CA1", **changes: object) -> Session:
    session = Session(
        call_id,
        "telebanking",
        "v3",
        node="main",
        waiting="listen",
        vars={"caller": "+15550123", "account": "12345678", "acct": {"balance": 12.5}},
        misses=1,
        path=["welcome", "main"],
        tasks=["balance_inquiry"],
        inputs={"dtmf.match": 2},
        turn=3,
        started_at=1700000000.0,
        sensitive=["account"],
    )
    session.__dict__.update(changes)
    return session


def ended(call_id: str = "CA1", outcome: str = "contained") -> Session:
    return active(call_id, outcome=outcome, waiting=None, ended_at=1700000042.0)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'sessions.db'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SessionStore]:
    opened = open_sessions(store_url, KEYS)
    yield opened
    await opened.close()


# -- load and save ----------------------------------------------------------------------------


async def test_missing_call_loads_none(store: SessionStore) -> None:
    assert await store.load("CA-never-seen") is None


async def test_round_trip(store: SessionStore) -> None:
    session = active()
    await store.save(session, "<Response><Gather/></Response>")
    assert await store.load("CA1") == Stored(active(), "<Response><Gather/></Response>")


async def test_overwrite(store: SessionStore) -> None:
    await store.save(active(), "first")
    await store.save(active(node="tell", turn=4), "second")
    assert await store.load("CA1") == Stored(active(node="tell", turn=4), "second")


async def test_calls_are_apart(store: SessionStore) -> None:
    await store.save(active("CA1"), "one")
    await store.save(active("CA2", node="tell"), "two")
    one, two = await store.load("CA1"), await store.load("CA2")
    assert one is not None and (one.session.node, one.reply) == ("main", "one")
    assert two is not None and (two.session.node, two.reply) == ("tell", "two")


async def test_links_find_a_conversation_while_they_last(store: SessionStore) -> None:
    assert await store.linked("sms:c_one") is None
    await store.link("sms:c_one", "TX1", 60)
    await store.link("sms:c_gone", "TX2", 0.001)
    await store.link("whatsapp:c_one", "TX3", 60)  # another channel, another conversation
    await asyncio.sleep(0.01)
    assert await store.linked("sms:c_one") == "TX1"
    assert await store.linked("whatsapp:c_one") == "TX3"
    assert await store.linked("sms:c_gone") is None
    await store.link("sms:c_one", "TX4", 60)  # a new conversation takes the link
    assert await store.linked("sms:c_one") == "TX4"


async def test_sqlite_links_outlive_the_process(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'sessions.db'}"
    first = open_sessions(url, KEYS)
    await first.link("sms:c_one", "TX1", 60)
    await first.close()
    again = open_sessions(url, KEYS)
    try:
        assert await again.linked("sms:c_one") == "TX1"
    finally:
        await again.close()


# -- the outbox of unrecorded calls -------------------------------------------------------------


async def test_ended_calls_wait_in_outbox_until_recorded(store: SessionStore) -> None:
    await store.save(active("CA1"), "r")
    await store.save(ended("CA2"), "r")
    await store.save(ended("CA3", "transferred"), "r")
    assert await store.unrecorded() == [ended("CA2"), ended("CA3", "transferred")]

    await store.mark_recorded("CA2")
    assert await store.unrecorded() == [ended("CA3", "transferred")]
    assert await store.load("CA2") is not None  # still there to answer Twilio's retries

    await store.mark_recorded("CA3")
    await store.mark_recorded("CA-unknown")  # harmless
    assert await store.unrecorded() == []


async def test_a_session_goes_once_its_record_is_final(store: SessionStore) -> None:
    await store.save(ended("CA1"), "r")
    await store.save(ended("CA2"), "r")
    await store.put_fetch("CA1", base.PendingFetch(1, "me", time.time() + 5, time.time()))
    await store.mark_recorded("CA1", final=True)  # its status callback came
    assert await store.load("CA1") is None
    assert await store.get_fetch("CA1") is None
    assert await store.unrecorded() == [ended("CA2")]
    assert await store.load("CA2") is not None  # not final yet: kept for Twilio's retries
    await store.mark_recorded("CA-unknown", final=True)  # harmless


async def test_outbox_holds_the_last_save(store: SessionStore) -> None:
    await store.save(active(), "r")
    assert await store.unrecorded() == []
    await store.save(ended(), "r")
    final = ended()
    final.call_status = "completed"
    await store.save(final, "r")
    assert await store.unrecorded() == [final]


# -- expiry ------------------------------------------------------------------------------------


async def test_stale_lists_calls_in_progress_last_saved_before(store: SessionStore) -> None:
    await store.save(active("CA1"), "<Response/>")
    await store.save(active("CA2"), "<Response/>")
    await store.save(ended("CA3"), "<Response/>")  # over: nothing to close
    now = time.time()
    assert sorted(await store.stale(now + 1)) == ["CA1", "CA2"]
    assert await store.stale(now - 60) == []  # saved since
    await store.save(ended("CA2"), "<Response/>")
    assert await store.stale(now + 1) == ["CA1"]


async def test_pending_fetches_are_kept_and_dropped(store: SessionStore) -> None:
    pending = base.PendingFetch(4, "host:1:ab", 1700000010.0, 1700000001.0)
    assert await store.get_fetch("CA1") is None
    await store.put_fetch("CA1", pending)
    assert await store.get_fetch("CA1") == pending
    done = dataclasses.replace(pending, result=FetchResult(200, {"a": [1]}, at=1700000002.0))
    await store.put_fetch("CA1", done)
    assert await store.get_fetch("CA1") == done
    await store.drop_fetch("CA1")
    assert await store.get_fetch("CA1") is None


async def test_active_session_expires(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "ACTIVE_TTL", SHORT_TTL)
    await store.save(active(), "r")
    assert await store.load("CA1") is not None
    await asyncio.sleep(PAST_TTL)
    assert await store.load("CA1") is None


async def test_ended_session_expires_but_stays_in_outbox(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "ENDED_TTL", SHORT_TTL)
    await store.save(ended(), "r")
    await asyncio.sleep(PAST_TTL)
    assert await store.load("CA1") is None
    # the records store may be down for longer than ENDED_TTL: the call must not be lost
    assert await store.unrecorded() == [ended()]
    await store.mark_recorded("CA1")
    assert await store.unrecorded() == []


async def test_save_renews_expiry(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "ACTIVE_TTL", SHORT_TTL)
    await store.save(active(), "r")
    monkeypatch.setattr(base, "ACTIVE_TTL", 3600.0)
    await store.save(active(turn=4), "r2")
    await asyncio.sleep(PAST_TTL)
    assert await store.load("CA1") == Stored(active(turn=4), "r2")


# -- the per-call lock -------------------------------------------------------------------------


async def bump(store: SessionStore, log: list[str], name: str, call_id: str = "CA1") -> None:
    """One webhook turn: load, think (yielding to other tasks), save."""
    async with store.lock(call_id):
        log.append(f"{name} in")
        stored = await store.load(call_id)
        assert stored is not None
        session = stored.session
        await asyncio.sleep(0.01)  # another turn of this call would run here without the lock
        session.vars["n"] = session.vars.get("n", 0) + 1
        await store.save(session, f"reply of {name}")
        log.append(f"{name} out")


def assert_no_overlap(log: list[str], names: list[str]) -> None:
    entered = [entry.split()[0] for entry in log[::2]]
    assert sorted(entered) == sorted(names)
    assert log == [f"{n} {what}" for n in entered for what in ("in", "out")]


async def test_lock_serialises_one_call(store: SessionStore) -> None:
    await store.save(active(), "r")
    log: list[str] = []
    names = ["a", "b", "c", "d"]
    await asyncio.wait_for(asyncio.gather(*(bump(store, log, n) for n in names)), DEADLOCK_BOUND)
    assert_no_overlap(log, names)
    stored = await store.load("CA1")
    assert stored is not None and stored.session.vars["n"] == len(names)  # no lost update


async def test_lock_does_not_block_another_call(store: SessionStore) -> None:
    held, other_done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with store.lock("CA1"):
            held.set()
            await other_done.wait()  # set only once CA2's lock was taken and released

    async def other() -> None:
        await held.wait()
        async with store.lock("CA2"):
            pass
        other_done.set()

    await asyncio.wait_for(asyncio.gather(holder(), other()), DEADLOCK_BOUND)


async def test_lock_is_released_on_error(store: SessionStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.lock("CA1"):
            raise RuntimeError("the turn broke")
    await asyncio.wait_for(_enter_and_leave(store, "CA1"), DEADLOCK_BOUND)


async def _enter_and_leave(store: SessionStore, call_id: str) -> None:
    async with store.lock(call_id):
        pass


# -- SQLite: durable across restarts ---------------------------------------------------------


@contextlib.asynccontextmanager
async def sqlite_sessions(path: Path) -> AsyncIterator[SqliteSessions]:
    store = SqliteSessions(path, KEYS)
    try:
        yield store
    finally:
        await store.close()


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    first = SqliteSessions(path, KEYS)
    await first.save(active("CA1"), "r1")
    await first.save(ended("CA2"), "r2")
    await first.close()

    async with sqlite_sessions(path) as second:  # what a new process would open
        assert await second.load("CA1") == Stored(active("CA1"), "r1")
        assert await second.unrecorded() == [ended("CA2")]


async def test_sqlite_commits_concurrent_saves_together(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    first = SqliteSessions(path, KEYS)
    calls = [f"CA{n}" for n in range(20)]
    await asyncio.gather(*(first.save(active(c, turn=n), f"r{n}") for n, c in enumerate(calls)))
    await first.close()

    async with sqlite_sessions(path) as second:  # from disk, not the first one's memory
        for n, call in enumerate(calls):
            assert await second.load(call) == Stored(active(call, turn=n), f"r{n}")


async def test_sqlite_purge_deletes_expired_recorded_sessions_by_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sqlite_sessions(tmp_path / "sessions.db") as store:
        monkeypatch.setattr(base, "ENDED_TTL", -1.0)  # expired as soon as saved
        await store.save(ended("CA1"), "r1")
        await store.mark_recorded("CA1")
        await store.save(ended("CA2"), "r2")  # expired, but its record is not written yet
        monkeypatch.setattr(base, "ACTIVE_TTL", 3600.0)
        await store.save(active("CA3"), "r3")
        store._purge()
        rows = store._db.execute("SELECT call_id FROM sessions ORDER BY call_id")
        assert rows == [("CA2",), ("CA3",)]
        # an hour of calls must not be read on every purge: the loop waits meanwhile
        plan = " ".join(r[-1] for r in store._db.execute("EXPLAIN QUERY PLAN " + _PURGE, (0,)))
        assert "USING INDEX sessions_expires" in plan, plan


async def test_sqlite_a_failed_save_leaves_the_last_durable_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sqlite_sessions(tmp_path / "sessions.db") as store:
        await store.save(active(turn=3), "r3")

        def broken(sql: str, args: tuple[object, ...]) -> asyncio.Future[None]:
            raise sqlite3.OperationalError("disk I/O error")

        with monkeypatch.context() as patch:
            patch.setattr(store._db, "write", broken)
            with pytest.raises(sqlite3.OperationalError):
                await store.save(active(turn=4), "r4")
        assert await store.load("CA1") == Stored(active(turn=3), "r3")
        await store.save(active(turn=5), "r5")
    async with sqlite_sessions(tmp_path / "sessions.db") as reopened:
        assert await reopened.load("CA1") == Stored(active(turn=5), "r5")


async def test_a_long_wal_holds_writes_for_one_more_checkpoint_then_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes that never pause leave every checkpoint behind, so the WAL never started over
    (550 MB in 40 s of the webhook bench). Past WAL_LIMIT frames writes wait while one
    more checkpoint copies the rest, and the next write starts the WAL over."""
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT", 10)
    held, release, sizes = threading.Event(), threading.Event(), []
    checkpoint = WalDatabase._checkpoint

    def watched(db: WalDatabase) -> int:
        if db._held:
            held.set()
            release.wait(DEADLOCK_BOUND)
        sizes.append(checkpoint(db))
        return sizes[-1]

    monkeypatch.setattr(WalDatabase, "_checkpoint", watched)
    db = WalDatabase(tmp_path / "t.db", "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT);", 0.01)
    try:
        writes: list[asyncio.Future[None]] = []
        while not held.is_set() and len(writes) < 10_000:
            writes.append(db.write("INSERT INTO t VALUES (?, ?)", (len(writes), "x" * 3000)))
            await asyncio.sleep(0.001)
        assert held.is_set(), f"no checkpoint held the writes; the WAL had {sizes[-3:]} frames"
        waiting = db.write("INSERT INTO t VALUES (?, ?)", (len(writes), "queued"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        before = max(sizes)
        release.set()
        await asyncio.wait_for(asyncio.gather(*writes, waiting), DEADLOCK_BOUND)
        assert db.execute("SELECT count(*) FROM t") == [(len(writes) + 1,)]  # none lost
        assert checkpoint(db) < before  # the WAL started over
    finally:
        release.set()
        db.close()


async def test_a_failed_checkpoint_is_logged_and_the_next_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def flaky(db: WalDatabase) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return 0

    monkeypatch.setattr(WalDatabase, "_checkpoint", flaky)
    db = WalDatabase(tmp_path / "t.db", "CREATE TABLE t (k INTEGER PRIMARY KEY);", 0.01)
    try:
        await db.write("INSERT INTO t VALUES (1)", ())
        async with asyncio.timeout(DEADLOCK_BOUND):
            while len(calls) < 3:
                await asyncio.sleep(0.01)
    finally:
        db.close()
    assert "checkpoint of" in caplog.text and "disk I/O error" in caplog.text


async def test_a_failing_write_fails_alone(tmp_path: Path) -> None:
    db = WalDatabase(tmp_path / "t.db", "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL);")
    try:
        writes = [db.write("INSERT INTO t VALUES (?, ?)", (k, v)) for k, v in ("a1", "b2", "c3")]
        writes.insert(1, db.write("INSERT INTO t VALUES (?, ?)", ("x", None)))  # NOT NULL
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert [type(r).__name__ for r in results] == [
            "NoneType",
            "IntegrityError",
            "NoneType",
            "NoneType",
        ]
        assert db.execute("SELECT k FROM t ORDER BY k") == [("a",), ("b",), ("c",)]
    finally:
        db.close()


# -- Redis: several server processes share one store --------------------------------------------


@pytest.fixture
async def two_clients(redis_url: str) -> AsyncIterator[tuple[RedisSessions, RedisSessions]]:
    a, b = RedisSessions(redis_url, KEYS), RedisSessions(redis_url, KEYS)
    yield a, b
    await a.close()
    await b.close()


async def test_redis_serves_more_turns_at_once_than_its_pool_has_connections(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the soak at 100 calls at a time: redis-py's pool (100) refused the 101st command at
    # once, "Too many connections", and callers heard the apology; now it waits for one
    monkeypatch.setattr(redis_store, "POOL", 20)
    store = RedisSessions(redis_url, KEYS)
    try:
        await asyncio.gather(*(store.save(active(f"CA{i}"), "r") for i in range(200)))
        loaded = await asyncio.gather(*(store.load(f"CA{i}") for i in range(200)))
        assert all(stored is not None for stored in loaded)
    finally:
        await store.close()


async def test_redis_clients_share_sessions(
    two_clients: tuple[RedisSessions, RedisSessions],
) -> None:
    a, b = two_clients
    await a.save(ended("CA1"), "r")
    assert await b.load("CA1") == Stored(ended("CA1"), "r")
    assert await b.unrecorded() == [ended("CA1")]
    await b.mark_recorded("CA1")
    assert await a.unrecorded() == []


async def test_redis_lock_excludes_another_client(
    two_clients: tuple[RedisSessions, RedisSessions],
) -> None:
    a, b = two_clients
    await a.save(active(), "r")
    log: list[str] = []
    turns = [bump(a, log, "a1"), bump(b, log, "b1"), bump(a, log, "a2"), bump(b, log, "b2")]
    await asyncio.wait_for(asyncio.gather(*turns), DEADLOCK_BOUND)
    assert_no_overlap(log, ["a1", "b1", "a2", "b2"])
    stored = await b.load("CA1")
    assert stored is not None and stored.session.vars["n"] == 4


async def test_redis_lock_wait_gives_up_with_a_clear_error(
    two_clients: tuple[RedisSessions, RedisSessions], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "LOCK_WAIT", 0.3)
    a, b = two_clients
    held, done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with a.lock("CA1"):
            held.set()
            await done.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    try:
        with pytest.raises(SessionLocked, match=r"call CA1: .* still held after 0.3 s"):
            async with b.lock("CA1"):
                pass
    finally:
        done.set()
        await task
    await asyncio.wait_for(_enter_and_leave(b, "CA1"), DEADLOCK_BOUND)


async def test_redis_lock_of_a_crashed_holder_expires(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "LOCK_TTL", SHORT_TTL)
    crashed = redis.asyncio.from_url(redis_url)
    # what a process that died inside a turn leaves behind: the lock key, never released
    assert await crashed.lock("ivr:lock:CA1", timeout=SHORT_TTL).acquire(blocking=False)
    await crashed.aclose()

    survivor = RedisSessions(redis_url, KEYS)
    try:
        await asyncio.wait_for(_enter_and_leave(survivor, "CA1"), DEADLOCK_BOUND)
    finally:
        await survivor.close()


# -- nothing personal in clear, in any byte the stores write ---------------------------------

NUMBER, SECRET = "+15557654321", "4929123456781234"  # long: never a timestamp by chance


def personal(call_id: str) -> Session:
    """A call with the caller's number and a sensitive answer, spoken back in its reply."""
    session = active(call_id, vars={"caller": NUMBER, "account": SECRET}, sensitive=["account"])
    return session


async def test_sqlite_keeps_nothing_personal_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SqliteSessions(path, KEYS)
    await store.save(personal("CA1"), f"<Say>You said {SECRET}</Say>")
    await store.save(dataclasses.replace(personal("CA2"), outcome="contained", ended_at=2e9), "")
    written = {f.name: f.read_bytes() for f in tmp_path.iterdir()}  # the WAL, while open
    assert "sessions.db-wal" in written
    await store.close()
    written |= {f"{f.name} (closed)": f.read_bytes() for f in tmp_path.iterdir()}
    for name, data in written.items():
        for value in (NUMBER, SECRET):
            assert value.encode() not in data, f"{value} in clear in {name}"
    async with sqlite_sessions(path) as reopened:  # yet all of it reads back
        stored = await reopened.load("CA1")
        assert stored is not None and stored.session.vars["account"] == SECRET
        assert [s.call_id for s in await reopened.unrecorded()] == ["CA2"]


async def test_redis_keeps_nothing_personal_in_clear(redis_url: str) -> None:
    store = RedisSessions(redis_url, KEYS)
    await store.save(personal("CA1"), f"<Say>You said {SECRET}</Say>")
    await store.save(dataclasses.replace(personal("CA2"), outcome="contained", ended_at=2e9), "")
    answer = FetchResult(200, {"account": SECRET}, at=1.0)
    await store.put_fetch("CA1", base.PendingFetch(1, "me", time.time() + 5, time.time(), answer))
    client = redis.asyncio.from_url(redis_url)
    try:
        await client.save()  # the dump, as a redis-server with `save` configured writes it
        directory = (await client.config_get("dir"))["dir"]
        dump = (Path(directory) / "dump.rdb").read_bytes()
        values = [await client.dump(key) or b"" for key in await client.keys("ivr:*")]
    finally:
        await client.aclose()
    for value in (NUMBER, SECRET):
        assert value.encode() not in dump and not any(value.encode() in v for v in values)
    stored, fetch = await store.load("CA1"), await store.get_fetch("CA1")
    assert stored is not None and stored.session.vars["caller"] == NUMBER
    assert fetch is not None and fetch.result == answer
    await store.close()


async def test_a_sealed_session_opens_for_its_own_call_only(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with sqlite_sessions(path) as store:
        await store.save(active("CA1"), "r1")
    with sqlite3.connect(path) as db:  # someone with the file moves CA1's session to CA2
        db.execute("UPDATE sessions SET call_id = 'CA2'")
    async with sqlite_sessions(path) as store:
        assert await store.load("CA2") is None


async def test_sessions_saved_before_sealing_still_load(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    plain = SqliteSessions(path)  # no keys: as versions before sealing saved them
    await plain.save(active("CA1"), "r1")
    await plain.close()
    async with sqlite_sessions(path) as store:
        assert await store.load("CA1") == Stored(active("CA1"), "r1")


async def test_sessions_sealed_one_field_at_a_time_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions and replies sealed apart (`s1:`), as versions before `seal_turn` kept them,
    load and list as unrecorded; what is saved now is one sealed pair (`s2:`)."""
    path = tmp_path / "sessions.db"

    def apart(self: base.Sealing, call_id: str, session: str, reply: str) -> tuple[str, str]:
        return self.seal(call_id, session), self.seal(call_id, reply)

    with monkeypatch.context() as patched:
        patched.setattr(base.Sealing, "seal_turn", apart)
        async with sqlite_sessions(path) as store:
            await store.save(active("CA1"), "r1")
            ended = dataclasses.replace(active("CA2"), outcome="contained", ended_at=2e9)
            await store.save(ended, "r2")
    with sqlite3.connect(path) as db:
        kept = dict(db.execute("SELECT call_id, reply FROM sessions"))
    assert kept["CA1"].startswith("s1:")
    async with sqlite_sessions(path) as store:
        assert await store.load("CA1") == Stored(active("CA1"), "r1")
        assert [s.call_id for s in await store.unrecorded()] == ["CA2"]
        await store.save(active("CA1"), "r1 again")
    with sqlite3.connect(path) as db:
        session, reply = db.execute(
            "SELECT session, reply FROM sessions WHERE call_id = 'CA1'"
        ).fetchone()
    assert session.startswith("s2:") and reply == ""
    async with sqlite_sessions(path) as store:
        assert await store.load("CA1") == Stored(active("CA1"), "r1 again")


async def test_redis_lock_is_renewed_while_its_turn_runs(
    two_clients: tuple[RedisSessions, RedisSessions], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "LOCK_TTL", SHORT_TTL)
    monkeypatch.setattr(redis_store, "LOCK_WAIT", 0.1)
    a, b = two_clients
    async with a.lock("CA1"):
        await asyncio.sleep(3 * SHORT_TTL)  # a turn waiting on a slow backend
        with pytest.raises(SessionLocked):  # still a's: it did not expire under it
            async with b.lock("CA1"):
                pass
    await asyncio.wait_for(_enter_and_leave(b, "CA1"), DEADLOCK_BOUND)


async def test_redis_serves_a_burst_larger_than_its_connection_pool(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a process restarted under load meets: every call's webhook at once
    monkeypatch.setattr(redis_store, "POOL", 50)
    store = RedisSessions(redis_url, KEYS)
    try:
        await store.save(active(), "r")
        burst = [store.load("CA1") for _ in range(3 * redis_store.POOL)]
        loaded = await asyncio.wait_for(asyncio.gather(*burst), DEADLOCK_BOUND)
        assert all(stored is not None and stored.reply == "r" for stored in loaded)
    finally:
        await store.close()
