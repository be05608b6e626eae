"""What the engine asks a transport to do: frozen values, rendered to TwiML, audio or text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ivr.flow.model import Audio, Listen, Part, Text

__all__ = ["Action", "Audio", "Fetch", "Hangup", "Listen", "Prompt", "Record", "Text", "Transfer"]


@dataclass(frozen=True, slots=True)
class Prompt:
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return " ".join(p.text if isinstance(p, Text) else f"[{p.file}]" for p in self.parts)


@dataclass(frozen=True, slots=True)
class Fetch:
    node: str
    method: str
    url: str
    timeout: float
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class Transfer:
    to: str
    queue: str | None
    reason: str
    attributes: dict[str, str] = field(default_factory=dict)
    caller_id: str | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Record:
    node: str
    max_seconds: int
    finish_on: str = "#"


@dataclass(frozen=True, slots=True)
class Hangup:
    outcome: str


Action = Prompt | Listen | Fetch | Transfer | Record | Hangup
