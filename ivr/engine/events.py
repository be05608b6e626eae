"""What happens to a call, as the engine sees it: transport-neutral, frozen values.

Every event carries `at`, the Unix time it happened, set by whoever makes it (the
adapter, or the runner for a backend's answer): the engine never reads a clock, and
opening hours, durations and the call record all come from these times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any

# a customer's history as flows read it (`history.*`), for a first-time caller: the fields
# of ivr.store.history.History, which the transport loads
NO_HISTORY: Mapping[str, Any] = MappingProxyType(
    {
        **dict.fromkeys(("last_task", "last_outcome", "last_queue", "last_channel", "last_at")),
        "calls_today": 0,
    }
)


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A new call reached a flow (made by the transport when it first hears of the call).
    `caller` is the person's number, `called` ours (for an outbound call too); `given`
    are variables an outbound call starts with (`ivr notify --vars`), `answered_by` what
    Twilio's answering-machine detection heard (human, machine_end_beep, ...). `history`
    is the caller's, loaded by the transport before the first step (the engine reads no
    store): the flow reads it as `history.*`."""

    caller: str = ""
    called: str = ""
    given: Mapping[str, Any] = field(default_factory=dict)
    answered_by: str = ""
    _: KW_ONLY
    at: float
    history: Mapping[str, Any] = field(default_factory=lambda: NO_HISTORY)


@dataclass(frozen=True, slots=True)
class Digits:
    """Keys the caller pressed (the finish key included when it was pressed)."""

    digits: str
    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class Speech:
    """What the recogniser heard, with its confidence from 0 to 1."""

    text: str
    confidence: float = 1.0
    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class NoInput:
    """The caller said and pressed nothing before the listening timeout."""

    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A backend call's result (made by the runner): `error` is set on timeout or network
    failure, or when the call was not allowed."""

    status: int = 0
    body: Any = None
    error: str | None = None
    _: KW_ONLY
    at: float

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class MessageSent:
    """What became of a `message` node's message (made by the runner): sent, with
    Twilio's `sid`, or not, with the `error` (never the number)."""

    ok: bool
    sid: str = ""
    error: str = ""
    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class Recorded:
    """A recording ended: its reference (empty when nothing was recorded)."""

    reference: str
    seconds: float = 0.0
    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class TransferEnded:
    """A transfer the flow goes on after ended: Twilio's DialCallStatus or QueueResult
    (completed, busy, no-answer, failed, leave, ...)."""

    result: str
    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class RecordingStatus:
    """What became of a recording once stored (Twilio's recordingStatusCallback):
    `status` completed (with its `url`), failed or absent; or unknown, when it never came.
    It takes no turn: it may come at any time, even after the call."""

    status: str
    url: str = ""
    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class Resumed:
    """The customer wrote on `channel` within the window a message node opened for the
    conversation to go on there: a new leg starts where the node said."""

    channel: str
    _: KW_ONLY
    at: float


@dataclass(frozen=True, slots=True)
class HangUp:
    """The caller hung up before the flow ended."""

    _: KW_ONLY
    at: float


Event = (
    CallStarted
    | Digits
    | Speech
    | NoInput
    | FetchResult
    | MessageSent
    | Recorded
    | TransferEnded
    | RecordingStatus
    | Resumed
    | HangUp
)
