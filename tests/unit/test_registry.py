"""The flow registry's reloads: compiled aside from the loop, newest edit last, one flow
for each called number."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ivr.keys import Keys
from ivr.registry import FlowRegistry

NODES = 400  # enough nodes that compiling takes many of the loop's turns


def write_flow(directory: Path, greeting: str) -> None:
    after = [f"n{i}" for i in range(1, NODES)] + ["bye"]
    chain = "".join(
        f'  n{i}:\n    say: "{greeting} {i}."\n    next: {after[i]}\n' for i in range(NODES)
    )
    path = directory / "long.yaml"
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(
        f"flow: long\nstart: n0\nnodes:\n{chain}  bye:\n    end:\n      say: Goodbye.\n"
    )
    # a coarse file system clock could keep the mtime, and reloads compare mtimes
    os.utime(path, ns=(before, max(path.stat().st_mtime_ns, before + 1_000_000)))


async def test_calls_are_answered_while_a_flow_compiles(tmp_path: Path) -> None:
    write_flow(tmp_path, "Hello")
    flows = FlowRegistry(tmp_path)
    loop_turns = 0

    async def answering() -> None:  # stands for the webhooks of the calls in flight
        nonlocal loop_turns
        while True:
            loop_turns += 1
            await asyncio.sleep(0)

    calls = asyncio.create_task(answering())
    try:
        assert await flows.reload_aside() == ["long"]
        assert loop_turns > 0  # compiled on the loop, it stays at 0
    finally:
        calls.cancel()
    assert flows.current["long"].nodes["n3"] is not None


async def test_the_last_edit_wins_when_reloads_overlap(tmp_path: Path) -> None:
    write_flow(tmp_path, "Hello")
    flows = FlowRegistry(tmp_path)
    flows.reload()
    first_version = flows.current["long"].version

    write_flow(tmp_path, "Hi")
    first = asyncio.create_task(flows.reload_aside())
    await asyncio.sleep(0)  # the first scan is under way
    write_flow(tmp_path, "Good day")
    second = asyncio.create_task(flows.reload_aside())
    await asyncio.gather(first, second)

    write_flow(tmp_path, "Good day")  # the same text again: the version it must serve
    expected = FlowRegistry(tmp_path)
    expected.reload()
    assert flows.current["long"].version == expected.current["long"].version != first_version
    # calls that started on the first version still find it
    assert flows.get("long", first_version) is not None


# -- called numbers: one flow each ---------------------------------------------------------------


def write(path: Path, flow_id: str, *numbers: str) -> None:
    """A small flow listing `numbers`, its mtime moved on so a reload sees the change."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    listed = ", ".join(f'"{n}"' for n in numbers)
    path.write_text(
        f"flow: {flow_id}\nnumbers: [{listed}]\nstart: bye\nnodes:\n"
        f"  bye:\n    end: {{say: {flow_id} says goodbye.}}\n"
    )
    os.utime(path, ns=(before, max(path.stat().st_mtime_ns, before + 1_000_000)))


def claim_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "already routed" in r.getMessage()]


def test_a_second_flow_may_not_take_a_number(tmp_path: Path, caplog) -> None:
    write(tmp_path / "a.yaml", "a", "+15550100")
    write(tmp_path / "b.yaml", "b", "+15550111", "+15550100")
    flows = FlowRegistry(tmp_path)
    assert flows.reload() == ["a"]
    assert flows.route("+15550100").id == "a"
    assert "b" not in flows.current and flows.route("+15550111") is None
    assert claim_errors(caplog) == [
        f"flow problem: {tmp_path / 'b.yaml'}:2:24: numbers[1]: number +15550100 is already "
        f"routed to flow 'a' ({tmp_path / 'a.yaml'}): a number routes to one flow; "
        "remove it from one of the two"
    ]


def test_an_edit_that_takes_a_number_keeps_the_old_version(tmp_path: Path, caplog) -> None:
    write(tmp_path / "a.yaml", "a", "+15550100")
    write(tmp_path / "b.yaml", "b", "+15550111")
    flows = FlowRegistry(tmp_path)
    flows.reload()
    serving = flows.current["b"]

    write(tmp_path / "b.yaml", "b", "+15550111", "+15550100")
    assert flows.reload() == []
    assert flows.route("+15550100").id == "a"
    assert flows.route("+15550111") is serving  # the version before the edit
    assert len(claim_errors(caplog)) == 1
    assert f"flow {tmp_path / 'b.yaml'} not loaded; still serving version {serving.version}" in (
        caplog.messages
    )


def test_a_number_moved_from_one_flow_to_another(tmp_path: Path, caplog) -> None:
    """Both files saved before one reload; the flow taking the number is read first."""
    write(tmp_path / "z.yaml", "z", "+15550100")
    write(tmp_path / "b.yaml", "b", "+15550111")
    flows = FlowRegistry(tmp_path)
    flows.reload()

    write(tmp_path / "z.yaml", "z")
    write(tmp_path / "b.yaml", "b", "+15550111", "+15550100")
    assert sorted(flows.reload()) == ["b", "z"]
    assert flows.route("+15550100").id == "b"
    assert claim_errors(caplog) == []


# -- experiments: variants loaded, calls split -----------------------------------------------------

EXPERIMENT = "experiment:\n  name: voice_vs_dtmf\n  split:\n    bank: 70\n    bank_voice: 30\n"


def write_bank(path: Path, flow_id: str, experiment: str = "", numbers: str = "") -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(
        f"flow: {flow_id}\n{numbers}{experiment}start: bye\nnodes:\n"
        f"  bye:\n    end: {{say: {flow_id} says goodbye.}}\n"
    )
    os.utime(path, ns=(before, max(path.stat().st_mtime_ns, before + 1_000_000)))


def bank_flows(tmp_path: Path, keys: Keys | None = None) -> FlowRegistry:
    """`bank` (+15550100) splits its calls 70/30 with `bank_voice`, a file sorted after it."""
    write_bank(tmp_path / "bank.yaml", "bank", EXPERIMENT, 'numbers: ["+15550100"]\n')
    write_bank(tmp_path / "bank_voice.yaml", "bank_voice")
    flows = FlowRegistry(tmp_path, keys=keys or Keys.for_tests())
    assert sorted(flows.reload()) == ["bank", "bank_voice"]
    return flows


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("flow problem")]


def test_a_variant_that_is_not_loaded_keeps_the_experiment_out(tmp_path: Path, caplog) -> None:
    write_bank(tmp_path / "bank.yaml", "bank", EXPERIMENT, 'numbers: ["+15550100"]\n')
    flows = FlowRegistry(tmp_path)
    assert flows.reload() == []
    assert flows.route("+15550100") is None
    assert problems(caplog) == [
        f"flow problem: {tmp_path / 'bank.yaml'}:7:5: experiment.split.bank_voice: variant "
        "'bank_voice' is not a flow served here (no flow file beside this one has "
        "'flow: bank_voice', or it has errors)"
    ]
    write_bank(tmp_path / "bank_voice.yaml", "bank_voice")  # the variant comes: both load
    assert sorted(flows.reload()) == ["bank", "bank_voice"]


def test_an_edit_that_makes_a_variant_split_again_is_refused(tmp_path: Path, caplog) -> None:
    flows = bank_flows(tmp_path)
    serving = flows.current["bank_voice"]
    chained = "experiment: {name: greeting, split: {bank_voice: 1, bank_short: 1}}\n"
    write_bank(tmp_path / "bank_voice.yaml", "bank_voice", chained)
    write_bank(tmp_path / "bank_short.yaml", "bank_short")
    assert flows.reload() == ["bank_short"]
    assert flows.current["bank_voice"] is serving
    (problem,) = problems(caplog)
    assert problem.startswith(
        f"flow problem: {tmp_path / 'bank_voice.yaml'}:2:1: experiment: this flow is a variant "
        f"of experiment 'voice_vs_dtmf' in flow 'bank'"
    )


def test_calls_are_split_by_caller_and_follow_the_weights(tmp_path: Path) -> None:
    flows = bank_flows(tmp_path)
    callers = [f"+1555{n:07d}" for n in range(4000)]
    routes = [flows.route_call("+15550100", c, f"CA{n:032x}") for n, c in enumerate(callers)]
    assert all(r is not None and r.experiment == "voice_vs_dtmf" for r in routes)
    assert all(r.flow.id == r.variant for r in routes if r is not None)
    voice = sum(r is not None and r.variant == "bank_voice" for r in routes)
    assert abs(voice - 0.3 * len(callers)) < 0.03 * len(callers)
    again = [flows.route_call("+15550100", c, "CA" + "f" * 32) for c in callers]  # new calls
    assert [r.variant for r in again if r] == [r.variant for r in routes if r]


def test_the_split_survives_a_restart(tmp_path: Path) -> None:
    """Keys from one data directory: a second registry (a restart, another process) gives
    every caller the variant the first gave."""
    data = tmp_path / "data"
    (tmp_path / "flows").mkdir()
    first = bank_flows(tmp_path / "flows", Keys.load(data, env={}))
    second = bank_flows(tmp_path / "flows", Keys.load(data, env={}))
    callers = [f"+1555{n:07d}" for n in range(500)]
    picks = [first.route_call("+15550100", c, "CA" + "0" * 32) for c in callers]
    again = [second.route_call("+15550100", c, "CA" + "1" * 32) for c in callers]
    assert [r.variant for r in picks if r] == [r.variant for r in again if r]
    assert {r.variant for r in picks if r} == {"bank", "bank_voice"}


@pytest.mark.parametrize("withheld", ["anonymous", "", "+266696687", "Restricted"])
def test_withheld_callers_are_split_by_call(tmp_path: Path, withheld: str) -> None:
    flows = bank_flows(tmp_path)
    sids = [f"CA{n:032x}" for n in range(400)]
    picks = [flows.route_call("+15550100", withheld, sid) for sid in sids]
    assert {r.variant for r in picks if r} == {"bank", "bank_voice"}  # not all one variant
    assert picks == [flows.route_call("+15550100", withheld, sid) for sid in sids]


def test_the_variant_query_pins_a_variant_of_the_split(tmp_path: Path, caplog) -> None:
    flows = bank_flows(tmp_path)
    callers = [f"+1555{n:07d}" for n in range(50)]
    for pinned in ("bank", "bank_voice"):
        routes = [
            flows.route_call("+15550100", c, "CA" + "0" * 32, variant=pinned) for c in callers
        ]
        assert {(r.flow.id, r.experiment, r.variant) for r in routes if r} == {
            (pinned, "voice_vs_dtmf", pinned)
        }
    unpinned = flows.route_call("+15550100", callers[0], "CA" + "0" * 32)
    ignored = flows.route_call("+15550100", callers[0], "CA" + "0" * 32, variant="order_status")
    assert ignored == unpinned
    assert (
        "?variant=order_status is not a variant of experiment voice_vs_dtmf (bank, bank_voice): "
        "split as usual"
    ) in caplog.messages


def test_the_flow_query_splits_too_and_a_variant_runs_as_itself(tmp_path: Path) -> None:
    flows = bank_flows(tmp_path)
    routes = [flows.route_call("", f"+1555{n:07d}", "CA" + "0" * 32, "bank") for n in range(200)]
    assert {r.variant for r in routes if r} == {"bank", "bank_voice"}
    direct = flows.route_call("", "+15551234567", "CA" + "0" * 32, "bank_voice")
    assert direct is not None and (direct.flow.id, direct.experiment) == ("bank_voice", None)
    assert flows.route_call("+15559999", "+15551234567", "CA" + "0" * 32) is None


def test_the_registry_tells_of_each_version_loaded_and_each_file_refused(tmp_path: Path) -> None:
    """What the server's metrics hear: flow info, series at 0, reload failures."""
    loaded: list[str] = []
    refused: list[str] = []
    flows = FlowRegistry(
        tmp_path,
        on_load=lambda f: loaded.append(f.version),
        on_failure=lambda p: refused.append(p.name),
    )
    write_flow(tmp_path, "Hello")
    flows.reload()
    write_flow(tmp_path, "Hi")
    flows.reload()
    assert len(set(loaded)) == 2  # each version once
    assert loaded[-1] == flows.current["long"].version
    path = tmp_path / "long.yaml"
    before = path.stat().st_mtime_ns
    path.write_text("flow: long\nstart: nowhere\nnodes: {}\n")
    os.utime(path, ns=(before, before + 1_000_000))
    assert flows.reload() == []
    assert refused == ["long.yaml"] and len(loaded) == 2
    assert flows.reload() == [] and refused == ["long.yaml"]  # unchanged: not refused again


def test_a_flow_that_breaks_the_compiler_costs_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unforeseen error compiling one file is that file's problem: the other flows'
    edits still load (once, an invalid date stopped every reload)."""
    import ivr.flow as flow_package

    write_flow(tmp_path, "Hello")
    (tmp_path / "other.yaml").write_text("flow: other\nstart: a\nnodes:\n  a: {end: {}}\n")
    real = flow_package.compile_flow

    def breaks_on_other(doc, *args, **kwargs):  # type: ignore[no-untyped-def]
        if doc.data.get("flow") == "other":
            raise RuntimeError("a bug")
        return real(doc, *args, **kwargs)

    monkeypatch.setattr(flow_package, "compile_flow", breaks_on_other)
    flows = FlowRegistry(tmp_path)
    assert flows.reload() == ["long"]
    write_flow(tmp_path, "Welcome")
    assert flows.reload() == ["long"]  # the edit of the other flow loads
    assert "Welcome 0." in str(flows.current["long"].nodes["n0"].spec)


def test_a_calendar_edit_reloads_the_flows_that_name_it(tmp_path: Path) -> None:
    (tmp_path / "calendars").mkdir()
    calendar = tmp_path / "calendars" / "holidays.yaml"
    calendar.write_text('days: [{date: "12-25", name: Christmas Day}]\n')
    (tmp_path / "shop.yaml").write_text(
        "flow: shop\nstart: a\nhours:\n"
        '  support: {tz: UTC, mon-sun: "09:00-18:00", calendar: holidays}\n'
        "nodes:\n  a: {end: {}}\n"
    )
    flows = FlowRegistry(tmp_path)
    assert flows.reload() == ["shop"]
    new_year = 1798797600.0  # 2027-01-01 10:00 UTC
    assert flows.current["shop"].hours["support"].is_open(new_year)
    assert flows.reload() == []  # nothing changed

    before = calendar.stat().st_mtime_ns
    calendar.write_text('days: [{date: "12-25", name: Christmas Day}, {date: "01-01", name: NY}]\n')
    os.utime(calendar, ns=(before, max(calendar.stat().st_mtime_ns, before + 1_000_000)))
    assert flows.reload() == ["shop"]
    assert not flows.current["shop"].hours["support"].is_open(new_year)

    calendar.unlink()  # the flow names a calendar no more there: the last version serves
    assert flows.reload() == []
    assert not flows.current["shop"].hours["support"].is_open(new_year)
    (state,) = flows.files.values()
    assert not state.loaded and "no calendar 'holidays'" in state.problems[0].message
