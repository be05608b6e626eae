"""What the engine asks a transport to do: frozen values, rendered to TwiML, audio or text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ivr.flow.model import Audio, Listen, Part, Text

__all__ = [
    "Action",
    "Audio",
    "Fetch",
    "Hangup",
    "Hold",
    "Listen",
    "Message",
    "Prompt",
    "Record",
    "Text",
    "Transfer",
]


@dataclass(frozen=True, slots=True)
class Prompt:
    """Something the caller hears: text to speak and recordings to play, in order;
    `language` is set when it is not the flow's own (another of its `languages`)."""

    parts: tuple[Part, ...]
    # a subflow's own language and voice (None: the flow's); the voice is None too for
    # the language's default voice
    language: str | None = None
    voice: str | None = None

    @property
    def text(self) -> str:
        return " ".join(p.text if isinstance(p, Text) else f"[{p.file}]" for p in self.parts)


@dataclass(frozen=True, slots=True)
class Fetch:
    """A backend HTTP call of an `http` node, performed by the runner, whose answer comes
    back to the engine as a FetchResult. `timeout` is per attempt; `hold` is said when
    the answer takes longer than `hold_after` seconds."""

    node: str
    method: str
    url: str
    timeout: float
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    sensitive: bool = False  # the request carries a sensitive value: never shown
    retries: int = 0  # attempts after the first, on network errors, timeouts, 5xx and 429
    hold: Prompt | None = None
    hold_after: float = 2.0
    text: bool = False  # the answer is text; else it must be JSON


@dataclass(frozen=True, slots=True)
class Message:
    """Send `text` by SMS or WhatsApp (`channel`) to the number `to`: a `message` node's,
    sent by the runner (shown instead by the console and conversation tests), whose
    result comes back to the engine as a MessageSent."""

    node: str
    to: str
    channel: str
    text: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to an agent: a number, a SIP address or a queue."""

    to: str
    queue: str | None
    reason: str
    attributes: dict[str, str] = field(default_factory=dict)
    caller_id: str | None = None
    timeout: float | None = None
    whisper: str | None = None  # said to the agent before the caller is put through
    wait: bool = False  # the caller waits in `queue` (<Enqueue>) hearing the wait music
    tasks: tuple[str, ...] = ()  # what the caller did in self-service: for the agent


@dataclass(frozen=True, slots=True)
class Record:
    """Record the caller (voicemail, callback request) after the prompt."""

    node: str
    max_seconds: int
    finish_on: str = "#"


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call; `outcome` is what the engine recorded."""

    outcome: str


@dataclass(frozen=True, slots=True)
class Hold:
    """Made by the runner, not the engine: the answer of a backend is still on its way and
    the transport must answer now; it comes back for the answer (after `music`, or a
    pause of `pause` seconds)."""

    music: str | None = None  # a recording under the audio directory
    pause: float = 0.0


Action = Prompt | Listen | Fetch | Message | Transfer | Record | Hangup | Hold
