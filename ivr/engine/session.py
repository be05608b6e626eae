"""A call's whole state: a small value that serialises to JSON, written once per turn."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson

OUTCOMES = ("contained", "transferred", "abandoned", "failed")
MASK = "****"


@dataclass
class Session:
    call_id: str
    flow_id: str
    version: str
    node: str | None = None
    waiting: str | None = None  # listen | confirm | fetch | record; None: not started or ended
    vars: dict[str, Any] = field(default_factory=dict)
    misses: int = 0  # failed tries at the current node
    pending: str | None = None  # option awaiting confirmation
    path: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    inputs: dict[str, int] = field(
        default_factory=dict
    )  # "dtmf.match", "speech.no_match", "no_input"
    reason: str | None = None  # what led toward a transfer: option:x, on_fail:node, on_error:node
    outcome: str | None = None
    queue: str | None = None
    error: str | None = None
    turn: int = 0
    started_at: float = 0.0
    ended_at: float | None = None
    sensitive: list[str] = field(default_factory=list)  # variable names never shown
    # what the telephony told of the end, after the flow was done: not the engine's
    call_status: str | None = None  # Twilio's final CallStatus
    transfer_result: str | None = None  # what became of a transfer: did an agent take it

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    def copy(self) -> Session:
        """A copy whose containers can change without touching this one."""
        new = Session.__new__(Session)
        new.__dict__.update(self.__dict__)
        new.vars, new.path, new.tasks = dict(self.vars), list(self.path), list(self.tasks)
        new.inputs = dict(self.inputs)
        return new

    def redacted(self) -> dict[str, Any]:
        """The session as a dict with sensitive values masked: for logs and call records."""
        out = asdict(self)
        out["vars"] = {k: MASK if k in self.sensitive else v for k, v in self.vars.items()}
        return out

    def to_json(self) -> str:
        # orjson: a tenth of json's time, and this runs every turn
        try:
            return orjson.dumps(self.__dict__, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # an integer beyond 64 bits in vars
            return json.dumps(self.__dict__, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, text: str | bytes) -> Session:
        data = orjson.loads(text)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
