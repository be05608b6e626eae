"""The report's sections over known records, on SQLite and PostgreSQL: exact figures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ivr.report import compose
from ivr.report.query import Filters, Reader, connect
from ivr.report.sections import percentile
from ivr.report.window import Window
from ivr.stats import fisher_exact, wilson
from tests.unit.report.conftest import DAY1, DAY2, FLOWS


@pytest.fixture
def reader(known_url: str) -> Iterator[Reader]:
    with connect(known_url) as found:
        yield found


@pytest.fixture
def report(reader: Reader) -> dict[str, Any]:
    return compose.report(reader, Filters(), FLOWS)


def calls(counts: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {k: v["calls"] for k, v in counts.items()}


def test_calls_outcomes_and_the_window(report: dict[str, Any]) -> None:
    assert report["calls"] == 12
    assert report["flows"] == {
        "telebanking": {
            "calls": 10,
            "versions": [  # oldest first
                {
                    "version": "1",
                    "calls": 8,
                    "since": "2026-11-02T10:00:00Z",
                    "until": "2026-11-02T11:00:00Z",
                },
                {
                    "version": "2",
                    "calls": 2,
                    "since": "2026-11-03T09:00:00Z",
                    "until": "2026-11-03T10:00:00Z",
                },
            ],
        },
        "telebanking_voice": {
            "calls": 2,
            "versions": [
                {
                    "version": "1",
                    "calls": 2,
                    "since": "2026-11-02T12:00:00Z",
                    "until": "2026-11-02T13:00:00Z",
                }
            ],
        },
    }
    assert calls(report["outcomes"]) == {
        "contained": 3,
        "transferred": 5,
        "abandoned": 3,
        "failed": 1,
    }
    assert report["outcomes"]["transferred"]["rate"] == 5 / 12
    assert report["window"] == {
        "since": "2026-11-02T10:00:00Z",
        "until": "2026-11-03T10:00:00Z",  # the end of the last hour with calls
        "hours": 24,
        "text": "2026-11-02 10:00 to 2026-11-03 10:00 UTC, 24 whole hours",
    }


def test_containment_and_self_service_resolution_with_wilson_intervals(
    report: dict[str, Any],
) -> None:
    low, high = wilson(3, 12)
    assert report["containment"] == {"calls": 3, "of": 12, "rate": 0.25, "low": low, "high": high}
    # c1, c5 (hung up after the balance), c9 and v1; c10's callback task went to an agent
    low, high = wilson(4, 12)
    assert report["resolution"] == {"calls": 4, "of": 12, "rate": 4 / 12, "low": low, "high": high}


def test_abandoned_is_split_after_and_before_a_task(report: dict[str, Any]) -> None:
    assert report["abandoned"] == {
        "calls": 3,
        "rate": 3 / 12,
        "after_task": 1,
        "after_task_rate": 1 / 12,
        "before_task": 2,
        "before_task_rate": 2 / 12,
    }


def test_transfers_by_reason_and_queue_and_zero_outs(report: dict[str, Any]) -> None:
    transfers = report["transfers"]
    assert (transfers["calls"], transfers["rate"]) == (5, 5 / 12)
    assert calls(transfers["by_reason"]) == {
        "option": 1,
        "global": 1,
        "on_fail": 1,
        "on_error": 1,
        "node": 0,
        "callback": 1,
        "channel": 0,
    }
    assert transfers["by_reason"]["global"]["share"] == 1 / 5
    assert calls(transfers["by_queue"]) == {"support": 4, "(none)": 1}
    assert report["zero_outs"] == {"calls": 1, "rate": 1 / 12}


def test_tasks(report: dict[str, Any]) -> None:
    assert calls(report["tasks"]) == {
        "balance_inquiry": 3,
        "callback_requested": 1,
        "card_blocked": 1,
    }


def test_the_funnel_follows_the_flows_order(report: dict[str, Any]) -> None:
    funnel = {
        n["node"]: (n["reached"], n["transferred"], n["abandoned"])
        for n in report["funnel"]["telebanking"]
    }
    assert list(funnel) == [  # flows/telebanking.yaml's order; `transactions` had no calls
        "welcome",
        "main",
        "ask_account",
        "lookup",
        "route",
        "balance",
        "confirm_block",
        "block_card",
        "blocked",
        "anything_else",
        "backend_down",
        "check_hours",
        "agent",
        "closed",
        "goodbye",
    ]
    assert funnel["main"] == (10, 2, 1)  # c2, c3 sent to an agent from it; c6 hung up
    assert funnel["ask_account"] == (5, 0, 1)
    assert funnel["lookup"] == (4, 1, 0)  # c4: the backend failed
    assert funnel["anything_else"] == (3, 0, 1)
    assert funnel["closed"] == (1, 1, 0)
    assert funnel["agent"] == (3, 0, 0)  # the transfer was decided before it
    assert report["funnel"]["telebanking"][2]["reached_rate"] == 5 / 10


def test_the_funnel_is_ordered_by_reach_without_the_flow_file(reader: Reader) -> None:
    found = compose.report(reader, Filters(flow_id="telebanking_voice"), None)
    assert [n["node"] for n in found["funnel"]["telebanking_voice"]] == [
        "main",  # 2 calls each: by name
        "welcome",
        "agent",
        "anything_else",
        "ask_account",
        "balance",
        "check_hours",
        "goodbye",
        "lookup",
        "route",
    ]


def test_dtmf_against_speech(report: dict[str, Any]) -> None:
    inputs = report["inputs"]
    assert inputs["inputs"] == 25
    assert inputs["modes"]["dtmf"] == {
        "inputs": 15,
        "share": 15 / 23,
        "match": 13,
        "no_match": 2,
        "match_rate": 13 / 15,
    }
    assert inputs["modes"]["speech"] == {
        "inputs": 8,
        "share": 8 / 23,
        "match": 5,
        "no_match": 3,
        "match_rate": 5 / 8,
    }
    assert inputs["no_input"] == {"inputs": 2, "rate": 2 / 25}


def test_the_prompts_that_confuse_callers_come_first(report: dict[str, Any]) -> None:
    nodes = report["prompts"]["telebanking"]
    assert [n["node"] for n in nodes] == ["main", "ask_account", "anything_else", "confirm_block"]
    assert nodes[0] == {
        "node": "main",
        "inputs": 12,
        "match": 7,
        "no_match": 3,
        "no_input": 2,
        "dtmf": 7,
        "speech": 3,
        "no_input_rate": 2 / 12,
        "no_match_rate": 3 / 12,
    }


def test_time_in_ivr_from_the_buckets(report: dict[str, Any]) -> None:
    times = report["time_in_ivr"]["by_outcome"]
    # contained: 42, 55, 70 s: the 2nd of 3 is in 45-60, the 90% point in 60-90
    assert times["contained"] == {
        "calls": 3,
        "mean": pytest.approx((42 + 55 + 70) / 3),
        "median": 52.5,
        "median_bucket": [45, 60],
        "p90": pytest.approx(81.0),
        "p90_bucket": [60, 90],
    }
    # transferred: 12, 14, 25, 33, 100 s
    assert (times["transferred"]["median"], times["transferred"]["p90"]) == (25.0, 105.0)
    assert (times["abandoned"]["median"], times["abandoned"]["p90"]) == (17.5, pytest.approx(55.5))
    assert (times["failed"]["median"], times["failed"]["p90"]) == (7.5, 9.5)
    assert report["time_in_ivr"]["all"]["calls"] == 12


def test_percentiles_past_the_last_bucket_stop_at_its_bound() -> None:
    assert percentile({0: 3}, 0.5) == (3600.0, (3600, None))
    assert percentile({5: 1, 0: 1}, 0.5) == (5.0, (0, 5))
    assert percentile({}, 0.5) is None


def test_calls_per_day(report: dict[str, Any]) -> None:
    assert report["per_day"] == [
        {
            "day": "2026-11-02",
            "calls": 10,
            "contained": 2,
            "transferred": 4,
            "abandoned": 3,
            "failed": 1,
        },
        {
            "day": "2026-11-03",
            "calls": 2,
            "contained": 1,
            "transferred": 1,
            "abandoned": 0,
            "failed": 0,
        },
    ]


def test_filters_select_whole_hours_and_dimensions(reader: Reader) -> None:
    # 09:30 on day 2 widens to 09:00: day 2's calls (09:01-09:04) are in, though they ended
    # before 09:30; from 10:00 they are out
    widened = compose.report(reader, Filters(window=Window.of(DAY2 + 1800, None)), FLOWS)
    assert (widened["calls"], widened["window"]["since"]) == (2, "2026-11-03T09:00:00Z")
    assert compose.report(reader, Filters(window=Window.of(DAY2 + 3600, None)))["calls"] == 0
    day2 = compose.report(reader, Filters(window=Window.of(DAY2 + 1799, DAY2 + 1800)), FLOWS)
    assert (day2["calls"], day2["window"]["hours"]) == (2, 1)
    first_hour = compose.report(reader, Filters(window=Window.of(DAY1, DAY1 + 1)), FLOWS)
    assert first_hour["calls"] == 8  # c1-c8: the voice calls came two hours later
    version = compose.report(reader, Filters(flow_id="telebanking", flow_version="2"), FLOWS)
    assert version["calls"] == 2
    assert compose.report(reader, Filters(channel="sms"), FLOWS)["calls"] == 0


def test_an_empty_window_reports_nothing_without_failing(reader: Reader) -> None:
    empty = compose.report(reader, Filters(flow_id="nope"), FLOWS)
    assert empty["calls"] == 0
    assert empty["containment"]["rate"] is None
    assert empty["window"]["since"] is None
    assert empty["funnel"] == {} and empty["per_day"] == []


def test_compare_two_versions(reader: Reader) -> None:
    base = Filters(flow_id="telebanking")
    by, a, b = compose.sides("1", "2", base)
    found = compose.compare(reader, by, a, b, FLOWS)
    assert found["compare"] == {"by": "version", "a": "1", "b": "2"}
    assert (found["a"]["calls"], found["b"]["calls"]) == (8, 2)
    assert found["differences"]["calls"] == -6
    assert found["differences"]["containment"] == pytest.approx(1 / 2 - 1 / 8)
    assert found["differences"]["transfer_reasons"]["callback"] == pytest.approx(1 / 2)
    test = found["tests"][0]
    assert (test["metric"], test["between"], test["test"]) == ("containment", ["1", "2"], "fisher")
    assert test["p_value"] == pytest.approx(fisher_exact(1, 8, 1, 2))


def test_compare_two_date_ranges(reader: Reader) -> None:
    by, a, b = compose.sides("2026-11-02..2026-11-03", "2026-11-03..", Filters())
    assert by == "window"
    found = compose.compare(reader, by, a, b, FLOWS)
    assert (found["a"]["calls"], found["b"]["calls"]) == (10, 2)
    assert found["compare"]["a"] == "2026-11-02 00:00 to 2026-11-03 00:00 UTC, 24 whole hours"


def test_an_experiment_compares_its_variants(reader: Reader) -> None:
    found = compose.experiment(reader, "voice_vs_dtmf", Filters(), FLOWS)
    exp = found["experiment"]
    assert found["calls"] == 4
    assert {
        v: (c["calls"], c["containment"]["calls"], c["resolution"]["calls"])
        for v, c in exp["variants"].items()
    } == {
        "telebanking": (2, 1, 2),
        "telebanking_voice": (2, 1, 1),
    }
    assert exp["variants"]["telebanking"]["resolution"]["low"] == wilson(2, 2)[0]
    containment, resolution = exp["tests"]
    assert (containment["metric"], containment["test"], containment["p_value"]) == (
        "containment",
        "fisher",
        1.0,
    )
    assert resolution["p_value"] == pytest.approx(fisher_exact(2, 2, 1, 2))
    assert resolution["sentence"].startswith("Not yet")
    assert "Resolution: Not yet" in exp["sentence"]


def test_an_experiment_without_calls_says_so(reader: Reader) -> None:
    exp = compose.experiment(reader, "nothing", Filters(), FLOWS)["experiment"]
    assert exp["variants"] == {} and exp["tests"] == []
    assert exp["sentence"] == "No calls in experiment 'nothing' in this window."


def test_one_snapshot_for_the_whole_report(reader: Reader, known_url: str) -> None:
    """Figures read inside one snapshot do not change under a write made meanwhile."""
    import asyncio

    from ivr.store import open_records
    from tests.unit.report.conftest import KNOWN

    with reader.snapshot():
        before = compose._sections(reader, Filters(), None)["calls"]

        async def write() -> None:
            store = open_records(known_url)
            await store.add([replace(KNOWN[0], call_sid="late")])
            await store.close()

        asyncio.run(write())
        assert compose._sections(reader, Filters(), None)["calls"] == before == 12
    assert compose.report(reader, Filters(), None)["calls"] == 13
