"""Campaign state beside the call records: the opt-out list, campaigns and their attempts.

The tables live in the records store's database (`IVR_RECORDS`, SQLite or PostgreSQL), as
the hours ops closed do (ivr/store/closures.py), so a campaign run from any machine and the
Messaging webhook of every `ivr serve` see one opt-out list, and `ivr campaigns show` can
join attempts to the calls' records. The records' schema is brought up to date first (the
database is one ivr made); these tables are made when missing, so they ask nothing of the
records' list of migrations. SQL that both databases read, written with `?` marks.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ivr.notify.attempts import Attempt

ATTEMPT_COLUMNS = (
    "campaign",
    "line",
    "attempt",
    "status",
    "customer",
    "call_sid",
    "answered_by",
    "reason",
    "at",
    "updated_at",
)
# pg_advisory_xact_lock key: processes making the tables at once take turns
SCHEMA_LOCK = 0x6976_725F_6361_6D  # "ivr_cam"


def schema_sql(real: str = "REAL") -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS optouts (customer TEXT PRIMARY KEY, "
        f"source TEXT NOT NULL, at {real} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS campaigns (campaign TEXT PRIMARY KEY, flow TEXT NOT NULL, "
        "channel TEXT NOT NULL, source TEXT NOT NULL, callees INTEGER NOT NULL, "
        f"started_at {real} NOT NULL)",
        # a callee is their customer key, or the line of a row that has none (invalid):
        # lines move when a file is edited, callees do not
        "CREATE TABLE IF NOT EXISTS campaign_attempts (campaign TEXT NOT NULL, "
        "callee TEXT NOT NULL, attempt INTEGER NOT NULL, line INTEGER NOT NULL, "
        "status TEXT NOT NULL, customer TEXT, call_sid TEXT, answered_by TEXT, reason TEXT, "
        f"at {real} NOT NULL, updated_at {real} NOT NULL, "
        "PRIMARY KEY (campaign, callee, attempt))",
    ]


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign as started: its id (a hash of file and flow, or --name), its flow and
    channel, the file it came from and how many rows it has."""

    campaign: str
    flow: str
    channel: str
    source: str
    callees: int
    started_at: float


class Database(Protocol):
    """One connection to the records' database, statements one at a time."""

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a statement; rows it changed."""

    async def close(self) -> None: ...


class CampaignStore:
    """Opt-outs, campaigns and attempts over a Database (`open_campaigns`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- opt-outs (ivr.notify.optout.OptOuts) --

    async def opt_out(self, customer: str, source: str, at: float) -> bool:
        sql = "INSERT INTO optouts VALUES (?, ?, ?) ON CONFLICT (customer) DO NOTHING"
        return await self.db.run(sql, (customer, source, at)) > 0

    async def opt_in(self, customer: str) -> bool:
        return await self.db.run("DELETE FROM optouts WHERE customer = ?", (customer,)) > 0

    async def opted_out(self, customer: str) -> bool:
        return bool(await self.db.rows("SELECT 1 FROM optouts WHERE customer = ?", (customer,)))

    async def optouts(self) -> list[tuple[str, str, float]]:
        """(customer key, source, when), oldest first."""
        rows = await self.db.rows("SELECT customer, source, at FROM optouts ORDER BY at")
        return [(c, s, float(a)) for c, s, a in rows]

    # -- campaigns and attempts --

    async def begin(self, info: CampaignInfo) -> CampaignInfo:
        """Keep a campaign; a re-run finds the first run's, with the file it runs now (an
        edited one, under the same --name) and its count of rows. The one kept."""
        await self.db.run(
            "INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (campaign) "
            "DO UPDATE SET source = excluded.source, callees = excluded.callees",
            (info.campaign, info.flow, info.channel, info.source, info.callees, info.started_at),
        )
        return (await self.campaigns(info.campaign))[0]

    async def campaigns(self, campaign: str | None = None) -> list[CampaignInfo]:
        where, args = (" WHERE campaign = ?", (campaign,)) if campaign else ("", ())
        rows = await self.db.rows(
            "SELECT campaign, flow, channel, source, callees, started_at FROM campaigns"
            f"{where} ORDER BY started_at",
            args,
        )
        return [CampaignInfo(c, f, ch, s, int(n), float(at)) for c, f, ch, s, n, at in rows]

    async def save(self, attempt: Attempt) -> None:
        """Write an attempt, or its new status."""
        names = ", ".join(("callee", *ATTEMPT_COLUMNS))
        marks = ", ".join("?" * (len(ATTEMPT_COLUMNS) + 1))
        later = ", ".join(f"{c} = excluded.{c}" for c in ATTEMPT_COLUMNS[3:])
        await self.db.run(
            f"INSERT INTO campaign_attempts ({names}) VALUES ({marks}) "
            f"ON CONFLICT (campaign, callee, attempt) DO UPDATE SET {later}",
            (attempt.callee, *(getattr(attempt, c) for c in ATTEMPT_COLUMNS)),
        )

    async def attempts(self, campaign: str) -> list[Attempt]:
        """Every attempt of a campaign, by line then attempt."""
        rows = await self.db.rows(
            f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM campaign_attempts WHERE campaign = ? "
            "ORDER BY line, attempt, updated_at",
            (campaign,),
        )
        return [_attempt(row) for row in rows]

    async def outcomes(self, campaign: str) -> dict[str, int]:
        """How the flow ended the campaign's answered calls (contained, transferred...),
        from their call records, for those that have one."""
        rows = await self.db.rows(
            "SELECT c.outcome, COUNT(*) FROM campaign_attempts a JOIN calls c "
            "ON c.call_sid = a.call_sid WHERE a.campaign = ? GROUP BY c.outcome",
            (campaign,),
        )
        return {outcome: int(n) for outcome, n in rows}

    async def forget(self, customer: str) -> int:
        """Delete a customer's attempts (`ivr forget`); how many. Their opt-out stays: it
        is what keeps campaigns from reaching them again, and names nobody."""
        return await self.db.run("DELETE FROM campaign_attempts WHERE customer = ?", (customer,))

    async def close(self) -> None:
        await self.db.close()


def _attempt(row: Sequence[Any]) -> Attempt:
    data = dict(zip(ATTEMPT_COLUMNS, row, strict=True))
    data["at"], data["updated_at"] = float(data["at"]), float(data["updated_at"])
    return Attempt(**data)


# -- the two databases ------------------------------------------------------------------------


class SqliteDatabase:
    """The records' SQLite file, through a connection of its own, off the event loop
    (WAL mode: the server's writer and this one take turns)."""

    def __init__(self, path: Path) -> None:
        from ivr.store.sqlite_records import migrate

        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA journal_mode=WAL")  # as the records store opens it
        self._conn.execute("PRAGMA synchronous=NORMAL")  # durable across a crash of ivr
        migrate(self._conn)  # the records' tables first: the file is one ivr made
        for sql in schema_sql():
            self._conn.execute(sql)
        self._lock = asyncio.Lock()

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._conn.execute(sql, args).fetchall())

    async def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._conn.execute(sql, args).rowcount)

    async def close(self) -> None:
        self._conn.close()


class PostgresDatabase:
    """The records' PostgreSQL database, over one connection made on first use (with the
    records store's connection settings); the records' schema is brought up to date then."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(await (await self._execute(sql, args)).fetchall())

    async def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int((await self._execute(sql, args)).rowcount)

    async def _execute(self, sql: str, args: Sequence[Any]) -> Any:
        """The statement on the connection, alone; once more on a new connection when the
        one it found had broken while idle (a campaign waits hours for a window)."""
        import psycopg

        async with self._lock:
            reused = self._conn is not None and not self._conn.closed
            conn = await self._connection()
            try:
                return await conn.execute(sql.replace("?", "%s"), args)
            except psycopg.OperationalError:
                if not (reused and conn.closed):
                    raise
            return await (await self._connection()).execute(sql.replace("?", "%s"), args)

    async def _connection(self) -> Any:
        from psycopg import AsyncConnection
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        from ivr.store.postgres_records import CONNECT, migrate

        if self._conn is None or self._conn.closed:
            given = conninfo_to_dict(self.url)
            defaults = {k: v for k, v in CONNECT.items() if k not in given}
            conn = await AsyncConnection.connect(
                make_conninfo(self.url, **defaults), autocommit=True
            )
            try:
                await migrate(conn)
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    for sql in schema_sql("DOUBLE PRECISION"):
                        await conn.execute(sql)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


def open_campaigns(url: str) -> CampaignStore:
    """The campaign store in the records' database: `sqlite:///path` | `postgresql://...`."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return CampaignStore(SqliteDatabase(Path(url.removeprefix("sqlite://"))))
    if scheme in ("postgresql", "postgres"):
        return CampaignStore(PostgresDatabase(url))
    raise ValueError(
        f"IVR_RECORDS: unknown store {url!r} (use sqlite:///path or postgresql://user@host/db)"
    )
