"""Opening hours in a time zone, for `open('name')` in flow conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Hours:
    tz: ZoneInfo
    week: tuple[tuple[tuple[int, int], ...], ...]  # per weekday, spans in minutes from midnight
    closed_on: frozenset[date] = frozenset()

    def is_open(self, at: float) -> bool:
        """Whether these hours are open at the Unix time `at`."""
        local = datetime.fromtimestamp(at, self.tz)
        if local.date() in self.closed_on:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.week[local.weekday()])


def parse_hours(spec: dict[str, object]) -> Hours:
    """Build Hours from the flow's mapping; raises ValueError with what is wrong."""
    try:
        tz = ZoneInfo(str(spec["tz"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {spec['tz']!r} (use an IANA name like Europe/London)"
        ) from None
    week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    for key, value in spec.items():
        if key in ("tz", "closed_on"):
            continue
        first, _, last = key.partition("-")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        spans = [] if value == "closed" else [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        for day in days:
            week[day] = [_span(str(s)) for s in spans]
    closed = frozenset(_day(str(d)) for d in spec.get("closed_on", ()))  # type: ignore[attr-defined]
    return Hours(tz, tuple(tuple(w) for w in week), closed)


def _span(text: str) -> tuple[int, int]:
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in text.split("-"))
    if end <= start:
        raise ValueError(f"{text!r}: the end must be after the start (split spans at midnight)")
    return start, end


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"closed_on: {text} is not a date ({e})") from None
