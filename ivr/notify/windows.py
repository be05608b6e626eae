"""Calling windows: when a campaign may call someone, in the callee's own time zone.

A window is a span of local time (`09:00-20:00`; one that ends before it starts crosses
midnight) on some weekdays (`mon-fri`), read in each of the callee's zones. A number whose
zone is ambiguous (several zones for one country code or area, as `phonenumbers` says) gets
the most restrictive window: a time is inside only when it is inside in every one of its
zones. When that overlap is empty, the callee is never called ("outside window"): a `tz`
column in the campaign file settles the zone. Pure: the time is always handed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON = 8  # days looked ahead for an opening: past a week, none will come
Span = tuple[float, float]  # Unix times, start included, end excluded

_TIME = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class CallingWindow:
    """Local minutes from midnight [start, end) on `days` (0 = Monday): made by
    `parse_window`, read by the campaign before each call."""

    start: int = 0
    end: int = 24 * 60
    days: frozenset[int] = frozenset(range(7))

    def describe(self) -> str:
        days = ",".join(DAYS[d] for d in sorted(self.days))
        return f"{_hhmm(self.start)}-{_hhmm(self.end)} {days}"


def parse_window(text: str | None, days: str | None = None) -> CallingWindow:
    """`--window 09:00-20:00` and `--days mon-fri` (or `mon,wed,sat`, `mon-fri,sun`);
    ValueError saying what is expected."""
    start, end = 0, 24 * 60
    if text:
        first, dash, second = text.partition("-")
        if not dash:
            raise ValueError(f"--window: expected HH:MM-HH:MM (09:00-20:00), got {text!r}")
        start, end = _minutes(first, "--window"), _minutes(second, "--window")
        if start == end:
            raise ValueError(f"--window {text!r}: an empty window (start equals end)")
    return CallingWindow(start, end, parse_days(days) if days else frozenset(range(7)))


def parse_days(text: str) -> frozenset[int]:
    found: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise ValueError(f"--days: expected days like mon-fri or mon,wed,sat, got {text!r}")
        a, b = DAYS.index(first), DAYS.index(last if dash else first)
        found.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(found)


def _minutes(text: str, flag: str) -> int:
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{flag}: expected a time HH:MM, got {text!r}")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{flag}: {text!r} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def spans(window: CallingWindow, zone: ZoneInfo, since: float, days: int = HORIZON) -> list[Span]:
    """The window's openings in `zone` that end after `since`, over the next `days`,
    as Unix times: wall-clock times, so a DST change moves them as it moves the clocks."""
    today = datetime.fromtimestamp(since, zone).date()
    out = []
    for offset in range(-1, days + 1):  # yesterday's window may cross midnight into today
        day = today + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        end = window.end if window.end > window.start else window.end + 24 * 60
        span = (_at(day, window.start, zone), _at(day, end, zone))
        if span[1] > since:
            out.append(span)
    return out


def _at(day: date, minutes: int, zone: ZoneInfo) -> float:
    """Unix time of local `day` + `minutes` in `zone` (a wall-clock time that a spring
    change skips reads as the moment after the change)."""
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
    return naive.replace(tzinfo=zone).astimezone(UTC).timestamp()


def overlap(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The times in both lists of sorted, disjoint spans."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def next_opening(window: CallingWindow, zones: Iterable[str], now: float) -> Span | None:
    """When the callee may be called: `(at, until)` with `at` = `now` while the window is
    open in all their zones, else the next opening; None when none comes in HORIZON days."""
    common: list[Span] | None = None
    for name in zones:
        found = spans(window, ZoneInfo(name), now)
        common = found if common is None else overlap(common, found)
    for start, end in common or ():
        if end > now:
            return max(start, now), end
    return None
