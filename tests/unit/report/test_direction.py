"""Outbound calls (campaigns, notifications) are counted apart: `ivr report` shows inbound
containment as its headline and the outbound calls beside it, never mixed in."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ivr.cli import main
from ivr.store import open_records
from tests.unit.report.conftest import DAY1, TELE, call

# inbound: 4 calls, 1 contained (25%); outbound: 3 calls, 2 contained
CALLS = [
    call("in1", DAY1, 30, "contained", TELE),
    call("in2", DAY1 + 60, 30, "transferred", TELE, reason="global"),
    call("in3", DAY1 + 120, 30, "abandoned", TELE),
    call("in4", DAY1 + 180, 30, "transferred", TELE, reason="option"),
    call("out1", DAY1 + 240, 30, "contained", TELE, direction="outbound"),
    call("out2", DAY1 + 300, 30, "contained", TELE, direction="outbound"),
    call("out3", DAY1 + 360, 30, "abandoned", TELE, direction="outbound"),
]


@pytest.fixture
def mixed_url(store_url: str) -> str:
    async def fill() -> None:
        store = open_records(store_url)
        try:
            await store.add(CALLS)
        finally:
            await store.close()

    asyncio.run(fill())
    return store_url


def report(capsys: pytest.CaptureFixture[str], url: str, *more: str) -> Any:
    assert main(["report", "--records", url, "--json", *more]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_headline_is_inbound_and_outbound_is_beside_it(
    mixed_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    found = report(capsys, mixed_url)
    assert (found["calls"], found["containment"]["calls"]) == (4, 1)
    assert found["filters"]["direction"] == "inbound"
    directions = found["directions"]
    assert {d: (v["calls"], v["containment"]["calls"]) for d, v in directions.items()} == {
        "inbound": (4, 1),
        "outbound": (3, 2),
    }
    outbound = report(capsys, mixed_url, "--direction", "outbound")
    assert (outbound["calls"], outbound["containment"]["calls"]) == (3, 2)
    every = report(capsys, mixed_url, "--direction", "all")
    assert (every["calls"], every["filters"]["direction"]) == (7, None)


def test_the_text_report_says_outbound_apart(
    mixed_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--records", mixed_url]) == 0
    out = capsys.readouterr().out
    assert "Containment (contained / all ended): 25.0% (95% CI" in out
    assert "Outbound calls, not counted above: 3; contained 66.7% (95% CI" in out
    assert "Filters: direction=inbound" in out
