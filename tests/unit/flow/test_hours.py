"""Opening hours: weekdays, exact and yearly dates, days with hours of their own, time
zones across DST changes, ops' closures laid over them, and what `--until` means."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted
from ivr.flow import parse_and_compile
from ivr.flow.hours import Closure, Day, HoursError, closing_until, parse_hours, with_closures

ALMATY = ZoneInfo("Asia/Almaty")
LONDON = ZoneInfo("Europe/London")


def at(tz: ZoneInfo, *when: int) -> float:
    return datetime(*when, tzinfo=tz).timestamp()  # type: ignore[misc]


SUPPORT = parse_hours(
    {
        "tz": "Asia/Almaty",
        "mon-fri": "09:00-18:00",
        "sat": "10:00-14:00",
        "closed_on": [
            "2026-12-16",
            "12-25",
            {"date": "12-24", "hours": "09:00-13:00", "name": "Christmas Eve"},
            {"date": "2027-12-24", "hours": "closed"},
        ],
    }
)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ((2026, 12, 15, 10), True),  # a Tuesday
        ((2026, 12, 16, 10), False),  # a Wednesday, but an exact closed date
        ((2026, 12, 25, 10), False),  # 12-25: every year
        ((2030, 12, 25, 10), False),
        ((2026, 12, 24, 12), True),  # 12-24: a short day, every year
        ((2026, 12, 24, 14), False),
        ((2028, 12, 24, 12), True),  # a Sunday: the yearly day's hours, not the weekday's
        ((2027, 12, 24, 12), False),  # an exact date beats the yearly one
        ((2026, 12, 19, 13), True),  # a Saturday
        ((2026, 12, 20, 13), False),  # a Sunday
    ],
)
def test_dates_exact_yearly_and_partial(when: tuple[int, ...], open_: bool) -> None:
    assert SUPPORT.is_open(at(ALMATY, *when)) is open_


def test_february_29_recurs_in_leap_years_only() -> None:
    hours = parse_hours({"tz": "UTC", "mon-sun": "00:00-24:00", "closed_on": ["02-29"]})
    utc = ZoneInfo("UTC")
    assert not hours.is_open(at(utc, 2028, 2, 29, 12))
    assert hours.is_open(at(utc, 2027, 2, 28, 12)) and hours.is_open(at(utc, 2027, 3, 1, 12))


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        ("2026-02-29", ("closed_on", 0), "2026-02-29 is not a date (day is out of range"),
        ("13-01", ("closed_on", 0), "13-01 is not a date (month must be in 1..12)"),
        (
            {"date": "12-24", "hours": "13:00-09:00"},
            ("closed_on", 0, "hours"),
            "'13:00-09:00': the end must be after the start",
        ),
    ],
)
def test_bad_dates_say_where(entry: object, path: tuple[object, ...], message: str) -> None:
    with pytest.raises(HoursError) as e:
        parse_hours({"tz": "UTC", "closed_on": [entry]})
    assert e.value.path == path
    assert str(e.value).startswith(message)


def test_own_dates_beat_calendars_and_calendars_keep_their_order() -> None:
    first = [Day((12, 31), ((540, 780),), "New Year's Eve"), Day((1, 1), (), "New Year")]
    second = [Day((12, 31), (), "closed all day")]
    hours = parse_hours({"tz": "UTC", "mon-sun": "09:00-18:00"}, [first, second])
    utc = ZoneInfo("UTC")
    assert hours.is_open(at(utc, 2026, 12, 31, 10)) and not hours.is_open(at(utc, 2026, 12, 31, 14))
    assert not hours.is_open(at(utc, 2027, 1, 1, 10))
    own = parse_hours({"tz": "UTC", "mon-sun": "09:00-18:00", "closed_on": ["12-31"]}, [first])
    assert not own.is_open(at(utc, 2026, 12, 31, 10))


def test_across_dst_changes_hours_are_wall_clock_hours() -> None:
    hours = parse_hours({"tz": "Europe/London", "mon-sun": "09:00-17:00", "closed_on": ["03-30"]})
    # 2026-03-29: clocks go forward at 01:00 UTC; 08:30 UTC is 09:30 BST
    assert hours.is_open(datetime.fromisoformat("2026-03-29T08:30:00+00:00").timestamp())
    assert not hours.is_open(datetime.fromisoformat("2026-03-28T08:30:00+00:00").timestamp())
    # the closed date is the local one: 23:30 UTC on the 29th is 00:30 BST on the 30th
    night = parse_hours({"tz": "Europe/London", "mon-sun": "00:00-24:00", "closed_on": ["03-30"]})
    assert not night.is_open(datetime.fromisoformat("2026-03-29T23:30:00+00:00").timestamp())
    # 2026-10-25: clocks go back; 16:30 UTC is 16:30 GMT, open; 17:30 UTC is not
    assert hours.is_open(datetime.fromisoformat("2026-10-25T16:30:00+00:00").timestamp())
    assert not hours.is_open(datetime.fromisoformat("2026-10-25T17:30:00+00:00").timestamp())


def test_a_closure_closes_until_its_end_and_tells_its_message() -> None:
    tuesday_10 = at(ALMATY, 2026, 12, 15, 10)
    closure = Closure("support", until=tuesday_10 + 3600, message="Closed for training.")
    hours = with_closures({"support": SUPPORT}, "telebanking", [closure])
    assert hours is not None
    closed = hours["support"]
    assert not closed.is_open(tuesday_10)
    assert closed.closed_message(tuesday_10) == "Closed for training."
    assert closed.is_open(tuesday_10 + 3600) and closed.closed_message(tuesday_10 + 3600) == ""
    assert SUPPORT.closure is None  # the flow's own hours are not changed


def test_closures_apply_to_their_flow_and_named_hours_only() -> None:
    all_flows = Closure("support", message="everywhere")
    this_flow = Closure("support", flow="telebanking", message="here")
    other = Closure("support", flow="order_status", message="there")
    unknown = Closure("sales")
    assert with_closures({"support": SUPPORT}, "telebanking", [unknown, other]) is None
    hours = with_closures({"support": SUPPORT}, "telebanking", [this_flow, all_flows, other])
    assert hours is not None and hours["support"].closed_message(0) == "here"


def test_until_is_the_next_such_time_in_the_hours_zone() -> None:
    morning = at(ALMATY, 2026, 12, 15, 10)
    assert closing_until(SUPPORT, "18:00", morning) == at(ALMATY, 2026, 12, 15, 18)
    assert closing_until(SUPPORT, "09:00", morning) == at(ALMATY, 2026, 12, 16, 9)
    assert closing_until(SUPPORT, "2026-12-24T13:00", morning) == at(ALMATY, 2026, 12, 24, 13)
    assert closing_until(SUPPORT, "2026-12-24T13:00+00:00", morning) == (
        datetime.fromisoformat("2026-12-24T13:00+00:00").timestamp()
    )
    with pytest.raises(ValueError, match="write HH:MM"):
        closing_until(SUPPORT, "6pm", morning)
    with pytest.raises(ValueError, match="has passed"):
        closing_until(SUPPORT, "2026-12-01T10:00", morning)


def test_until_on_the_night_clocks_go_forward() -> None:
    london = parse_hours({"tz": "Europe/London", "mon-sun": "09:00-17:00"})
    before = at(LONDON, 2026, 3, 29, 0, 30)  # GMT; at 01:00 UTC clocks jump to 02:00 BST
    assert closing_until(london, "03:00", before) == at(LONDON, 2026, 3, 29, 3)
    assert closing_until(london, "03:00", before) - before == 1.5 * 3600


FLOW = """flow: t
start: check
hours:
  support: {tz: UTC, mon-sun: "00:00-24:00"}
nodes:
  check:
    branch:
      - {if: "open('support')", goto: open_now}
      - {if: "closed_message('support')", goto: told}
      - {else: closed}
  open_now: {end: {say: "Open."}}
  told: {end: {say: "{{ closed_message('support') }}"}}
  closed: {end: {say: "Closed."}}
"""


@pytest.mark.parametrize(
    ("closures", "heard"),
    [
        ((), "Open."),
        (
            (Closure("support", message="Closed today for a staff meeting."),),
            "Closed today for a staff meeting.",
        ),
        ((Closure("support"),), "Closed."),
        ((Closure("support", until=0.5, message="Over."),), "Open."),
    ],
)
def test_the_engine_reads_the_closures_laid_over_the_flow(
    closures: tuple[Closure, ...], heard: str
) -> None:
    flow = parse_and_compile(FLOW)
    hours = with_closures(flow.hours, flow.id, closures)
    if hours is not None:
        from dataclasses import replace

        flow = replace(flow, hours=hours)
    _, actions = step(flow, new_session(flow, "c1"), CallStarted("+1", "+2", at=1.0))
    assert [a.text for a in actions if isinstance(a, act.Prompt)] == [heard]


def test_the_runner_lays_closures_over_a_flow_once_per_read() -> None:
    from ivr.runner import Runner

    flow = parse_and_compile(FLOW)
    read: list[tuple[Closure, ...]] = [()]
    runner = Runner(backend=None, closures=lambda: read[0])  # type: ignore[arg-type]
    assert runner.overlaid(flow) is flow  # nothing closed: the flow as it is
    read[0] = (Closure("support", message="Closed."),)  # a refresh read a closure
    closed = runner.overlaid(flow)
    assert closed is not flow and closed.hours["support"].closed_message(1.0) == "Closed."
    assert runner.overlaid(flow) is closed  # the same read: the same flow, not made again
    assert flow.hours["support"].closure is None
    read[0] = ()  # reopened
    assert runner.overlaid(flow) is flow
