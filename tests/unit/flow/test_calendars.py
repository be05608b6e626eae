"""Shared holiday calendars: found beside the flow, checked with errors located in their
own file, a missing one located where the flow names it, an edit a new flow version."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from ivr.flow import check_flow
from ivr.flow.calendars import calendar_files

FLOW = """flow: t
start: a
hours:
  support: {tz: UTC, mon-sun: "09:00-18:00", calendar: CALENDARS}
nodes:
  a: {end: {}}
"""
HOLIDAYS = """days:
  - {date: "12-25", name: Christmas Day}
  - {date: "12-24", name: Christmas Eve, hours: "09:00-13:00"}
  - {date: 2026-12-28, name: Day in lieu}
"""


def write(tmp_path: Path, calendars: str = "holidays", **files: str) -> Path:
    (tmp_path / "calendars").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "calendars" / f"{name}.yaml").write_text(text)
    flow = tmp_path / "t.yaml"
    flow.write_text(FLOW.replace("CALENDARS", calendars))
    return flow


def utc(text: str) -> float:
    return datetime.fromisoformat(f"{text}+00:00").timestamp()


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2026-12-23T10:00", True),
        ("2030-12-25T10:00", False),
        ("2026-12-24T12:00", True),
        ("2026-12-24T14:00", False),
        ("2026-12-28T10:00", False),
        ("2027-12-28T10:00", True),
    ],
)
def test_a_calendar_closes_its_days(tmp_path: Path, when: str, open_: bool) -> None:
    flow, problems = check_flow(write(tmp_path, holidays=HOLIDAYS), {})
    assert problems == [] and flow is not None
    assert flow.hours["support"].is_open(utc(when)) is open_


def test_several_calendars_first_one_first(tmp_path: Path) -> None:
    lieu = 'days: [{date: "12-24", name: Closed all Christmas Eve}, {date: "07-04", name: x}]'
    flow, problems = check_flow(write(tmp_path, "[holidays, lieu]", holidays=HOLIDAYS, lieu=lieu))
    assert problems == [] and flow is not None
    assert flow.hours["support"].is_open(utc("2026-12-24T12:00"))  # holidays' short day
    assert not flow.hours["support"].is_open(utc("2026-07-04T12:00"))


def test_a_missing_calendar_is_located_where_the_flow_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[holidays, bank_holidays]", holidays=HOLIDAYS)
    flow, problems = check_flow(path, {})
    assert flow is None
    assert [str(p) for p in problems] == [
        f"{path}:4:67: hours.support.calendar[1]: no calendar 'bank_holidays': expected "
        "calendars/bank_holidays.yaml beside the flow file"
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            'days:\n  - {date: "12-32", name: x}\n',
            "2:12: days[0].date",
            "12-32 is not a date (day is out of range for month)",
        ),
        (
            'days:\n  - {date: "Dec 25", name: x}\n',
            "2:12: days[0].date",
            "'Dec 25' is not valid here (YYYY-MM-DD, or MM-DD for every year)",
        ),
        ('days:\n  - {date: "12-25"}\n', "2:5: days[0]", "missing 'name'"),
        (
            'days:\n  - {date: "12-25", name: x, open: "09:00-13:00"}\n',
            "2:30: days[0].open",
            "unknown key 'open' (expected one of: date, hours, name)",
        ),
        ("days: [\n", "2:1", "YAML syntax"),
    ],
)
def test_calendar_errors_are_located_in_the_calendar(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    flow, problems = check_flow(write(tmp_path, holidays=text), {})
    assert flow is None
    (problem,) = problems
    assert str(problem).startswith(f"{tmp_path / 'calendars' / 'holidays.yaml'}:{where}")
    assert message in problem.message


def test_editing_a_calendar_makes_a_new_version(tmp_path: Path) -> None:
    path = write(tmp_path, holidays=HOLIDAYS)
    before, _ = check_flow(path, {})
    (tmp_path / "calendars" / "holidays.yaml").write_text(
        HOLIDAYS + '  - {date: "01-01", name: New Year}\n'
    )
    after, _ = check_flow(path, {})
    assert before is not None and after is not None
    assert before.version != after.version
    assert after.hours["support"].is_open(utc("2027-01-01T10:00")) is False
    assert calendar_files(tmp_path) == [tmp_path / "calendars" / "holidays.yaml"]


def test_the_repository_flows_calendar_loads() -> None:
    repo = Path(__file__).resolve().parents[3] / "flows"
    flow, problems = check_flow(repo / "telebanking.yaml", {"IVR_FLOW_BANK_API": "http://x"})
    assert flow is not None, problems
    support = flow.hours["support"]
    assert not support.is_open(datetime.fromisoformat("2027-03-22T10:00+05:00").timestamp())
    assert support.is_open(datetime.fromisoformat("2026-12-31T12:00+05:00").timestamp())
    assert not support.is_open(datetime.fromisoformat("2026-12-31T14:00+05:00").timestamp())
