"""Twilio Media Streams messages <-> frozen values, and their mu-law audio <-> PCM. Pure.

What the bytes on a Media Streams WebSocket mean, and nothing about how they move
(`ivr.telephony.stream` is the driver that owns the socket). Twilio sends `connected`,
`start`, `media`, `dtmf`, `mark` (the echo of one we sent, once its audio has played) and
`stop`; we send `media` (8 kHz mu-law, base64), `mark` and `clear` (drop the audio not
yet played: barge-in). docs/media-streams.md has the message flow.

The admin listener's softphone (`ivr.web.phone`) speaks the same protocol, and two
messages more that Twilio never sends nor gets: `ivr.text` in (typed "speech"), read only
when `parse` is told the socket is the admin's (`extras`), and `ivr.transcript` out (what
the caller heard, what was understood, the node, the outcome).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ivr.speech.audio import FRAME_MS, RATE, pcm_to_ulaw, ulaw_to_pcm

FRAME = RATE * FRAME_MS // 1000  # mu-law bytes in one 20 ms frame: 160
ENCODING = "audio/x-mulaw"


class MediaError(ValueError):
    """A message that is not Media Streams JSON, or lacks what its event needs."""


@dataclass(frozen=True, slots=True)
class Connected:
    """The first message on a new stream: the protocol Twilio speaks on it."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    """The stream's metadata, once, before any media: the call it belongs to, the tracks
    it carries, the audio format, and the `<Parameter>`s of its `<Stream>`."""

    stream_sid: str
    call_sid: str
    account_sid: str = ""
    tracks: tuple[str, ...] = ("inbound",)
    custom: Mapping[str, str] = field(default_factory=dict, hash=False)
    encoding: str = ENCODING
    sample_rate: int = RATE
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Media:
    """20 ms of the caller's audio (`payload`: raw mu-law, base64 decoded): `timestamp` is
    milliseconds since the stream started, `chunk` counts from 1."""

    stream_sid: str
    payload: bytes
    timestamp: int
    chunk: int = 0
    track: str = "inbound"

    @property
    def pcm(self) -> bytes:
        """The payload as 8 kHz 16-bit little-endian PCM."""
        return ulaw_to_pcm(self.payload)


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the caller pressed."""

    stream_sid: str
    digit: str
    track: str = "inbound_track"


@dataclass(frozen=True, slots=True)
class Mark:
    """The echo of a mark we sent: the audio sent before it has played (or was cleared)."""

    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    """The stream ended on Twilio's side: the caller hung up (or it was stopped)."""

    stream_sid: str
    call_sid: str = ""
    account_sid: str = ""


@dataclass(frozen=True, slots=True)
class Typed:
    """What the softphone's user typed instead of speaking: taken as speech at the listen
    (`ivr.text`; admin socket only)."""

    text: str


Inbound = Connected | Start | Media | Dtmf | Mark | Stop | Typed
MAX_TYPED = 200  # characters of typed "speech" kept: a menu phrase is a few words


def parse(text: str | bytes, extras: bool = False) -> Inbound | None:
    """One message from Twilio (or, with `extras`, from the admin softphone); None for an
    event this codec does not know (Twilio may add some). MediaError when it is not JSON
    or lacks a field its event needs."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise MediaError(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise MediaError("not a JSON object")
    event = message.get("event")
    readers = _EXTRA_READERS if extras else _READERS
    reader = readers.get(event) if isinstance(event, str) else None
    if reader is None:
        return None
    try:
        return reader(message)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as e:
        what = f"no {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise MediaError(f"a malformed {event} message ({what})") from None


def _connected(m: dict[str, Any]) -> Connected:
    return Connected(str(m.get("protocol", "")), str(m.get("version", "")))


def _start(m: dict[str, Any]) -> Start:
    start = m["start"]
    media_format = start.get("mediaFormat") or {}
    custom = start.get("customParameters") or {}
    return Start(
        stream_sid=str(m.get("streamSid") or start["streamSid"]),
        call_sid=str(start["callSid"]),
        account_sid=str(start.get("accountSid", "")),
        tracks=tuple(str(t) for t in start.get("tracks", ("inbound",))),
        custom={str(k): str(v) for k, v in custom.items()},
        encoding=str(media_format.get("encoding", ENCODING)),
        sample_rate=int(media_format.get("sampleRate", RATE)),
        channels=int(media_format.get("channels", 1)),
    )


def _media(m: dict[str, Any]) -> Media:
    media = m["media"]
    return Media(
        stream_sid=str(m.get("streamSid", "")),
        payload=base64.b64decode(media["payload"], validate=True),
        timestamp=int(media["timestamp"]),
        chunk=int(media.get("chunk", 0)),
        track=str(media.get("track", "inbound")),
    )


def _dtmf(m: dict[str, Any]) -> Dtmf:
    dtmf = m["dtmf"]
    return Dtmf(str(m.get("streamSid", "")), str(dtmf["digit"]), str(dtmf.get("track", "")))


def _mark(m: dict[str, Any]) -> Mark:
    return Mark(str(m.get("streamSid", "")), str(m["mark"]["name"]))


def _stop(m: dict[str, Any]) -> Stop:
    stop = m.get("stop") or {}
    return Stop(
        str(m.get("streamSid", "")), str(stop.get("callSid", "")), str(stop.get("accountSid", ""))
    )


def _typed(m: dict[str, Any]) -> Typed:
    text = m["text"]
    if not isinstance(text, str):
        raise TypeError("text")
    return Typed(" ".join(text.split())[:MAX_TYPED])


_READERS: dict[str, Callable[[dict[str, Any]], Inbound]] = {
    "connected": _connected,
    "start": _start,
    "media": _media,
    "dtmf": _dtmf,
    "mark": _mark,
    "stop": _stop,
}
_EXTRA_READERS = _READERS | {"ivr.text": _typed}


# -- what we send --------------------------------------------------------------------------


def media(stream_sid: str, ulaw: bytes) -> str:
    """Audio for the caller: mu-law bytes (one 20 ms frame, usually)."""
    payload = base64.b64encode(ulaw).decode()
    return _dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark(stream_sid: str, name: str) -> str:
    """Ask Twilio to echo `name` once the audio sent before it has played."""
    return _dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    """Drop the audio Twilio holds but has not played yet (its marks come back at once)."""
    return _dumps({"event": "clear", "streamSid": stream_sid})


def transcript(stream_sid: str, kind: str, **fields: Any) -> str:
    """A line of the softphone's live transcript (admin socket only): `kind` is call,
    prompt, heard, keys, node or end; the fields are the line's."""
    message = {"event": "ivr.transcript", "streamSid": stream_sid, "kind": kind, **fields}
    return _dumps(message)


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


# -- audio ---------------------------------------------------------------------------------


def frames(ulaw: bytes, size: int = FRAME) -> Iterator[bytes]:
    """Mu-law audio cut into 20 ms frames; the last one is padded with mu-law silence."""
    for i in range(0, len(ulaw), size):
        frame = ulaw[i : i + size]
        yield frame if len(frame) == size else frame + SILENCE[: size - len(frame)]


def to_pcm(ulaw: bytes) -> bytes:
    """Mu-law -> 8 kHz 16-bit PCM."""
    return ulaw_to_pcm(ulaw)


def to_ulaw(pcm: bytes) -> bytes:
    """8 kHz 16-bit PCM -> mu-law."""
    return pcm_to_ulaw(pcm)


SILENCE = pcm_to_ulaw(b"\0\0" * FRAME)  # one frame of mu-law silence (0xFF bytes)


def duration_ms(ulaw: bytes) -> int:
    """How long mu-law audio plays, in whole 20 ms frames."""
    return -(-len(ulaw) // FRAME) * FRAME_MS
