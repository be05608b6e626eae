"""The flows a server runs: loaded from a directory, routed by called number, hot-reloaded.

A flow that fails to load never replaces the version that works, nor does one that
lists a number another flow answers (the first to list it keeps it), nor one whose
experiment names a variant that is not loaded or would split again; calls in
progress keep the version they started on, looked up by (id, version). A new call
to a flow that runs an experiment runs on the variant its caller gets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.flow import Problem, check_flow, flow_files
from ivr.flow.calendars import calendar_files
from ivr.flow.compiler import TURN_BUDGET
from ivr.flow.experiment import choose, conflict_problems, conflicts
from ivr.flow.model import Flow
from ivr.flow.numbers import claim_problem, taken
from ivr.keys import Keys

log = logging.getLogger("ivr.flows")
KEEP_VERSIONS = 20  # old versions kept per flow for calls still running on them


@dataclass
class Scan:
    """What a reload found: the files' times, the changed ones, and each file compiled."""

    mtimes: dict[Path, int]
    dirty: list[Path]
    results: list[tuple[Path, Flow | None, list[Problem]]]


@dataclass(frozen=True, slots=True)
class FileState:
    """What the latest reload found in one flow file, for the admin's `/flows` page: every
    problem (warnings too, and a refused number claim or experiment), and whether the
    file's content is what serves (False: an older version serves, or none)."""

    path: Path
    problems: tuple[Problem, ...]
    loaded: bool


@dataclass(frozen=True, slots=True)
class Route:
    """Where a new call goes, from `FlowRegistry.route_call` to the voice webhook: the flow
    it runs on and, when an experiment chose that flow, the experiment and the variant."""

    flow: Flow
    experiment: str | None = None
    variant: str | None = None  # the variant's flow id: `flow.id`


class FlowRegistry:
    """The flows of one directory, made by the server and read by every webhook."""

    def __init__(
        self,
        directory: Path,
        env: Mapping[str, str] | None = None,
        default: str | None = None,
        turn_budget: float = TURN_BUDGET,
        keys: Keys | None = None,
        on_load: Callable[[Flow], None] | None = None,
        on_failure: Callable[[Path], None] | None = None,
    ) -> None:
        """`keys` make callers' ids for experiment splits; without them a caller keeps a
        variant only as long as this registry lives. `on_load` is told of each version
        loaded, `on_failure` of each changed file that did not load (the server's metrics
        listen: the registry stays free of what measures it)."""
        self.directory, self.env, self.default = directory, env, default
        self.turn_budget = turn_budget
        self.on_load, self.on_failure = on_load, on_failure
        self.keys = keys or Keys.for_tests()
        self.current: dict[str, Flow] = {}
        self._versions: dict[tuple[str, str], Flow] = {}
        self._by_number: dict[str, str] = {}
        self._mtimes: dict[Path, int] = {}
        self.files: dict[Path, FileState] = {}  # by file, as the latest reload found them
        self._refusals: dict[Path, list[Problem]] = {}
        self._reloading = asyncio.Lock()

    def reload(self) -> list[str]:
        """Load new and changed files; returns the ids of flows that changed."""
        return self.apply(self.scan())

    async def reload_aside(self) -> list[str]:
        """`reload` with the compiling on a thread, so calls in flight are answered
        meanwhile: a flow of 1,000 nodes takes ~0.4 s to compile."""
        async with self._reloading:  # one scan at a time, or an older one could win
            return self.apply(await asyncio.to_thread(self.scan))

    def scan(self) -> Scan | None:
        """Every flow file compiled again when any changed (a subflow edit changes its
        callers), or a holiday calendar did (calendars/*.yaml, read by the flows that name
        them); None when nothing changed. Reads the registry, changes nothing."""
        files = flow_files(self.directory)
        watched = [*files, *calendar_files(self.directory)]
        mtimes = {p: p.stat().st_mtime_ns for p in watched}
        dirty = [p for p in watched if self._mtimes.get(p) != mtimes[p]]
        dirty += [p for p in self._mtimes if p not in mtimes]  # a calendar gone: names fail
        if not dirty:
            return None
        return Scan(mtimes, dirty, [(p, *check_flow(p, self.env, self.turn_budget)) for p in files])

    def apply(self, scan: Scan | None) -> list[str]:
        """Takes a scan's new versions, each unless it would take another flow's number."""
        if scan is None:
            return []
        waiting: list[tuple[Path, Flow]] = []
        for path, flow, problems in scan.results:
            for problem in problems:
                level = logging.ERROR if problem.severity == "error" else logging.WARNING
                if path in scan.dirty or problem.severity == "error":
                    log.log(level, "flow problem: %s", problem, extra={"flow_file": str(path)})
            if flow is None:
                if path in scan.dirty:
                    self._not_loaded(path)
                continue
            if (
                self.current.get(flow.id, None) is None
                or self.current[flow.id].version != flow.version
            ):
                waiting.append((path, flow))
        self._refusals = {}
        changed = self._take(waiting, scan.dirty)
        self._mtimes = scan.mtimes
        self.files = {
            path: FileState(path, (*problems, *self._refusals.get(path, ())), self._serves(flow))
            for path, flow, problems in scan.results
        }
        return changed

    def _serves(self, flow: Flow | None) -> bool:
        found = None if flow is None else self.current.get(flow.id)
        return found is not None and flow is not None and found.version == flow.version

    def _take(self, waiting: list[tuple[Path, Flow]], dirty: list[Path]) -> list[str]:
        """Loads new versions in order. One that lists a number a flow of another id has,
        or whose experiment's variants are not loaded (or split again), waits (the other
        flows' new versions may settle it) and is tried again after the others; what still
        waits then is not loaded, and its claim or conflict is logged as an error."""
        changed: list[str] = []
        while waiting:
            refused = []
            for path, flow in waiting:
                if taken(flow, self._owners()) or conflicts(flow, self.current):
                    refused.append((path, flow))
                    continue
                self._add(flow)
                changed.append(flow.id)
                log.info(
                    "flow %s version %s loaded (%d nodes)", flow.id, flow.version, len(flow.nodes)
                )
            if len(refused) == len(waiting):
                break
            waiting = refused
        for path, flow in waiting:
            owners = self._owners()
            refusals = [claim_problem(flow, n, owners[n], self.env) for n in taken(flow, owners)]
            refusals += conflict_problems(flow, conflicts(flow, self.current), self.env)
            for problem in refusals:
                log.error("flow problem: %s", problem, extra={"flow_file": str(path)})
            self._refusals[path] = refusals
            if path in dirty:
                self._not_loaded(path)
        return changed

    def _owners(self) -> dict[str, Flow]:
        return {n: self.current[flow_id] for n, flow_id in self._by_number.items()}

    def _not_loaded(self, path: Path) -> None:
        if self.on_failure is not None:
            self.on_failure(path)
        old = next((f.version for f in self.current.values() if f.file == str(path)), None)
        log.error(
            "flow %s not loaded; %s",
            path,
            f"still serving version {old}" if old else "no version serves",
        )

    def _add(self, flow: Flow) -> None:
        self.current[flow.id] = flow
        if self.on_load is not None:
            self.on_load(flow)
        self._versions[(flow.id, flow.version)] = flow
        mine = [k for k in self._versions if k[0] == flow.id]
        for key in mine[:-KEEP_VERSIONS]:
            del self._versions[key]
        self._by_number = {n: f.id for f in self.current.values() for n in f.numbers}

    def get(self, flow_id: str, version: str | None = None) -> Flow | None:
        """The given version (for a call in progress), else the current one."""
        if version is not None:
            found = self._versions.get((flow_id, version))
            if found is not None:
                return found
        return self.current.get(flow_id)

    def route(self, called: str, flow_id: str | None = None) -> Flow | None:
        """The flow for a new call: `?flow=` first, then the called number, then the default."""
        wanted = flow_id or self._by_number.get(called.strip()) or self.default
        return self.current.get(wanted) if wanted else None

    def route_call(
        self,
        called: str,
        caller: str,
        call_sid: str,
        flow_id: str | None = None,
        variant: str | None = None,
    ) -> Route | None:
        """A new call's flow: `route`'s, or when that flow runs an experiment, the variant
        the caller gets by a keyed hash of their number (a withheld number: of the call).
        `variant` (`?variant=`, for tests) pins one of the split's flows."""
        flow = self.route(called, flow_id)
        if flow is None or flow.experiment is None:
            return None if flow is None else Route(flow)
        experiment = flow.experiment
        if variant is not None and variant not in experiment.variants:
            log.warning(
                "?variant=%s is not a variant of experiment %s (%s): split as usual",
                variant[:64],
                experiment.name,
                ", ".join(experiment.variants),
            )
            variant = None
        if variant is None:
            variant = choose(experiment, self.keys.customer_id(caller) or f"call:{call_sid}")
        chosen = flow if variant == flow.id else self.current.get(variant)
        if chosen is None:  # loading refuses such an experiment: never expected here
            log.error("experiment %s: variant %s is not loaded", experiment.name, variant)
            return Route(flow)
        return Route(chosen, experiment.name, variant)
