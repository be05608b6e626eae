"""The campaign command's own pieces: the campaign id, and flags refused before any file is
read or any store opened (argparse's exit 2 with the flag named)."""

from __future__ import annotations

import pytest

from ivr.cli import main
from ivr.notify.commands import campaign_id


def test_a_campaign_is_its_file_flow_and_channel() -> None:
    first = campaign_id(b"number\n+12125550100\n", "reminder", "voice")
    assert first == campaign_id(b"number\n+12125550100\n", "reminder", "voice")
    assert first.startswith("cmp-") and len(first) == 16
    others = {
        campaign_id(b"number\n+12125550101\n", "reminder", "voice"),
        campaign_id(b"number\n+12125550100\n", "survey", "voice"),
        campaign_id(b"number\n+12125550100\n", "reminder", "sms"),
    }
    assert first not in others and len(others) == 3


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--rate", "0/min", "expected a whole number of at least 1, got '0'"),
        ("--rate", "fast", "expected a whole number of at least 1, got 'fast'"),
        ("--concurrency", "-1", "expected a whole number of at least 1"),
        ("--retries", "two", "expected a whole number, got 'two'"),
        ("--retry-after", "10", "expected a span like 90s, 10m or 2h, got '10'"),
        ("--channel", "fax", "invalid choice: 'fax'"),
    ],
)
def test_bad_flags_are_refused_by_name(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["notify", "--flow", "f", "--csv", "x.csv", flag, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and message in err


def test_a_campaign_needs_a_file_and_a_flow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "--flow", "f"]) == 2
    assert "give --csv FILE (a campaign) or --report CAMPAIGN" in capsys.readouterr().err
    assert main(["notify", "--csv", "x.csv"]) == 2
    assert "--flow FLOW is required" in capsys.readouterr().err
