"""The one exception tree of ivr: every error a person may see derives from IvrError."""

from __future__ import annotations

from dataclasses import dataclass, field


class IvrError(Exception):
    """Base of all ivr errors."""


@dataclass(frozen=True)
class Problem:
    """One finding about a flow file, located as file:line:col plus the path inside it."""

    file: str
    line: int
    col: int
    where: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        tag = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {tag}{where}{self.message}"


@dataclass
class FlowError(IvrError):
    """A flow file that cannot be loaded or compiled; carries every problem found."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems if p.severity == "error")


class BackendError(IvrError):
    """A backend HTTP call that is not allowed or failed before it was sent."""


class ConfigError(IvrError):
    """A setting (environment variable or flag) that cannot be used: says which and why."""


class ModelError(IvrError):
    """A speech model that cannot be used: not loadable, or a download that failed its
    checks (size, checksum, an archive that would write outside its directory)."""


class RecognitionFailed(IvrError):
    """A call's speech recognition gave up (its recogniser raised, or it fell behind real
    time): the call goes on with DTMF prompts."""
