"""Server settings: embedded defaults, overridden by environment variables, then by flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ivr.backend import allowed_hosts


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Config:
    host: str = "0.0.0.0"
    port: int = 8080
    flows: Path = Path("flows")
    audio: Path = Path("audio")
    data: Path = Path("data")
    public_url: str | None = None  # https://ivr.example.com, as Twilio sees this server
    auth_token: str | None = field(default=None, repr=False)  # TWILIO_AUTH_TOKEN: a secret
    insecure: bool = False  # no signature check: local development only
    trust_proxy: bool = False  # take scheme and host from X-Forwarded-Proto / Host
    sessions: str | None = None  # IVR_SESSIONS; default: SQLite under `data`
    records: str | None = None  # IVR_RECORDS; default: SQLite under `data`
    http_allow: tuple[str, ...] = ()
    default_flow: str | None = None
    hash_caller: bool = True
    caller_salt: str = field(default="", repr=False)
    workflow_sid: str | None = None
    log_level: str = "INFO"
    watch: bool = True

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            host=env.get("IVR_HOST", cls.host),
            port=int(env.get("IVR_PORT", cls.port)),
            flows=Path(env.get("IVR_FLOWS", "flows")),
            audio=Path(env.get("IVR_AUDIO", "audio")),
            data=Path(env.get("IVR_DATA", "data")),
            public_url=env.get("IVR_PUBLIC_URL") or None,
            auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            insecure=_flag("IVR_INSECURE"),
            trust_proxy=_flag("IVR_TRUST_PROXY"),
            sessions=env.get("IVR_SESSIONS") or None,
            records=env.get("IVR_RECORDS") or None,
            http_allow=allowed_hosts(),
            default_flow=env.get("IVR_DEFAULT_FLOW") or None,
            hash_caller=env.get("IVR_STORE_CALLER", "hashed") != "plain",
            caller_salt=env.get("IVR_CALLER_SALT", ""),
            workflow_sid=env.get("TWILIO_WORKFLOW_SID") or None,
            log_level=env.get("IVR_LOG_LEVEL", "INFO").upper(),
        )

    @property
    def sessions_url(self) -> str:
        return self.sessions or f"sqlite:///{(self.data / 'sessions.db').resolve()}"

    @property
    def records_path(self) -> Path:
        url = self.records or f"sqlite:///{(self.data / 'calls.db').resolve()}"
        if not url.startswith("sqlite://"):
            raise ValueError(f"IVR_RECORDS: only sqlite:///path is supported so far, not {url!r}")
        return Path(url.removeprefix("sqlite://"))
