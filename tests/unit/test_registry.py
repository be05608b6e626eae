"""The flow registry's reloads: compiled aside from the loop, newest edit last, one flow
for each called number."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

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
