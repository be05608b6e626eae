"""Records with known figures, written through the stores' own `add` (so the rollups are what
the server writes), into SQLite and into PostgreSQL: every report test runs on both.

The figures the tests expect are worked out by hand from `KNOWN` in the comments there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.keys import Keys
from ivr.store import open_records
from ivr.store.records import CallRecord

REPO = Path(__file__).resolve().parents[3]
FLOWS = REPO / "flows"
DAY1 = datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp()  # a Monday, 10:00 UTC
DAY2 = DAY1 + 86400 - 3600  # Tuesday 09:00 UTC
CALLER = "+15557654321"
TELE = ("welcome", "main")
BALANCE = (*TELE, "ask_account", "lookup", "route", "balance", "anything_else")
AGENT = (*TELE, "check_hours", "agent")


def call(
    sid: str, start: float, duration: float, outcome: str, path: tuple[str, ...], **more: Any
) -> CallRecord:
    return CallRecord(
        call_sid=sid,
        flow_id=more.pop("flow_id", "telebanking"),
        flow_version=more.pop("flow_version", "1"),
        started_at=start,
        ended_at=start + duration,
        duration=duration,
        outcome=outcome,
        path=path,
        **more,
    )


EXPERIMENT = {"experiment": "voice_vs_dtmf"}
SUPPORT = {"queue": "support"}
# twelve calls: 10 on telebanking (c1-c8 version 1 on day 1, c9-c10 version 2 on day 2),
# 2 on telebanking_voice; c1, c5, v1, v2 are in the experiment
KNOWN = [
    call(  # contained after a balance; bucket 30-45
        "c1", DAY1 + 60, 42, "contained", (*BALANCE, "goodbye"),
        tasks=("balance_inquiry",), **EXPERIMENT, variant="telebanking",
        inputs={"main:dtmf:match": 1, "ask_account:dtmf:match": 1, "anything_else:dtmf:match": 1},
    ),
    call(  # a zero-out; 10-15
        "c2", DAY1 + 120, 12, "transferred", AGENT, reason="global", reason_detail="agent",
        transfer_from="main", **SUPPORT, inputs={"main:dtmf:match": 1},
    ),
    call(  # not understood; 20-30
        "c3", DAY1 + 180, 25, "transferred", AGENT, reason="on_fail", reason_detail="main",
        transfer_from="main", **SUPPORT, inputs={"main:no_input": 1, "main:speech:no_match": 2},
    ),
    call(  # the bank's backend failed; 30-45
        "c4", DAY1 + 240, 33, "transferred",
        (*TELE, "ask_account", "lookup", "backend_down", "check_hours", "agent"),
        reason="on_error", reason_detail="lookup", transfer_from="lookup", **SUPPORT,
        inputs={"main:speech:match": 1, "ask_account:dtmf:match": 1},
    ),
    call(  # heard the balance and hung up: abandoned after a task; 45-60
        "c5", DAY1 + 300, 50, "abandoned", BALANCE, tasks=("balance_inquiry",),
        **EXPERIMENT, variant="telebanking",
        inputs={"main:dtmf:match": 1, "ask_account:dtmf:match": 1},
    ),
    call("c6", DAY1 + 360, 4, "abandoned", TELE, inputs={"main:no_input": 1}),  # 0-5
    call(  # hung up at the account number; 15-20
        "c7", DAY1 + 420, 19, "abandoned", (*TELE, "ask_account"),
        inputs={"main:dtmf:match": 1, "ask_account:dtmf:no_match": 1},
    ),
    call(  # 5-10
        "c8", DAY1 + 480, 8, "failed", TELE, error="boom", inputs={"main:dtmf:no_match": 1}
    ),
    call(  # a card blocked, version 2, day 2; 60-90
        "c9", DAY2 + 60, 70, "contained",
        (*TELE, "ask_account", "lookup", "route", "confirm_block", "block_card", "blocked",
         "anything_else", "goodbye"),
        flow_version="2", tasks=("card_blocked",),
        inputs={"main:dtmf:match": 1, "ask_account:dtmf:match": 1,
                "confirm_block:speech:match": 1, "anything_else:dtmf:match": 1},
    ),
    call(  # a callback request: transferred with its task done, so not self-served; 90-120
        "c10", DAY2 + 120, 100, "transferred", (*TELE, "check_hours", "closed"),
        flow_version="2", reason="callback", transfer_from="closed",
        tasks=("callback_requested",), inputs={"main:dtmf:match": 1},
    ),
    call(  # the voice variant, contained; 45-60
        "v1", DAY1 + 7200, 55, "contained", (*BALANCE, "goodbye"), flow_id="telebanking_voice",
        tasks=("balance_inquiry",), **EXPERIMENT, variant="telebanking_voice",
        inputs={"main:speech:match": 1, "ask_account:dtmf:match": 1,
                "anything_else:speech:match": 1},
    ),
    call(  # the voice variant, asked for an agent; 10-15
        "v2", DAY1 + 7260, 14, "transferred", AGENT, flow_id="telebanking_voice",
        reason="option", reason_detail="agent", transfer_from="main", **SUPPORT,
        **EXPERIMENT, variant="telebanking_voice",
        inputs={"main:speech:no_match": 1, "main:speech:match": 1},
    ),
]  # fmt: skip


def sealed(records: list[CallRecord], keys: Keys) -> list[CallRecord]:
    """`records` with a caller and a transcript, sealed as record_of seals them."""
    import dataclasses
    import json

    transcript = [
        [0.0, "welcome", "say"],
        [0.4, "main", "prompt"],
        [3.1, "main", "speech", "no_match", "pizza", 0.41],
        [3.1, "main", "no_match:2"],
        [6.0, "main", "dtmf", "match", "1"],
        [6.2, "ask_account", "prompt"],
        [12.5, "ask_account", "dtmf", "match", "****"],
        [12.9, "lookup", "fetch", 500],
        [13.0, "backend_down", "say"],
        [13.2, "agent", "say"],
    ]
    return [
        dataclasses.replace(
            r, caller=keys.seal(CALLER), transcript=keys.seal(json.dumps(transcript))
        )
        for r in records
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'calls.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A server's data directory, with the keys its records are sealed with."""
    data = tmp_path / "data"
    data.mkdir()
    Keys.load(data, env={})
    return data


@pytest.fixture
def known_url(store_url: str, data_dir: Path) -> Iterator[str]:
    """`store_url` holding KNOWN (in two batches, as the writer would), sealed under the
    keys in `data_dir`."""

    async def fill() -> None:
        store = open_records(store_url)
        try:
            records = sealed(KNOWN, Keys.load(data_dir, env={}))
            await store.add(records[:5])
            await store.add(records[5:])
        finally:
            await store.close()

    asyncio.run(fill())
    yield store_url
