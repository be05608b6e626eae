"""Calling windows in the callee's zone: weekdays, midnight, DST changes, and the overlap of
the zones of a number whose zone is ambiguous."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.notify.windows import CallingWindow, next_opening, overlap, parse_days, parse_window


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


WEEKDAYS = parse_window("09:00-20:00", "mon-fri")


@pytest.mark.parametrize(
    ("now", "zone", "opens"),
    [
        # a Tuesday 10:00 in New York: open now
        ("2026-12-15T10:00-05:00", "America/New_York", "2026-12-15T10:00-05:00"),
        # 08:00 there: at nine
        ("2026-12-15T08:00-05:00", "America/New_York", "2026-12-15T09:00-05:00"),
        # Friday 21:00: Monday 09:00
        ("2026-12-18T21:00-05:00", "America/New_York", "2026-12-21T09:00-05:00"),
        # the same instant is Saturday 11:00 in Almaty: Monday 09:00 there
        ("2026-12-18T21:00-05:00", "Asia/Almaty", "2026-12-21T09:00+05:00"),
        # London, the Friday before clocks go back (BST, +01:00) -> Monday in GMT
        ("2026-10-23T21:00+01:00", "Europe/London", "2026-10-26T09:00+00:00"),
        # New York, Friday before clocks go forward (EST) -> Monday in EDT
        ("2026-03-06T22:00-05:00", "America/New_York", "2026-03-09T09:00-04:00"),
    ],
)
def test_the_next_opening_in_the_callees_zone(now: str, zone: str, opens: str) -> None:
    found = next_opening(WEEKDAYS, [zone], at(now))
    assert found is not None and found[0] == at(opens)


def test_a_window_across_midnight_and_on_the_day_of_a_dst_change() -> None:
    night = parse_window("22:00-02:00")
    # the night the clocks go forward in New York: 22:00 EST to 02:00 local, which is
    # skipped that night, so the window ends at 03:00 EDT (the moment after the change)
    found = next_opening(night, ["America/New_York"], at("2026-03-07T12:00-05:00"))
    assert found == (at("2026-03-07T22:00-05:00"), at("2026-03-08T03:00-04:00"))
    # inside it, after midnight: open now, until 02:00
    inside = next_opening(night, ["America/New_York"], at("2026-03-10T01:00-04:00"))
    assert inside == (at("2026-03-10T01:00-04:00"), at("2026-03-10T02:00-04:00"))


def test_an_ambiguous_number_gets_the_overlap_of_its_zones() -> None:
    zones = ["America/New_York", "America/Los_Angeles"]  # 3 hours apart
    # 09:00 in New York is 06:00 in Los Angeles: both are open from 12:00 New York time
    # to 20:00 New York time (17:00 in Los Angeles)
    found = next_opening(WEEKDAYS, zones, at("2026-12-15T09:00-05:00"))
    assert found == (at("2026-12-15T12:00-05:00"), at("2026-12-15T20:00-05:00"))


def test_zones_too_far_apart_never_overlap() -> None:
    # a 09:00-12:00 window in New York and in Almaty (10 hours apart) never meets
    short = parse_window("09:00-12:00")
    assert next_opening(short, ["America/New_York", "Asia/Almaty"], at("2026-12-15T09:00Z")) is None


def test_overlap_of_spans() -> None:
    assert overlap([(0, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    assert overlap([(0, 10)], [(10, 20)]) == []


@pytest.mark.parametrize(
    ("text", "days"),
    [("mon-fri", {0, 1, 2, 3, 4}), ("sat,sun", {5, 6}), ("fri-mon", {4, 5, 6, 0}), ("Tue", {1})],
)
def test_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize(
    ("window", "days", "message"),
    [
        ("0900", None, "expected HH:MM-HH:MM"),
        ("9-20", None, "expected a time HH:MM, got .9."),
        ("09:00-25:00", None, "'25:00' is not a time of day"),
        ("09:00-09:00", None, "an empty window"),
        ("09:00-20:00", "weekdays", "expected days like mon-fri"),
    ],
)
def test_bad_windows_are_said(window: str, days: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(window, days)


def test_the_default_window_is_always_open() -> None:
    now = at("2026-12-19T03:00Z")
    assert next_opening(CallingWindow(), ["Pacific/Auckland"], now) == (
        now,
        at("2026-12-20T00:00+13:00"),
    )
