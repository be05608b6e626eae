"""A call's whole state: a small value that serialises to JSON, written once per turn."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson

OUTCOMES = ("contained", "transferred", "abandoned", "failed")
# what led to a transfer: the caller chose an agent in a menu (option) or by a global
# option such as a zero-out (global); the IVR did not understand (on_fail); a backend
# failed (on_error); the flow sent the caller without any of those (node); the caller
# asked to be called back (callback); a text conversation reached what needs a call (channel)
REASONS = ("option", "global", "on_fail", "on_error", "node", "callback", "channel")
MASK = "****"


@dataclass
class Session:
    call_id: str
    flow_id: str
    version: str
    node: str | None = None
    waiting: str | None = None  # listen | confirm | fetch | record; None: not started or ended
    vars: dict[str, Any] = field(default_factory=dict)
    misses: int = 0  # failed tries at the current node, of both kinds
    no_inputs: int = 0  # of them, no-inputs: `retries` bounds each kind on its own
    no_matches: int = 0  # and no-matches
    pending: str | None = None  # option awaiting confirmation
    path: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    # inputs by node, mode and result: "main:dtmf:match", "main:speech:no_match", "main:no_input"
    inputs: dict[str, int] = field(default_factory=dict)
    # what led to the transfer under way: `KIND:detail`, KIND one of REASONS; set by what
    # happens (an option chosen, retries run out, a backend failed) and spent once the call
    # listens again, so a transfer reached later has its own reason
    reason: str | None = None
    reason_at: str | None = None  # the node where that happened
    outcome: str | None = None
    queue: str | None = None
    error: str | None = None
    turn: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0  # the time of the last event stepped
    ended_at: float | None = None
    sensitive: list[str] = field(default_factory=list)  # variable names never shown
    # [seconds into the call, node, what, ...]: prompts heard, inputs (masked when
    # sensitive), backend answers; the last MAX_TRANSCRIPT lines
    transcript: list[list[Any]] = field(default_factory=list)
    channel: str = "voice"  # voice | sms | whatsapp | chat: where the conversation started
    direction: str = "inbound"  # inbound | outbound
    address: str = ""  # a text conversation's sender (`chat:ID`, `whatsapp:+...`): the customer
    last_message: str | None = None  # the id of the message its last turn answered (MessageSid)
    experiment: str | None = None  # the experiment that chose this call's flow
    variant: str | None = None  # the flow it chose
    # what the telephony told of the end, after the flow was done: not the engine's
    call_status: str | None = None  # Twilio's final CallStatus
    transfer_result: str | None = None  # what became of a transfer: did an agent take it
    # the reason of the transfer this call attempted (and its node): a call that reached an
    # agent, or tried to, ends transferred whatever follows (a survey, a voicemail)
    transfer: str | None = None
    transfer_at: str | None = None
    callback: dict[str, str] | None = None  # a callback request: number, window, queue
    survey: dict[str, str] = field(default_factory=dict)  # answers by survey name
    recording: str | None = None  # the URL of the call's recording, once stored
    # the record node whose recording is not yet stored: the call's outcome is not final
    # (nor its task resolved) until Twilio says it is (RecordingStatus)
    awaiting: str | None = None

    # set by a message node that lets the customer go on by text: {"channel", "node" (where
    # the text leg starts), "until" (Unix time), "verified_until" (how long `verified` may
    # cross, or None)}; while the window is open the outcome is not final
    handoff: dict[str, Any] | None = None
    # the conversation's legs when it moved between channels ([] while it has one):
    # {"channel", "at"} each (and, once over, "outcome", "ended"), the first where it began
    legs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def medium(self) -> str:
        """The channel the conversation is on now (its last leg's)."""
        return str(self.legs[-1]["channel"]) if self.legs else self.channel

    @property
    def ended(self) -> bool:
        """The outcome is final: the call is over and nothing it waits for may change it."""
        return self.outcome is not None and self.awaiting is None and self.handoff is None

    def copy(self) -> Session:
        """A copy whose containers can change without touching this one."""
        new = Session.__new__(Session)
        new.__dict__.update(self.__dict__)
        new.vars, new.path, new.tasks = dict(self.vars), list(self.path), list(self.tasks)
        new.inputs, new.transcript = dict(self.inputs), list(self.transcript)
        new.survey, new.legs = dict(self.survey), list(self.legs)
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
