"""Opening hours in a time zone, for `open('name')` in flow conditions.

A day's spans come from, first match wins: an exact date (`2026-12-31`), a date that
recurs every year (`12-25`), then the weekday. Dates come from the hours' own `closed_on`
and from shared calendars (ivr/flow/calendars.py); the hours' own win. Ops may close hours
for a while (`Closure`, `ivr hours close`): the flow's Hours get it as an overlay
(`with_closures`), handed in by the runner, so the engine stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Spans = tuple[tuple[int, int], ...]  # opening spans in minutes from midnight
DayKey = date | tuple[int, int]  # an exact date, or (month, day) every year


class HoursError(ValueError):
    """What is wrong in hours, and where below the hours' own path (`closed_on`, 2, ...)."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Day:
    """A date with hours of its own (none: closed all day), from `closed_on` or a calendar."""

    key: DayKey
    spans: Spans = ()
    name: str = ""


@dataclass(frozen=True)
class Closure:
    """Hours closed by ops (`ivr hours close`), read from the ops-state table: closed
    until `until` (Unix time; None: until reopened), callers told `message`. `flow` ""
    closes the hours of that name in every flow."""

    hours: str
    flow: str = ""
    until: float | None = None
    message: str = ""
    closed_at: float = 0.0

    def covers(self, at: float) -> bool:
        return self.until is None or at < self.until


@dataclass(frozen=True)
class Hours:
    """Compiled opening hours: made by the compiler, read by `open()` in the engine."""

    tz: ZoneInfo
    week: tuple[Spans, ...]  # per weekday, Monday first
    dates: Mapping[date, Spans] = field(default_factory=dict)
    yearly: Mapping[tuple[int, int], Spans] = field(default_factory=dict)
    closure: Closure | None = None

    def spans_on(self, day: date) -> Spans:
        found = self.dates.get(day)
        if found is None:
            found = self.yearly.get((day.month, day.day))
        return self.week[day.weekday()] if found is None else found

    def is_open(self, at: float) -> bool:
        """Whether these hours are open at the Unix time `at`."""
        if self.closure is not None and self.closure.covers(at):
            return False
        local = datetime.fromtimestamp(at, self.tz)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.spans_on(local.date()))

    def closed_message(self, at: float) -> str:
        """What ops said when they closed these hours, while the closure lasts; else ""."""
        closure = self.closure
        return closure.message if closure is not None and closure.covers(at) else ""


def parse_hours(spec: Mapping[str, object], calendars: Sequence[Sequence[Day]] = ()) -> Hours:
    """Build Hours from the flow's mapping and the days of the calendars it names (in
    order); raises HoursError with what is wrong and where."""
    try:
        tz = ZoneInfo(str(spec["tz"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(
            f"unknown time zone {spec['tz']!r} (use an IANA name like Europe/London)", ("tz",)
        ) from None
    week: list[Spans] = [() for _ in DAYS]
    for key, value in spec.items():
        if key in ("tz", "closed_on", "calendar"):
            continue
        first, _, last = key.partition("-")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        spans = parse_spans(value, (key,))
        for day in days:
            week[day] = spans
    listed: Any = spec.get("closed_on") or ()
    own = [parse_day(d, ("closed_on", i)) for i, d in enumerate(listed)]
    dates: dict[date, Spans] = {}
    yearly: dict[tuple[int, int], Spans] = {}
    for day in [*own, *(d for calendar in calendars for d in calendar)]:
        if isinstance(day.key, date):
            dates.setdefault(day.key, day.spans)  # own first: they win, then calendars in order
        else:
            yearly.setdefault(day.key, day.spans)
    return Hours(tz, tuple(week), dates, yearly)


def parse_spans(value: object, path: tuple[str | int, ...]) -> Spans:
    """`"09:00-18:00"`, a list of those, or `closed` (no spans)."""
    if value == "closed":
        return ()
    items = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    out = []
    for i, text in enumerate(items):
        start, end = (int(t[:2]) * 60 + int(t[3:]) for t in str(text).split("-"))
        if end <= start:
            where = path if isinstance(value, str) else (*path, i)
            raise HoursError(
                f"{text!r}: the end must be after the start (split spans at midnight)", where
            )
        out.append((start, end))
    return tuple(out)


def parse_day(entry: object, path: tuple[str | int, ...] = ()) -> Day:
    """A `closed_on` or calendar entry: "YYYY-MM-DD", "MM-DD" (every year), or a mapping
    `{date, hours?, name?}` (hours: that day's spans; without them, closed all day)."""
    if isinstance(entry, Mapping):
        spans = parse_spans(entry["hours"], (*path, "hours")) if "hours" in entry else ()
        key = day_key(str(entry["date"]), (*path, "date"))
        return Day(key, spans, str(entry.get("name") or ""))
    return Day(day_key(str(entry), path))


def day_key(text: str, path: tuple[str | int, ...] = ()) -> DayKey:
    """`2026-12-31` (that date) or `12-25` (every year; `02-29` in leap years only)."""
    try:
        if len(text) == 5:
            month, day = int(text[:2]), int(text[3:])
            date(2000, month, day)  # a leap year: 02-29 is a date, in the years that have it
            return (month, day)
        return date.fromisoformat(text)
    except ValueError as e:
        raise HoursError(f"{text} is not a date ({e})", path) from None


def with_closures(
    hours: Mapping[str, Hours], flow_id: str, closures: Sequence[Closure]
) -> dict[str, Hours] | None:
    """`hours` with ops' closures of this flow laid over them; None when none applies (the
    flow's own hours serve as they are). A closure for this flow beats one for all flows."""
    mine = [c for c in closures if c.hours in hours and c.flow in ("", flow_id)]
    if not mine:
        return None
    out = dict(hours)
    for closure in sorted(mine, key=lambda c: c.flow != ""):  # a flow's own one last: it wins
        out[closure.hours] = replace(hours[closure.hours], closure=closure)
    return out


def closing_until(hours: Hours, text: str, now: float) -> float:
    """The Unix time `--until` means: an ISO datetime (its own offset, else the hours' zone)
    or HH:MM, the next such time in the hours' zone (tomorrow's when it has passed today).
    Raises ValueError with what would be right."""
    try:
        if len(text) == 5 and text[2] == ":":
            wall = time.fromisoformat(text)
            today = datetime.fromtimestamp(now, hours.tz).date()
            for day in (today, today + timedelta(days=1)):
                at = datetime.combine(day, wall, hours.tz).timestamp()
                if at > now:
                    return at
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--until {text!r}: write HH:MM (in the hours' time zone, {hours.tz.key}) or an "
            "ISO datetime such as 2026-12-24T18:00+05:00"
        ) from None
    at = (when if when.tzinfo else when.replace(tzinfo=hours.tz)).timestamp()
    if at <= now:
        raise ValueError(f"--until {text!r} has passed already")
    return at
