"""The flows a server runs: loaded from a directory, routed by called number, hot-reloaded.

A flow that fails to load never replaces the version that works; calls in
progress keep the version they started on, looked up by (id, version).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ivr.flow import check_flow, flow_files
from ivr.flow.model import Flow

log = logging.getLogger("ivr.flows")
KEEP_VERSIONS = 20  # old versions kept per flow for calls still running on them


class FlowRegistry:
    def __init__(
        self, directory: Path, env: Mapping[str, str] | None = None, default: str | None = None
    ) -> None:
        self.directory, self.env, self.default = directory, env, default
        self.current: dict[str, Flow] = {}
        self._versions: dict[tuple[str, str], Flow] = {}
        self._by_number: dict[str, str] = {}
        self._mtimes: dict[Path, int] = {}

    def reload(self) -> list[str]:
        """Load new and changed files; returns the ids of flows that changed."""
        changed: list[str] = []
        files = flow_files(self.directory)
        mtimes = {p: p.stat().st_mtime_ns for p in files}
        dirty = [p for p in files if self._mtimes.get(p) != mtimes[p]]
        if not dirty:
            return changed
        # a subflow edit changes its callers, so every file is compiled again
        for path in files:
            flow, problems = check_flow(path, self.env)
            for problem in problems:
                level = logging.ERROR if problem.severity == "error" else logging.WARNING
                if path in dirty or problem.severity == "error":
                    log.log(level, "flow problem: %s", problem, extra={"flow_file": str(path)})
            if flow is None:
                if path in dirty:
                    old = next(
                        (f.version for f in self.current.values() if f.file == str(path)), None
                    )
                    log.error(
                        "flow %s not loaded; %s",
                        path,
                        f"still serving version {old}" if old else "no version serves",
                    )
                continue
            if (
                self.current.get(flow.id, None) is None
                or self.current[flow.id].version != flow.version
            ):
                self._add(flow)
                changed.append(flow.id)
                log.info(
                    "flow %s version %s loaded (%d nodes)", flow.id, flow.version, len(flow.nodes)
                )
        self._mtimes = mtimes
        return changed

    def _add(self, flow: Flow) -> None:
        self.current[flow.id] = flow
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
