"""The report's reader: read-only connections, the filters' SQL, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ivr.errors import ConfigError
from ivr.report.query import Filters, _safe, connect
from ivr.report.window import Window


def test_filters_select_whole_hours_and_dimensions() -> None:
    where, args = Filters(Window(3600, 7200), flow_id="f", variant="v").where()
    assert where == " WHERE hour >= ? AND hour < ? AND flow_id = ? AND variant = ?"
    assert args == [3600, 7200, "f", "v"]
    assert Filters().where() == ("", [])


def test_the_reader_is_read_only(known_url: str) -> None:
    import psycopg

    sqlite = known_url.startswith("sqlite://")
    # SQLite's read-only mode, PostgreSQL's read-only transactions
    refused = sqlite3.OperationalError if sqlite else psycopg.errors.ReadOnlySqlTransaction
    with connect(known_url) as reader, pytest.raises(refused):
        reader.rows("DELETE FROM calls")


def test_a_database_that_is_not_one_of_records(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    sqlite3.connect(path).execute("CREATE TABLE sessions (x)").connection.close()
    with pytest.raises(ConfigError, match="has no calls, hour_calls, .* not a call records"):
        connect(f"sqlite://{path}")


def test_unknown_stores_and_unreachable_servers() -> None:
    with pytest.raises(ConfigError, match="unknown store 'redis://x'"):
        connect("redis://x")
    with pytest.raises(
        ConfigError, match=r"cannot connect to postgresql://u:\*\*\*\*@127.0.0.1:1/db"
    ):
        connect("postgresql://u:secret@127.0.0.1:1/db")


def test_passwords_stay_out_of_messages() -> None:
    assert _safe("postgresql://u:pw@h:5432/db") == "postgresql://u:****@h:5432/db"
    assert _safe("postgresql://u@h/db") == "postgresql://u@h/db"
