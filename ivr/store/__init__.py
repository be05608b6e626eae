"""Session stores and call records, chosen by URL (`IVR_SESSIONS`, `IVR_RECORDS`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ivr.keys import Keys
from ivr.store.base import SessionStore, Stored
from ivr.store.records import RecordStore


def open_sessions(
    url: str, keys: Keys | None = None, lock_wait: float | None = None
) -> SessionStore:
    """`sqlite:///path/sessions.db` | `memory://` | `redis://host:port/db`; with `keys`, a
    store on disk or shared seals what it keeps (`Keys.seal_session`). `lock_wait`: the
    longest a webhook waits for a call's lock held by another process (Redis)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from ivr.store.memory import MemorySessions

        return MemorySessions()
    if scheme == "sqlite":
        from ivr.store.sqlite import SqliteSessions

        return SqliteSessions(Path(url.removeprefix("sqlite://")), keys)
    if scheme in ("redis", "rediss", "unix"):
        from ivr.store.redis import RedisSessions

        return RedisSessions(url, keys, lock_wait)
    raise ValueError(
        f"IVR_SESSIONS: unknown store {url!r} (use sqlite:///path, memory:// or redis://host:port/db)"
    )


def open_records(url: str) -> RecordStore:
    """`sqlite:///path/calls.db` | `postgresql://user@host/db`."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from ivr.store.sqlite_records import SqliteRecords

        return SqliteRecords(Path(url.removeprefix("sqlite://")))
    if scheme in ("postgresql", "postgres"):
        from ivr.store.postgres_records import PostgresRecords

        return PostgresRecords(url)
    raise ValueError(
        f"IVR_RECORDS: unknown store {url!r} (use sqlite:///path or postgresql://user@host/db)"
    )


__all__ = ["RecordStore", "SessionStore", "Stored", "open_records", "open_sessions"]
