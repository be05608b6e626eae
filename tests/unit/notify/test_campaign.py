"""A campaign run against a fake Twilio and a fake clock: pacing counted (never timed),
retries, opt-outs, calling windows, resuming after a kill, invalid rows, --until; its
state in SQLite and in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.keys import Keys
from ivr.notify.attempts import CATEGORIES, Attempt, tally
from ivr.notify.callees import Callee, read_callees
from ivr.notify.campaign import CallState, Campaign, Outbound, Placed, Plan
from ivr.notify.windows import parse_window
from ivr.store.campaigns import CampaignStore, open_campaigns
from tests.unit.notify.fakes import FakeClock, FakeTwilio

TUESDAY_NOON_NY = datetime.fromisoformat("2026-12-15T12:00-05:00").timestamp()
KEYS = Keys.for_tests()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CampaignStore]:
    """The campaign store in each records database: a campaign's state is the same in both."""
    url = (
        f"sqlite://{tmp_path / 'calls.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    opened = open_campaigns(url)
    yield opened
    await opened.close()


def numbers(count: int, first: int = 100) -> list[str]:
    return [f"+1212555{n:04d}" for n in range(first, first + count)]


def callees(count: int) -> list[Callee]:
    text = "number,name\n" + "".join(f"{n},caller{i}\n" for i, n in enumerate(numbers(count)))
    found, rejected = read_callees(text)
    assert not rejected
    return found


def campaign(
    store: CampaignStore, rows: Sequence[Callee], twilio: FakeTwilio, **plan: object
) -> Campaign:
    return Campaign(
        Plan("cmp", "reminder", **plan),  # type: ignore[arg-type]
        rows,
        store,
        KEYS,
        twilio.dial,
        twilio.status,
        twilio.clock,
    )


async def last_attempts(store: CampaignStore) -> dict[int, Attempt]:
    return {a.line: a for a in await store.attempts("cmp")}


async def test_pacing_never_exceeds_the_rate_or_the_concurrency(store: CampaignStore) -> None:
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY), rings=1)  # calls of about 10 s
    await campaign(store, callees(40), twilio, rate=10, concurrency=3, poll=5.0).run()
    starts = twilio.starts()
    assert len(starts) == 40 and sorted(twilio.lines()) == list(range(2, 42))
    # calls started in any minute, counted at each start: (t - 60, t]
    per_minute = [sum(t - 60 < s <= t for s in starts) for t in starts]
    assert max(per_minute) == 10  # the rate is reached and never passed
    assert twilio.most_in_flight <= 3
    assert tally((await last_attempts(store)).values(), 40)["reached"] == 40


async def test_concurrency_binds_when_calls_are_long(store: CampaignStore) -> None:
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY), rings=50)  # calls of about 4 minutes
    await campaign(store, callees(12), twilio, rate=60, concurrency=4).run()
    assert twilio.most_in_flight == 4 and len(twilio.calls) == 12  # reached, never passed
    starts = twilio.starts()
    assert max(sum(t - 60 < s <= t for s in starts) for t in starts) <= 60


async def test_busy_no_answer_and_failed_are_retried_after_the_wait(store: CampaignStore) -> None:
    ann, bob, cy, di = numbers(4)
    twilio = FakeTwilio(
        FakeClock(TUESDAY_NOON_NY),
        script={
            ann: ["busy", "no-answer", "completed"],
            bob: ["failed", "failed", "failed", "completed"],  # retries run out first
            cy: ["machine"],  # a machine is final unless --retry-machine
            di: ["completed"],
        },
    )
    await campaign(store, callees(4), twilio, retries=2, retry_after=600.0).run()
    assert [len(twilio.starts(n)) for n in (ann, bob, cy, di)] == [3, 3, 1, 1]
    attempts = await store.attempts("cmp")
    for first, second in zip(attempts, attempts[1:], strict=False):
        if first.line == second.line:  # a retry starts retry_after after the last ended
            assert second.at >= first.updated_at + 600.0
    last = await last_attempts(store)
    assert [last[line].category for line in (2, 3, 4, 5)] == [
        "reached",
        "failed",
        "machine",
        "reached",
    ]


async def test_a_machine_is_retried_when_the_campaign_says_so(store: CampaignStore) -> None:
    (ann,) = numbers(1)
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY), script={ann: ["machine", "completed"]})
    await campaign(store, callees(1), twilio, retry_machine=True).run()
    assert len(twilio.starts(ann)) == 2


async def test_a_number_the_api_refuses_is_a_failed_attempt_with_the_reason(
    store: CampaignStore,
) -> None:
    (ann,) = numbers(1)
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY), fail_dials={ann})
    await campaign(store, callees(1), twilio, retries=1).run()
    attempts = await store.attempts("cmp")
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "failed")]
    assert (
        attempts[0].reason == "not placed: HTTP 400: The 'To' number is not a valid phone number."
    )


async def test_opted_out_numbers_are_never_called(store: CampaignStore) -> None:
    ann, bob, cy = numbers(3)
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY), script={cy: ["busy", "completed"]})
    ann_key, cy_key = KEYS.customer_id(ann), KEYS.customer_id(cy)
    assert ann_key and cy_key
    await store.opt_out(ann_key, "sms", 0.0)
    status = twilio.status

    async def stop_after_busy(sid: str) -> CallState:
        state = await status(sid)
        if state.status == "busy":  # the callee texts STOP while their retry waits
            await store.opt_out(cy_key, "sms", twilio.clock.now())
        return state

    rows = callees(3)
    plan = Plan("cmp", "reminder", retry_after=600.0)
    await Campaign(plan, rows, store, KEYS, twilio.dial, stop_after_busy, twilio.clock).run()
    assert twilio.starts(ann) == [] and len(twilio.starts(cy)) == 1 and twilio.starts(bob)
    last = await last_attempts(store)
    assert (last[2].status, last[2].customer) == ("opted-out", ann_key)
    assert last[4].status == "opted-out"


async def test_callees_wait_for_their_window_in_their_zone(store: CampaignStore) -> None:
    text = "number,tz\n+12125550100,\n+77012345678,Asia/Almaty\n+442071234567,\n"
    rows, _ = read_callees(text)
    friday_night_ny = datetime.fromisoformat("2026-12-18T21:00-05:00").timestamp()
    twilio = FakeTwilio(FakeClock(friday_night_ny))
    window = parse_window("09:00-20:00", "mon-fri")
    await campaign(store, rows, twilio, window=window).run()
    for number, zone in (
        ("+12125550100", "America/New_York"),
        ("+77012345678", "Asia/Almaty"),
        ("+442071234567", "Europe/London"),
    ):
        (start,) = twilio.starts(number)
        local = datetime.fromtimestamp(start, ZoneInfo(zone))
        assert local.weekday() == 0 and local.hour == 9  # Monday, as it opens there


async def test_a_number_whose_zones_never_overlap_is_outside_the_window(
    store: CampaignStore,
) -> None:
    rows, _ = read_callees("number\n+77012345678\n")  # +7: from Kaliningrad to Kamchatka
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY))
    await campaign(store, rows, twilio, window=parse_window("09:00-12:00")).run()
    (attempt,) = await store.attempts("cmp")
    assert twilio.calls == {} and attempt.status == "outside-window"
    assert attempt.reason and "never opens in Asia/Almaty" in attempt.reason


async def test_until_ends_the_campaign_and_leaves_the_rest_pending(store: CampaignStore) -> None:
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY), rings=0)
    until = TUESDAY_NOON_NY + 60  # a minute at 2 calls a minute
    await campaign(store, callees(5), twilio, rate=2, until=until).run()
    assert len(twilio.calls) == 2 and twilio.clock.now() == until
    counts = tally(await store.attempts("cmp"), 5)
    assert (counts["reached"], counts["pending"]) == (2, 3)


async def test_a_killed_campaign_resumes_without_calling_anyone_twice(
    store: CampaignStore,
) -> None:
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY), rings=4)
    hang = asyncio.Event()
    dial = twilio.dial

    async def dies_placing_the_fifth(outbound: Outbound) -> Placed:
        if len(twilio.calls) == 4:
            await hang.wait()  # killed here: the fifth may or may not have gone out
        return await dial(outbound)

    rows = callees(10)
    first = Campaign(
        Plan("cmp", "reminder", concurrency=8),
        rows,
        store,
        KEYS,
        dies_placing_the_fifth,
        twilio.status,
        twilio.clock,
    )
    task = asyncio.create_task(first.run())
    while len(twilio.calls) < 4 or not any(
        a.status == "dialing" for a in await store.attempts("cmp")
    ):
        await asyncio.sleep(0)
    task.cancel()  # as Ctrl-C or a kill leaves it
    with pytest.raises(asyncio.CancelledError):
        await task
    assert twilio.in_flight() > 0  # calls of the first run were still ringing

    await campaign(store, rows, twilio, concurrency=8).run()
    assert sorted(twilio.lines()) == [2, 3, 4, 5, 7, 8, 9, 10, 11]  # line 6 never again
    last = await last_attempts(store)
    assert last[6].status == "interrupted" and twilio.in_flight() == 0
    counts = tally(last.values(), 10)
    assert counts == {**dict.fromkeys(CATEGORIES, 0), "reached": 9, "failed": 1}

    before = len(twilio.calls)  # a third run finds everything done
    await campaign(store, rows, twilio).run()
    assert len(twilio.calls) == before


async def test_invalid_rows_are_kept_once_and_counted(store: CampaignStore) -> None:
    rows, rejected = read_callees("number\n+12125550100\n12125550101\n+1212\n")
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY))
    for _ in range(2):
        run = campaign(store, rows, twilio)
        await run.reject(rejected)
        await run.run()
    attempts = await store.attempts("cmp")
    assert [(a.line, a.attempt, a.status) for a in attempts] == [
        (2, 1, "completed"),
        (3, 0, "invalid"),
        (4, 0, "invalid"),
    ]
    assert tally(attempts, 3)["invalid"] == 2


async def test_an_edited_file_under_the_same_name_calls_only_the_new_rows(
    store: CampaignStore,
) -> None:
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY))
    first, _ = read_callees("number\n+12125550100\n+12125550101\n")
    await campaign(store, first, twilio).run()
    # a row added on top: the first two move down a line, and are the same callees
    edited, _ = read_callees("number\n+12125550109\n+12125550100\n+12125550101\n")
    await campaign(store, edited, twilio).run()
    assert [c.outbound.to for c in twilio.calls.values()] == [
        "+12125550100",
        "+12125550101",
        "+12125550109",
    ]
    assert tally(await store.attempts("cmp"), 3)["reached"] == 3


async def test_a_call_whose_status_cannot_be_read_is_given_up_not_polled_forever(
    store: CampaignStore,
) -> None:
    twilio = FakeTwilio(FakeClock(TUESDAY_NOON_NY))
    polls = 0

    async def unreadable(sid: str) -> CallState:
        nonlocal polls
        polls += 1
        raise RuntimeError("HTTP 503")

    plan = Plan("cmp", "reminder", retries=0, poll=60.0)
    await Campaign(plan, callees(1), store, KEYS, twilio.dial, unreadable, twilio.clock).run()
    (attempt,) = await store.attempts("cmp")
    assert (attempt.status, attempt.reason) == ("failed", "no final status came: given up")
    assert 240 < polls < 260  # once a minute for a little over four hours, then no more


async def test_a_text_campaign_ends_at_the_message_statuses(store: CampaignStore) -> None:
    ann, bob = numbers(2)
    twilio = FakeTwilio(
        FakeClock(TUESDAY_NOON_NY), script={ann: ["undelivered", "delivered"], bob: ["sent"]}
    )
    await campaign(store, callees(2), twilio, channel="sms", retry_after=60.0).run()
    assert {c.outbound.channel for c in twilio.calls.values()} == {"sms"}
    assert (len(twilio.starts(ann)), len(twilio.starts(bob))) == (2, 1)
    assert tally(await store.attempts("cmp"), 2)["reached"] == 2
