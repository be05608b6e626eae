"""The ops-state table of hours closed by ops (`ivr hours close`), beside the call records
so that every process reading the same records store sees the same closures, whatever
the session store. SQL that SQLite and PostgreSQL both read; the stores run it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ivr.flow.hours import Closure

if TYPE_CHECKING:
    import sqlite3

    from psycopg import AsyncConnection

TABLE = "hours_closures"
COLUMNS = ("hours", "flow", "until", "message", "closed_at")


def schema_sql(real: str = "REAL") -> str:
    """The table: one row per hours name and flow ('' for every flow). Made if missing, so
    the migration that adds it may run wherever it stands in the list of migrations."""
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (hours TEXT NOT NULL, flow TEXT NOT NULL DEFAULT '', "
        f"until {real}, message TEXT NOT NULL DEFAULT '', closed_at {real} NOT NULL, "
        "PRIMARY KEY (hours, flow))"
    )


def add_table_sqlite(db: sqlite3.Connection) -> None:
    """The migration of SQLite's records to a version with ops state: the table, empty."""
    db.execute(schema_sql())


async def add_table_postgres(conn: AsyncConnection[Any]) -> None:
    """The same migration for PostgreSQL."""
    await conn.execute(schema_sql("DOUBLE PRECISION"))


def select_sql() -> str:
    return f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY hours, flow"


def upsert_sql(mark: str = "?") -> str:
    """Close, or close again with a new end and message."""
    marks = ", ".join([mark] * len(COLUMNS))
    return (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks}) ON CONFLICT (hours, flow) "
        "DO UPDATE SET until = excluded.until, message = excluded.message, "
        "closed_at = excluded.closed_at"
    )


def expired_sql(mark: str = "?") -> str:
    """Closures that have ended: deleted whenever hours are closed, so the table stays small."""
    return f"DELETE FROM {TABLE} WHERE until IS NOT NULL AND until <= {mark}"


def delete_sql(flow: str | None, mark: str = "?") -> str:
    """Reopen: the hours of that name in one flow, or (flow None) in every flow."""
    return f"DELETE FROM {TABLE} WHERE hours = {mark}" + (
        "" if flow is None else f" AND flow = {mark}"
    )


def row_of(closure: Closure) -> tuple[Any, ...]:
    return tuple(getattr(closure, name) for name in COLUMNS)


def closure_from(row: Sequence[Any]) -> Closure:
    hours, flow, until, message, closed_at = row
    return Closure(hours, flow, None if until is None else float(until), message, float(closed_at))
