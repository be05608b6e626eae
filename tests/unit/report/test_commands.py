"""`ivr report`, `ivr calls` and `ivr graph --traffic` through the command's main(argv)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.cli import main
from tests.unit.report.conftest import FLOWS, REPO


@pytest.fixture(autouse=True)
def _flows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_FLOWS", str(FLOWS))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_report_json(known_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "report", "--records", known_url, "--json")
    found = json.loads(out)
    assert status == 0
    assert found["format"] == "ivr-report/1"
    assert (found["calls"], found["containment"]["calls"], found["resolution"]["calls"]) == (
        12,
        3,
        4,
    )
    assert list(found) == [
        "format",
        "generated_at",
        "records",
        "window",
        "filters",
        "calls",
        "flows",
        "outcomes",
        "containment",
        "resolution",
        "abandoned",
        "transfers",
        "zero_outs",
        "channels",
        "tasks",
        "surveys",
        "deflections",
        "funnel",
        "inputs",
        "prompts",
        "time_in_ivr",
        "per_day",
        "directions",
    ]


def test_report_text_says_the_window_and_the_figures(
    known_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys,
        "report",
        "--records",
        known_url,
        "--since",
        "2026-11-02T10:30",
        "--flow",
        "telebanking",
    )
    assert status == 0
    assert "Window: 2026-11-02 10:00 to 2026-11-03 10:00 UTC, 24 whole hours" in out
    assert "Filters: flow=telebanking" in out
    assert "Containment (contained / all ended): 20.0% (95% CI" in out
    assert "after a resolved task 1 (10.0%), before 2 (20.0%)" in out
    assert "Drop-off funnel: telebanking" in out
    assert "Prompts that confuse callers: telebanking" in out


def test_report_csv(known_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "report", "--records", known_url, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    found = {(r["section"], r["item"], r["metric"]): r["value"] for r in rows}
    assert found[("calls", "", "calls")] == "12"
    assert found[("transfers", "by_reason/global", "calls")] == "1"
    assert found[("funnel", "telebanking/main", "reached")] == "10"
    assert found[("per_day", "2026-11-03", "calls")] == "2"
    assert found[("time_in_ivr", "by_outcome/contained", "median_bucket")] == "45;60"


def test_report_compare_and_experiment(known_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "report", "--records", known_url, "--flow", "telebanking", "--compare", "1", "2"
    )
    assert status == 0
    assert "A: 1" in out and "B: 2" in out and "+37.5 pp" in out  # containment 12.5% -> 50%
    status, out, _ = run(
        capsys, "report", "--records", known_url, "--experiment", "voice_vs_dtmf", "--json"
    )
    assert json.loads(out)["experiment"]["variants"]["telebanking_voice"]["calls"] == 2


def test_report_html_is_one_page_with_charts(
    known_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    status, out, _ = run(capsys, "report", "--records", known_url, "--html", str(page))
    text = page.read_text()
    assert status == 0 and out == f"wrote {page}\n"
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<svg") == 5  # outcomes, transfers, two funnels, inputs
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org", "")


def test_report_without_records_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "report", "--records", f"sqlite://{tmp_path}/none.db")
    assert status == 2
    assert err.startswith("ivr: records: no call records at ") and err.count("\n") == 1


def test_report_defaults_to_the_servers_records(
    known_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if known_url.startswith("sqlite://"):  # the records under IVR_DATA
        monkeypatch.setenv("IVR_DATA", str(Path(known_url.removeprefix("sqlite://")).parent))
        monkeypatch.delenv("IVR_RECORDS", raising=False)
    else:
        monkeypatch.setenv("IVR_RECORDS", known_url)
    _, out, _ = run(capsys, "report", "--json")
    assert json.loads(out)["calls"] == 12


def test_a_bad_time_is_a_one_line_error(known_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "report", "--records", known_url, "--since", "yesterday")
    assert status == 2 and "--since: expected a time" in err


def test_calls_list_filters(
    known_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("calls", "list", "--records", known_url, "--data", str(data_dir))
    _, out, _ = run(capsys, *base)
    lines = out.splitlines()
    assert len(lines) == 13 and lines[1].split()[2] == "c10"  # newest first
    assert "**********21" in out and "+15557654321" not in out  # masked: the last 2 digits
    _, out, _ = run(capsys, *base, "--outcome", "abandoned", "--node", "ask_account")
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["c7"]
    _, out, _ = run(capsys, *base, "--node", "main", "--flow", "telebanking", "--limit", "2")
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["c8", "c6"]
    _, out, _ = run(capsys, *base, "--since", "2026-11-03", "--reveal")
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["c10", "c9"]
    assert "+15557654321" in out


def test_calls_show_decrypts_the_transcript(
    known_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, "calls", "show", "c4", "--records", known_url, "--data", str(data_dir)
    )
    assert status == 0
    assert "outcome  transferred: reason on_error (lookup), decided at lookup, queue support" in out
    assert "caller   **********21" in out
    assert "said 'pizza' (confidence 0.41): no match" in out
    assert "heard the no match re-prompt (attempt 2)" in out
    assert "pressed '****': matched" in out
    assert "backend answered 500" in out


def test_calls_show_without_the_keys_says_so(
    known_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IVR_DATA_KEY", raising=False)
    status, out, _ = run(
        capsys, "calls", "show", "c1", "--records", known_url, "--data", str(tmp_path / "elsewhere")
    )
    assert status == 0 and "(encrypted: no keys here" in out
    assert not (tmp_path / "elsewhere").exists()  # no keys were made
    status, _, err = run(capsys, "calls", "show", "nope", "--records", known_url)
    assert status == 1 and "no call 'nope'" in err


def test_graph_traffic(known_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    flow = str(FLOWS / "telebanking.yaml")
    status, out, _ = run(capsys, "graph", flow, "--traffic", "--records", known_url)
    assert status == 0
    assert "10 calls, 1 hung up, 2 to agent" in out  # main
    assert "3 calls (30%)" in out  # main -> check_hours: c2, c3, c10 of main's 10
    assert "linkStyle" in out
    _, out, _ = run(capsys, "graph", flow, "--traffic", "--records", known_url, "--format", "dot")
    assert 'penwidth=8.0, color="#b71c1c"' in out  # welcome -> main: the busiest
    _, out, _ = run(capsys, "graph", flow, "--traffic", "--records", known_url, "--format", "svg")
    assert out.lstrip().startswith("<?xml") and "<svg" in out


def test_the_ivr_command_runs_report(known_url: str) -> None:
    """As a person runs it: a process, the installed entry point's module."""
    done = subprocess.run(
        [sys.executable, "-m", "ivr", "report", "--records", known_url, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["calls"] == 12
