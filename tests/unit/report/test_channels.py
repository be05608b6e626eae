"""Containment by channel in `ivr report`: a known mix of calls and text conversations, on
SQLite and PostgreSQL, in the JSON, the terminal, CSV and the HTML page; `--channel`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ivr.cli import main
from ivr.report import compose, render_csv, render_html, render_text
from ivr.report.query import Filters, Reader, connect
from ivr.store import open_records
from ivr.web.dashboard import panel
from tests.unit.report.conftest import DAY1, FLOWS, TELE, call

# ten: voice 3 (2 contained, 1 transferred), sms 4 (1 contained, 2 transferred, 1
# abandoned), whatsapp 2 (1 contained, 1 failed), chat 1 (abandoned)
MIX = [
    ("voice", "contained"), ("voice", "contained"), ("voice", "transferred"),
    ("sms", "contained"), ("sms", "transferred"), ("sms", "transferred"), ("sms", "abandoned"),
    ("whatsapp", "contained"), ("whatsapp", "failed"),
    ("chat", "abandoned"),
]  # fmt: skip


@pytest.fixture
def mixed_url(store_url: str) -> str:
    async def fill() -> None:
        store = open_records(store_url)
        try:
            await store.add(
                [
                    call(f"m{i}", DAY1 + 60 * i, 30, outcome, TELE, channel=channel)
                    for i, (channel, outcome) in enumerate(MIX)
                ]
            )
        finally:
            await store.close()

    asyncio.run(fill())
    return store_url


@pytest.fixture
def reader(mixed_url: str) -> Iterator[Reader]:
    with connect(mixed_url) as found:
        yield found


def figures(**counts: int) -> dict[str, Any]:
    out = {"calls": sum(counts.values()), "contained": 0, "transferred": 0}
    out |= {"abandoned": 0, "failed": 0, **counts}
    out["containment"] = counts.get("contained", 0) / out["calls"] if out["calls"] else None
    return out


def test_containment_by_channel(reader: Reader) -> None:
    found = compose.report(reader, Filters(), FLOWS)
    assert found["calls"] == 10
    assert found["channels"] == {
        "voice": figures(contained=2, transferred=1),
        "sms": figures(contained=1, transferred=2, abandoned=1),
        "whatsapp": figures(contained=1, failed=1),
        "chat": figures(abandoned=1),
    }
    assert found["containment"]["calls"] == 4  # of 10: every channel together


def test_the_channel_filter_counts_that_channel_only(reader: Reader) -> None:
    sms = compose.report(reader, Filters(channel="sms"), FLOWS)
    assert (sms["calls"], sms["containment"]["calls"], sms["containment"]["rate"]) == (4, 1, 0.25)
    assert sms["outcomes"]["transferred"]["calls"] == 2
    assert sms["channels"]["sms"] == figures(contained=1, transferred=2, abandoned=1)
    assert sms["channels"]["voice"] == figures()


def test_every_format_shows_the_section(reader: Reader) -> None:
    found = compose.report(reader, Filters(), FLOWS)
    text = render_text.render(found)
    at = text.index("Containment by channel")
    assert text[at:].splitlines()[1:6] == [
        "  channel   calls  contained  transferred  abandoned  failed  containment",
        "  voice         3          2            1          0       0        66.7%",
        "  sms           4          1            2          1       0        25.0%",
        "  whatsapp      2          1            0          0       1        50.0%",
        "  chat          1          0            0          1       0         0.0%",
    ]
    rows = list(csv.reader(io.StringIO(render_csv.render(found))))
    sms = {r[2]: r[3] for r in rows if r[:2] == ["channels", "sms"]}
    assert sms == {
        "calls": "4",
        "contained": "1",
        "transferred": "2",
        "abandoned": "1",
        "failed": "0",
        "containment": "0.25",
    }
    page = render_html.render(found)
    assert "Containment by channel (calls and text conversations)" in page
    assert "<td>whatsapp</td>" in page
    admin = panel({"report": found, "rates_per_day": [], "experiments": {}})  # /dashboard
    assert "Containment by channel (calls and text conversations)" in admin
    assert "<td>chat</td>" in admin


def test_report_channel_flag(
    mixed_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_FLOWS", str(FLOWS))
    assert main(["report", "--records", mixed_url, "--channel", "whatsapp", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["calls"], found["filters"]["channel"]) == (2, "whatsapp")
    assert found["channels"]["whatsapp"]["containment"] == 0.5
    assert sum(c["calls"] for c in found["channels"].values()) == 2


def test_a_report_without_text_conversations_lists_voice_only() -> None:
    empty = {"voice": figures(contained=1), **{c: figures() for c in ("sms", "whatsapp", "chat")}}
    lines = render_text.tables({**_minimal(), "channels": empty})[1][2]
    assert [row[0] for row in lines] == ["voice"]


def _minimal() -> dict[str, Any]:
    return {
        "outcomes": {},
        "transfers": {"by_reason": {}, "by_queue": {}},
        "tasks": {},
        "funnel": {},
        "inputs": {"inputs": 0, "no_input": {"inputs": 0, "rate": None}, "modes": {}},
        "prompts": {},
        "time_in_ivr": {"by_outcome": {}, "all": _times()},
        "per_day": [],
    }


def _times() -> dict[str, Any]:
    return {"calls": 0, "median": None, "p90": None, "mean": None}
