"""The soak, short (reliability issue): 300 calls, 30 at a time, through the example flows
against a real `ivr serve` (tests/functional/soak.py; `bench/soak.py` runs it long), SMS
conversations among them. No call goes wrong, every record is there with its script's
outcome (a conversation's with its path), the sessions of ended calls and conversations
are gone, and memory does not keep growing. No timing is asserted: the figures print."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.soak import soak

CALLS, CONCURRENCY = 300, 30
MEMORY_SLACK = 30 * 2**20  # bytes the server may grow from the middle of the run to its end
WAL_LIMIT = 64 * 2**20  # the sessions' WAL is cut back to this size when it starts over


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_soak(tmp_path: Path, store: str, request: pytest.FixtureRequest) -> None:
    sessions = request.getfixturevalue("redis_url") if store == "redis" else None
    result = await soak(tmp_path, CALLS, CONCURRENCY, sessions)
    print("\n".join(result.lines()))  # shown with -s, and on failure
    assert result.errors == [] and result.server_errors == []
    assert (result.missing, result.wrong) == ([], [])
    assert sum(result.outcomes.values()) == CALLS
    start, middle, end = result.snapshots
    assert middle.calls_done == CALLS // 2
    # every call's and conversation's record is final: its session (keys) went with it
    assert end.sessions == 0
    assert end.size("sessions.db-wal") <= WAL_LIMIT
    assert end.rss < middle.rss + MEMORY_SLACK
    assert end.records == CALLS and result.record_bytes_per_call > 0
