"""The campaign file: numbers checked and normalised, zones from the tz column or the
number, other columns as the flow's variables, bad rows rejected with their line, a bad
header refused with its line."""

from __future__ import annotations

import pytest

from ivr.errors import ConfigError
from ivr.notify.callees import Callee, Rejected, e164, read_callees, zones_of

FILE = """number,tz,name,amount
+12125550100,,Ann,12.50
+442071234567,Europe/Paris,Bob,3

12125550101,,Cy,1
+1212555,,Di,2
+61212345678,Mars/Olympus,Ed,3
+12125550100,,Ann again,4
+18005550100,,Fay
+77012345678,,Gus,5
"""


def test_rows_become_callees_and_bad_rows_are_rejected_with_their_line() -> None:
    callees, rejected = read_callees(FILE, "due.csv")
    assert callees == [
        Callee(2, "+12125550100", ("America/New_York",), {"name": "Ann", "amount": "12.50"}),
        Callee(3, "+442071234567", ("Europe/Paris",), {"name": "Bob", "amount": "3"}),
        Callee(10, "+77012345678", zones_of("+77012345678"), {"name": "Gus", "amount": "5"}),
    ]
    assert len(callees[2].zones) > 1  # Kazakhstan and Russia share +7: ambiguous
    assert rejected == [
        Rejected(5, "number: expected E.164: + then the country code (+14155550100)"),
        Rejected(6, "number: not a valid number for its country"),
        Rejected(7, "tz: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Paris)"),
        Rejected(8, "the same number as line 2"),
        Rejected(9, "3 fields; the header has 4"),
    ]


def test_a_number_with_no_known_zone_needs_a_tz_column_or_a_default() -> None:
    text = "number\n+883510012345\n"  # an international network: no time zone
    assert read_callees(text)[1] == [
        Rejected(2, "no time zone is known for this number: add a tz column")
    ]
    callees, rejected = read_callees(text, default_zone="UTC")
    assert [c.zones for c in callees] == [("UTC",)] and not rejected


def test_a_byte_order_mark_and_spaces_are_tolerated() -> None:
    callees, _ = read_callees("\ufeffnumber , name\n +12125550100 , Ann \n")
    assert callees == [Callee(2, "+12125550100", ("America/New_York",), {"name": "Ann"})]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "due.csv: empty: expected a header line with a `number` column"),
        ("phone,name\n", "due.csv:1: no `number` column (the header has: phone, name)"),
        ("number,first name\n", "due.csv:1: column 'first name' cannot be a flow variable"),
        ("number,a,a\n", "due.csv:1: column(s) named twice: a"),
        ('number\n"+1212\n', "due.csv:2: not CSV"),
    ],
)
def test_a_bad_file_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        read_callees(text, "due.csv")
    assert str(e.value).startswith(message)


def test_e164_normalises_and_never_quotes_the_number() -> None:
    assert e164("+1 (212) 555-0100") == ("+12125550100", "")
    number, problem = e164("+999123")
    assert number is None and "999" not in problem
