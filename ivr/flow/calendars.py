"""Shared holiday calendars: `calendars/NAME.yaml` beside the flows, named by hours'
`calendar: NAME`, read with the flow that names them and checked with located errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ivr.errors import FlowError, Problem
from ivr.flow.hours import Day, HoursError, parse_day
from ivr.flow.loader import Document, read_flow_file
from ivr.flow.schema import packaged, violations

DIRECTORY = "calendars"  # beside the flow files
FindCalendar = Callable[[str], Document | None]  # calendar name -> its document


@cache
def calendar_schema() -> dict[str, Any]:
    """The calendar files' JSON Schema."""
    return packaged("calendar.schema.json")


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(calendar_schema())


def calendar_days(doc: Document) -> tuple[list[Day], list[Problem]]:
    """The days of a calendar document, and every problem in it, located in its file."""
    problems = violations(doc, _validator())
    if problems:
        return [], problems
    days = []
    for i, entry in enumerate(doc.data["days"]):
        try:
            days.append(parse_day(entry, ("days", i)))
        except HoursError as e:
            problems.append(doc.problem(e.path, str(e)))
    return days, problems


def check_calendar(path: Path) -> tuple[list[Day], list[Problem]]:
    """A calendar file's days and every problem in it (`ivr validate`)."""
    try:
        return calendar_days(read_flow_file(path))
    except FlowError as e:
        return [], e.problems


def calendar_finder(directory: Path, env: Mapping[str, str] | None = None) -> FindCalendar:
    """Finds a calendar by name in `directory/calendars` (None: no such file); a file that
    is not YAML raises FlowError, located in it."""

    def find(name: str) -> Document | None:
        for suffix in (".yaml", ".yml"):
            path = directory / DIRECTORY / f"{name}{suffix}"
            if path.is_file():
                return read_flow_file(path, env)
        return None

    return find


def calendar_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The calendar files beside the flows in `directory`, sorted (for reloads to watch)."""
    found = Path(directory) / DIRECTORY
    if not found.is_dir():
        return []
    return sorted(p for p in found.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
