"""Reading call records for reports: a read-only connection of its own, and the filters.

Synchronous DB-API (sqlite3, or psycopg for PostgreSQL), so a caller on an event loop
runs it in a thread (`asyncio.to_thread`) and a server's turns never wait for a report;
`ivr report` and the browser dashboard run the same queries through it. SQL is written
once with `?` marks and given to psycopg with its `%s` marks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ivr.errors import ConfigError
from ivr.report.window import Window
from ivr.store.records import ROLLUPS

Row = tuple[Any, ...]


class Reader:
    """A read-only connection to a call records database: made by `connect`, read by the
    report sections, `ivr calls` and the heat map. Not for sharing between threads."""

    def __init__(self, conn: Any, kind: str, where: str) -> None:
        self.conn, self.kind, self.where = conn, kind, where

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        if self.kind == "postgresql":
            sql = sql.replace("?", "%s")
            with self.conn.cursor() as cursor:
                cursor.execute(sql, tuple(args))
                return [tuple(_plain(v) for v in row) for row in cursor.fetchall()]
        return self.conn.execute(sql, tuple(args)).fetchall()  # type: ignore[no-any-return]

    @contextmanager
    def snapshot(self) -> Iterator[Reader]:
        """Queries inside read one state of the database, whatever is written meanwhile:
        the sections of one report add up to the same calls."""
        if self.kind == "postgresql":
            with self.conn.transaction():  # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
                yield self
            return
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(value: Any) -> Any:
    """PostgreSQL's SUM of integers is numeric: read it as the int (or float) it is."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def connect(url: str) -> Reader:
    """A read-only Reader of the records at `url` (`sqlite:///path` or
    `postgresql://...`); ConfigError when there are none there."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return _sqlite(Path(url.removeprefix("sqlite://")))
    if scheme in ("postgresql", "postgres"):
        return _postgresql(url)
    raise ConfigError(
        f"records: unknown store {url!r} (use sqlite:///path or postgresql://user@host/db)"
    )


def _sqlite(path: Path) -> Reader:
    if not path.is_file():
        raise ConfigError(
            f"records: no call records at {path} (set --records or IVR_RECORDS, or IVR_DATA "
            "for the server's data directory)"
        )
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")  # a checkpoint may hold the WAL a moment
    reader = Reader(conn, "sqlite", str(path))
    _check_tables(reader, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return reader


def _postgresql(url: str) -> Reader:
    import psycopg  # only for PostgreSQL URLs: it is not needed for SQLite

    try:  # every statement read-only, in a transaction or not
        conn = psycopg.connect(
            url, autocommit=True, connect_timeout=10, options="-c default_transaction_read_only=on"
        )
    except psycopg.Error as e:
        raise ConfigError(f"records: cannot connect to {_safe(url)}: {e}".strip()) from None
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    reader = Reader(conn, "postgresql", _safe(url))
    _check_tables(
        reader, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    return reader


def _safe(url: str) -> str:
    """`url` without its password: error messages may be logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:****@{host}").geturl()


def _check_tables(reader: Reader, sql: str) -> None:
    tables = {row[0] for row in reader.rows(sql)}
    missing = sorted({"calls", *ROLLUPS} - tables)
    if missing:
        reader.close()
        raise ConfigError(
            f"records: {reader.where} has no {', '.join(missing)} table(s): not a call records "
            "database, or one from an older ivr (`ivr serve` brings it up to date)"
        )


@dataclass(frozen=True)
class Filters:
    """What a report counts: whole hours, and the dimensions every rollup row has."""

    window: Window = Window()
    flow_id: str | None = None
    flow_version: str | None = None
    channel: str | None = None
    experiment: str | None = None
    variant: str | None = None
    # inbound | outbound | None (both): containment is an inbound figure, so `ivr report`
    # and the dashboard ask for inbound; campaigns' outbound calls are counted apart
    direction: str | None = None

    def where(self, prefix: str = "") -> tuple[str, list[Any]]:
        """A WHERE clause (with `prefix` before column names) and its arguments."""
        terms, args = [], []
        if self.window.since is not None:
            terms.append(f"{prefix}hour >= ?")
            args.append(self.window.since)
        if self.window.until is not None:
            terms.append(f"{prefix}hour < ?")
            args.append(self.window.until)
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name != "window" and value is not None:
                terms.append(f"{prefix}{field.name} = ?")
                args.append(value)
        return (" WHERE " + " AND ".join(terms) if terms else ""), args

    def describe(self) -> dict[str, str | None]:
        """The dimension filters by their flag names (for the report's header)."""
        return {
            "flow": self.flow_id,
            "version": self.flow_version,
            "channel": self.channel,
            "experiment": self.experiment,
            "variant": self.variant,
            "direction": self.direction,
        }


def grouped(
    reader: Reader, table: str, keys: Sequence[str], sums: Sequence[str], filters: Filters
) -> list[Row]:
    """Rows of `table` added up in SQL by `keys`: (*keys, *sums)."""
    where, args = filters.where()
    key_sql = ", ".join(keys)
    sum_sql = ", ".join(f"SUM({name})" for name in sums)
    group = f" GROUP BY {key_sql}" if keys else ""
    select = f"{key_sql}, {sum_sql}" if keys else sum_sql
    return reader.rows(f"SELECT {select} FROM {table}{where}{group}", args)
