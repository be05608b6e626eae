"""The campaign store in both records databases: opt-outs by customer key, a campaign kept
once, attempts written and updated, their calls' outcomes joined from the records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from ivr.notify.attempts import Attempt
from ivr.store import open_records
from ivr.store.campaigns import CampaignInfo, CampaignStore, open_campaigns
from ivr.store.records import CallRecord


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'calls.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(url: str) -> AsyncIterator[CampaignStore]:
    opened = open_campaigns(url)
    yield opened
    await opened.close()


async def test_opt_out_and_back_in(store: CampaignStore) -> None:
    assert await store.opt_out("c_ann", "sms", 100.0) is True
    assert await store.opt_out("c_ann", "voice", 200.0) is False  # once: the first kept
    await store.opt_out("c_bob", "ops", 150.0)
    assert await store.opted_out("c_ann") and not await store.opted_out("c_cy")
    assert await store.optouts() == [("c_ann", "sms", 100.0), ("c_bob", "ops", 150.0)]
    assert await store.opt_in("c_ann") is True
    assert await store.opt_in("c_ann") is False
    assert not await store.opted_out("c_ann")


async def test_a_campaign_is_kept_once(store: CampaignStore) -> None:
    first = CampaignInfo("cmp1", "reminder", "voice", "due.csv", 3, 100.0)
    assert await store.begin(first) == first
    again = CampaignInfo("cmp1", "reminder", "voice", "due.csv", 3, 500.0)
    assert await store.begin(again) == first  # a re-run finds the first run's
    edited = CampaignInfo("cmp1", "reminder", "voice", "due2.csv", 4, 600.0)
    assert await store.begin(edited) == CampaignInfo(
        "cmp1", "reminder", "voice", "due2.csv", 4, 100.0
    )
    assert [c.campaign for c in await store.campaigns()] == ["cmp1"]


async def test_attempts_are_written_then_updated(store: CampaignStore) -> None:
    dialing = Attempt("cmp1", 2, 1, "dialing", "c_ann", at=10.0, updated_at=10.0)
    await store.save(dialing)
    await store.save(
        Attempt("cmp1", 3, 0, "invalid", reason="bad number", at=10.0, updated_at=10.0)
    )
    await store.save(Attempt("other", 2, 1, "dialing", at=10.0, updated_at=10.0))
    done = dialing.moved("completed", 40.0, call_sid="CA1", answered_by="human")
    await store.save(done)
    assert await store.attempts("cmp1") == [
        done,
        Attempt("cmp1", 3, 0, "invalid", reason="bad number", at=10.0, updated_at=10.0),
    ]


async def test_outcomes_come_from_the_calls_records(store: CampaignStore, url: str) -> None:
    records = open_records(url)
    try:
        await records.add(
            [
                CallRecord(
                    "CA1", "reminder", "v1", 0.0, 30.0, 30.0, "contained", direction="outbound"
                ),
                CallRecord(
                    "CA2", "reminder", "v1", 0.0, 30.0, 30.0, "transferred", direction="outbound"
                ),
                CallRecord("CA9", "reminder", "v1", 0.0, 30.0, 30.0, "contained"),
            ]
        )
    finally:
        await records.close()
    for line, sid in ((2, "CA1"), (3, "CA2"), (4, "CA3")):  # CA3: no record yet
        await store.save(
            Attempt("cmp1", line, 1, "completed", call_sid=sid, at=1.0, updated_at=2.0)
        )
    assert await store.outcomes("cmp1") == {"contained": 1, "transferred": 1}


async def test_postgresql_connects_again_after_the_connection_broke(postgres_url: str) -> None:
    store = open_campaigns(postgres_url)
    try:
        await store.opt_out("c_ann", "sms", 1.0)
        with psycopg.connect(postgres_url, autocommit=True) as db:  # as a server restart would
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'ivr'"
            )
        assert await store.opted_out("c_ann")  # no error: connected again
    finally:
        await store.close()
