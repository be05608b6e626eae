"""Flow language: load -> validate -> compile, behind `load_flow()`.

Only `read_flow_file` touches the disk; everything else works on text and data.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ivr.errors import FlowError, Problem
from ivr.flow.calendars import calendar_finder
from ivr.flow.compiler import TURN_BUDGET, compile_flow
from ivr.flow.loader import Document, parse_flow, read_flow_file
from ivr.flow.model import Flow
from ivr.flow.schema import NODE_KINDS, check_schema

__all__ = ["Flow", "FlowError", "NODE_KINDS", "Problem", "check_flow", "flow_files", "load_flow"]


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Loading makes ~10^5 short-lived objects and no garbage cycles; the cycle collector
    would run dozens of times for nothing (30% of the time of a 1,000-node flow)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_flow(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    turn_budget: float = TURN_BUDGET,
) -> tuple[Flow | None, list[Problem]]:
    """Load, validate and compile one flow file: the Flow (None on errors) and every problem.
    `turn_budget`: the seconds a server has to answer a webhook (backend waits must fit)."""
    with _no_cycle_collection():
        return _check_flow(path, env, turn_budget)


def _check_flow(
    path: str | os.PathLike[str], env: Mapping[str, str] | None, turn_budget: float
) -> tuple[Flow | None, list[Problem]]:
    try:
        doc = read_flow_file(path, env)
        problems = check_schema(doc)
        if problems:
            return None, problems
        find = _finder(Path(path).parent, doc.file, env)
        return compile_flow(doc, find, turn_budget, calendar_finder(Path(path).parent, env))
    except FlowError as e:
        return None, e.problems
    except Exception as e:  # a bug here must cost this file only, never the others' reloads
        message = f"cannot compile ({type(e).__name__}: {e}); please report this as a bug"
        return None, [Problem(os.fspath(path), 1, 1, "", message)]


def load_flow(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    turn_budget: float = TURN_BUDGET,
) -> Flow:
    """The compiled flow at `path`; raises FlowError listing every error."""
    flow, problems = check_flow(path, env, turn_budget)
    if flow is None:
        raise FlowError(problems)
    return flow


def flow_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The flow files (*.yaml, *.yml) in `directory`, sorted."""
    return sorted(
        p for p in Path(directory).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
    )


def _finder(
    directory: Path, this: str, env: Mapping[str, str] | None
) -> Callable[[str], Document | None]:
    """Finds a subflow's document by flow id among the files beside `this`, `ID.yaml` first."""

    def find(flow_id: str) -> Document | None:
        candidates = [directory / f"{flow_id}.yaml", directory / f"{flow_id}.yml"]
        candidates += [p for p in flow_files(directory) if p not in candidates]
        for path in candidates:
            if not path.is_file() or os.path.samefile(path, this):
                continue
            try:
                doc = read_flow_file(path, env)
            except FlowError:
                continue
            if isinstance(doc.data, dict) and doc.data.get("flow") == flow_id:
                if check_schema(doc):
                    return None
                return doc
        return None

    return find


def parse_and_compile(
    text: str, file: str = "<flow>", env: Mapping[str, str] | None = None
) -> Flow:
    """Compile flow YAML text (tests and tools that hold the text already)."""
    doc = parse_flow(text, file, env)
    problems = check_schema(doc)
    if problems:
        raise FlowError(problems)
    return compile_flow(doc)[0]
