"""What happens to a call, as the engine sees it: transport-neutral, frozen values.

`at` is the Unix time of the event, set by the adapter: the engine never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CallStarted:
    at: float = 0.0
    caller: str = ""
    called: str = ""


@dataclass(frozen=True, slots=True)
class Digits:
    digits: str
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Speech:
    text: str
    confidence: float = 1.0
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class NoInput:
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A backend call's result: `error` is set on timeout or network failure."""

    status: int = 0
    body: Any = None
    error: str | None = None
    at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Recorded:
    reference: str
    seconds: float = 0.0
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class HangUp:
    at: float = 0.0


Event = CallStarted | Digits | Speech | NoInput | FetchResult | Recorded | HangUp
