"""The flow registry's reloads: compiled aside from the loop, newest edit last."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

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
