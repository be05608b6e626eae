"""The campaign file: a CSV with a header, one callee a row.

`number` is required (E.164, checked with `phonenumbers`); `tz` (an IANA zone) is
optional, else the zones come from the number; every other column becomes a variable of
the call's flow (`{{ amount }}`). A bad row is rejected with its line, never skipped
silently; a bad header rejects the whole file. Pure: `read_callees` takes the text.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from ivr.errors import ConfigError

NUMBER, TZ = "number", "tz"
UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers says for a number it cannot place
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Callee:
    """A valid row: made by `read_callees`, called by the campaign."""

    line: int  # the file's line number: the row's identity in the campaign
    number: str  # E.164
    zones: tuple[str, ...]  # IANA zones; several when the number's zone is ambiguous
    vars: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """A row that is not called, and why."""

    line: int
    reason: str


def read_callees(
    text: str, source: str = "<csv>", default_zone: str | None = None
) -> tuple[list[Callee], list[Rejected]]:
    """The callees of a campaign file and its rejected rows (bad number, unknown zone,
    a number already on an earlier line). ConfigError, located, when the header is bad.
    `default_zone` is for numbers whose zone cannot be told (none in the file either)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    header = next(reader, None)
    if header is None:
        raise ConfigError(f"{source}: empty: expected a header line with a `number` column")
    names = [name.strip() for name in header]
    _check_header(names, source)
    callees, rejected = [], []
    seen: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise ConfigError(f"{source}:{line}: not CSV: {e}") from None
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not a row
        found = _callee(line, names, row, default_zone)
        if isinstance(found, Rejected):
            rejected.append(found)
        elif found.number in seen:  # nobody is called twice by one campaign
            rejected.append(Rejected(line, f"the same number as line {seen[found.number]}"))
        else:
            seen[found.number] = line
            callees.append(found)
    return callees, rejected


def _check_header(names: list[str], source: str) -> None:
    if NUMBER not in names:
        raise ConfigError(
            f"{source}:1: no `number` column (the header has: {', '.join(names)}); "
            "expected e.g. `number,tz,name`"
        )
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{source}:1: column {name!r} cannot be a flow variable: "
                "use letters, digits and _ (not first)"
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{source}:1: column(s) named twice: {', '.join(twice)}")


def _callee(
    line: int, names: list[str], row: list[str], default_zone: str | None
) -> Callee | Rejected:
    if len(row) != len(names):
        return Rejected(line, f"{len(row)} fields; the header has {len(names)}")
    cells = {name: cell.strip() for name, cell in zip(names, row, strict=True)}
    number, problem = e164(cells.pop(NUMBER))
    if number is None:
        return Rejected(line, f"number: {problem}")
    zone = cells.pop(TZ, "")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return Rejected(line, f"tz: {zone!r} is not an IANA time zone (e.g. Europe/Paris)")
        zones: tuple[str, ...] = (zone,)
    else:
        zones = zones_of(number) or ((default_zone,) if default_zone else ())
        if not zones:
            return Rejected(line, "no time zone is known for this number: add a tz column")
    return Callee(line, number, zones, cells)


def e164(text: str) -> tuple[str | None, str]:
    """The number in E.164, or None and what is wrong (the number itself is not quoted:
    errors are printed and logged)."""
    if not text.startswith("+"):
        return None, "expected E.164: + then the country code (+14155550100)"
    try:
        parsed = phonenumbers.parse(text)
    except phonenumbers.NumberParseException:
        return None, "not a phone number"
    if not phonenumbers.is_valid_number(parsed):
        return None, "not a valid number for its country"
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), ""


def zones_of(number: str) -> tuple[str, ...]:
    """The IANA zones `phonenumbers` places an E.164 number in (several when ambiguous)."""
    found = number_zones.time_zones_for_number(phonenumbers.parse(number))
    return tuple(sorted(z for z in found if z != UNKNOWN_ZONE))
