"""The time window of a report: `--since/--until` read as times, widened to whole UTC hours.

Reports add up hourly rollups, so a window is a run of whole hours: `since` is moved
back to the start of its hour and `until` on to the end of its own, so every hour the
asked-for times touch is in, and the report says the exact window it used.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from ivr.errors import ConfigError
from ivr.store.records import HOUR

DAY = 86400
_AGO = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": 60, "h": HOUR, "d": DAY, "w": 7 * DAY}
FORMS = "2026-11-01, 2026-11-01T09:00, 2026-11-01T09:00+05:00, or 90m / 24h / 7d / 2w ago"


def parse_time(text: str, now: float | None = None, name: str = "--since") -> float:
    """`text` as Unix seconds: an ISO date or date-time (UTC unless it has an offset), or
    a span back from now (`24h`, `7d`)."""
    text = text.strip()
    ago = _AGO.match(text.lower())
    if ago:
        now = time.time() if now is None else now
        return now - int(ago[1]) * _UNITS[ago[2]]
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name}: expected a time ({FORMS}), got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def hour_floor(seconds: float) -> int:
    return int(seconds // HOUR) * HOUR


def hour_ceil(seconds: float) -> int:
    return -int(-seconds // HOUR) * HOUR


def iso(seconds: float | None) -> str | None:
    """`seconds` as an ISO 8601 UTC time (`2026-11-01T09:00:00Z`)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Window:
    """Whole hours [since, until) in Unix seconds; None: open on that side."""

    since: int | None = None
    until: int | None = None

    @classmethod
    def of(cls, since: float | None, until: float | None) -> Window:
        """The whole hours covering the times asked for."""
        start = None if since is None else hour_floor(since)
        end = None if until is None else hour_ceil(until)
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"--until ({iso(until)}) must come after --since ({iso(since)})")
        return cls(start, end)

    def describe(self, first: int | None = None, last: int | None = None) -> str:
        """The window in words, with the data's own first and last hour where it is open."""
        since = self.since if self.since is not None else first
        until = self.until if self.until is not None else (None if last is None else last + HOUR)
        if since is None or until is None:
            return "no calls"
        hours = (until - since) // HOUR
        return (
            f"{_short(since)} to {_short(until)} UTC, {hours} whole hour{'s' if hours != 1 else ''}"
        )


def _short(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")
