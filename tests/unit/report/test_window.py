"""Report windows: times as people write them, widened to whole UTC hours."""

from __future__ import annotations

import pytest

from ivr.errors import ConfigError
from ivr.report.window import Window, iso, parse_time

NOW = 1_793_000_000.0  # 2026-10-26T07:33:20Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-11-02", 1_793_577_600.0),
        ("2026-11-02T10:30", 1_793_615_400.0),
        ("2026-11-02T10:30Z", 1_793_615_400.0),
        ("2026-11-02T15:30+05:00", 1_793_615_400.0),
        ("90m", NOW - 5400),
        ("24h", NOW - 86400),
        ("7d", NOW - 7 * 86400),
        ("2w", NOW - 14 * 86400),
    ],
)
def test_times(text: str, seconds: float) -> None:
    assert parse_time(text, NOW) == seconds


def test_a_time_that_is_none_names_the_flag_and_the_forms() -> None:
    with pytest.raises(ConfigError, match=r"--until: expected a time \(2026-11-01, .*got 'soon'"):
        parse_time("soon", NOW, "--until")


def test_windows_are_whole_hours_covering_what_was_asked() -> None:
    window = Window.of(parse_time("2026-11-02T10:30"), parse_time("2026-11-02T12:00:01"))
    assert (iso(window.since), iso(window.until)) == (
        "2026-11-02T10:00:00Z",
        "2026-11-02T13:00:00Z",
    )
    assert window.describe() == "2026-11-02 10:00 to 2026-11-02 13:00 UTC, 3 whole hours"
    exact = Window.of(parse_time("2026-11-02T10:00"), parse_time("2026-11-02T11:00"))
    assert exact.describe() == "2026-11-02 10:00 to 2026-11-02 11:00 UTC, 1 whole hour"


def test_an_open_window_is_described_by_the_data_it_holds() -> None:
    first = int(parse_time("2026-11-02T10:00"))
    assert Window().describe(first, first + 7200).endswith("13:00 UTC, 3 whole hours")
    assert Window().describe() == "no calls"


def test_until_before_since_is_an_error() -> None:
    with pytest.raises(ConfigError, match="--until .* must come after --since"):
        Window.of(parse_time("2026-11-03"), parse_time("2026-11-02"))
