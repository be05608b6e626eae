"""Prompt audio for the phone: recordings and synthesised text as 8 kHz mono mu-law.

Recordings under audio/ (any format ffmpeg reads, through pydub) are converted once
and kept on disk under the data directory, named by a hash of their content: a file
replaced by another converts again, the same file under two names once. Text is
synthesised by the TTS and kept the same way, named by (engine, language, voice, text).
In memory an LRU of mu-law bytes answers a turn without touching the disk. A flow's
static prompts are made when it loads (`warm`), so a turn only synthesises what its
templates rendered. Conversion and synthesis run off the event loop, resampling in
numpy/scipy; ffmpeg only decodes recordings that are not WAV, once.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import wave
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from ivr.engine.engine import GIVE_UP, apology_of
from ivr.errors import IvrError
from ivr.flow.model import Audio, Flow, Part, Text
from ivr.speech.audio import RATE, pcm_to_ulaw
from ivr.speech.tts import TTS, Pcm

log = logging.getLogger("ivr.prompts")
# what recordings may be (the flow schema's list): anything else under audio/ is not served
EXTENSIONS = frozenset({".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".webm"})
MEMORY = 64 * 1024 * 1024  # bytes of mu-law kept in memory: ~2 hours of prompts
FORMAT = "v1"  # in every disk key: a change in how audio is made invalidates old files
SPOKEN = "tts/"  # the names of text spoken here for `<Play>`, under the audio route
_SPOKEN_NAME = re.compile(r"[0-9a-f]{32}\.wav")
Key = tuple[str, ...]


class PromptError(IvrError):
    """A recording that cannot be played: missing, outside audio/, or not audio."""


def resample(pcm: Pcm, rate: int = RATE) -> np.ndarray:
    """`pcm` at `rate` Hz as int16 samples: polyphase filtering (scipy), band-limited so a
    22 kHz voice does not alias into the telephone band."""
    samples = np.frombuffer(pcm.data, "<i2", count=len(pcm.data) // 2)
    if pcm.rate == rate or len(samples) == 0:
        return samples.astype(np.int16)
    step = gcd(pcm.rate, rate)
    out = resample_poly(samples.astype(np.float32), rate // step, pcm.rate // step)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """16-bit mono PCM WAV of `samples`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def decode(path: Path) -> Pcm:
    """Any recording as mono 16-bit PCM at its own rate: WAV read in-process by pydub,
    other formats decoded by ffmpeg (which pydub runs)."""
    from pydub import AudioSegment  # loaded only where recordings are converted

    try:
        segment = AudioSegment.from_file(path)
    except Exception as e:  # pydub raises CouldntDecodeError, or ffmpeg's own failure
        raise PromptError(f"{path.name}: cannot be decoded as audio ({e})") from e
    segment = segment.set_channels(1).set_sample_width(2)
    return Pcm(segment.raw_data, segment.frame_rate)


def _digest(*fields: str | bytes) -> str:
    h = hashlib.sha256(FORMAT.encode())
    for f in fields:
        h.update(b"\0" + (f.encode() if isinstance(f, str) else f))
    return h.hexdigest()[:32]


class _Lru:
    """Mu-law bytes by key, least recently used dropped past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.items: OrderedDict[Key, bytes] = OrderedDict()

    def get(self, key: Key) -> bytes | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: Key, value: bytes) -> None:
        old = self.items.pop(key, None)
        self.size += len(value) - (len(old) if old is not None else 0)
        self.items[key] = value
        while self.size > self.limit and len(self.items) > 1:
            _, dropped = self.items.popitem(last=False)
            self.size -= len(dropped)


class PromptAudio:
    """Prompts as 8 kHz mono mu-law, ready to cut into 20 ms frames (160 bytes each). One
    per server; the Media Streams driver awaits `mulaw`, the `<Play>` route `wav_file`."""

    def __init__(self, audio_dir: Path, cache_dir: Path, tts: TTS, memory: int = MEMORY):
        self.audio_dir, self.cache_dir, self.tts = audio_dir, cache_dir, tts
        self.memory = _Lru(memory)
        self.pending: dict[Key, asyncio.Task[bytes]] = {}
        self.conversions: dict[Key, Path] = {}  # recording's (name, time, size) -> its WAV
        self.warming: set[asyncio.Task[int]] = set()

    # -- the turn ----------------------------------------------------------------------------

    async def mulaw(self, parts: Sequence[Part], language: str, voice: str | None) -> bytes:
        """A prompt's audio: its parts one after the other. A recording that is missing or
        unreadable is left out (and logged); TTSError when text cannot be spoken."""
        chunks = []
        for part in parts:
            key = self.key(part, language, voice)
            if key is None:
                continue
            audio = self.memory.get(key)
            chunks.append(audio if audio is not None else await self._made(key, part))
        return b"".join(chunks)

    def key(self, part: Part, language: str, voice: str | None) -> Key | None:
        """The cache key of a part: a recording's name, size and time (a stat: microseconds,
        so a replaced recording is heard on the next call); None for nothing to say."""
        if isinstance(part, Text):
            text = " ".join(part.text.split())
            return ("tts", self.tts.name, language, voice or "", text) if text else None
        try:
            stat = self.recording(part.file).stat()
        except (OSError, PromptError) as e:
            log.error("prompt recording %s cannot be played: %s", part.file, e)
            return None
        return ("audio", part.file, str(stat.st_mtime_ns), str(stat.st_size))

    async def _made(self, key: Key, part: Part) -> bytes:
        """Synthesise or convert a part in a thread, once however many calls ask at once
        (a call that stops waiting does not stop the work: the others want it)."""
        task = self.pending.get(key)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(self._make, key, part))
            self.pending[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        try:
            return await asyncio.shield(task)
        except PromptError as e:
            if self.memory.get(key) is None:  # logged once; kept until the file changes,
                log.error("prompt recording cannot be played: %s", e)
                self.memory.put(key, b"")  # so ffmpeg is not run on every turn for it
            return b""

    def _done(self, key: Key, task: asyncio.Task[bytes]) -> None:
        del self.pending[key]
        if not task.cancelled() and task.exception() is None:
            self.memory.put(key, task.result())

    def _make(self, key: Key, part: Part) -> bytes:
        """Blocking: the part's 8 kHz WAV from the disk cache, or made and stored there."""
        if isinstance(part, Text):
            path = self.cache_dir / f"{_digest(*key)}.wav"
            if not path.is_file():
                _, _, language, voice, text = key
                pcm = self.tts.synthesise(text, language, voice or None)
                self._store(path, resample(pcm))
            return self._ulaw(path)
        return self._ulaw(self.converted(part.file))

    # -- recordings --------------------------------------------------------------------------

    def recording(self, name: str) -> Path:
        """The file `name` (as a flow or a URL writes it) under audio/; PromptError for a
        name that leaves it (`..`, an absolute path, a symlink out) or is not audio."""
        root = self.audio_dir.resolve()
        try:
            path = (root / name).resolve()
        except (OSError, ValueError) as e:  # a NUL byte, a symlink loop
            raise PromptError(f"{name!r} is not a file under {self.audio_dir}") from e
        if not path.is_relative_to(root) or path == root or "\\" in name:
            raise PromptError(f"{name!r} is not a file under {self.audio_dir}")
        if path.suffix.lower() not in EXTENSIONS:
            raise PromptError(f"{name!r} is not a recording ({', '.join(sorted(EXTENSIONS))})")
        return path

    def converted(self, name: str) -> Path:
        """Blocking: the recording `name` as 8 kHz mono 16-bit WAV in the disk cache,
        converted on first use; PromptError when it cannot be."""
        source = self.recording(name)
        try:
            stat = source.stat()
            seen = (name, str(stat.st_mtime_ns), str(stat.st_size))
            if seen in self.conversions and self.conversions[seen].is_file():
                return self.conversions[seen]
            content = source.read_bytes()
        except OSError as e:
            raise PromptError(f"{name}: {e.strerror or e}") from e
        path = self.cache_dir / f"{_digest('audio', content)}.wav"
        if not path.is_file():
            log.info("converting prompt recording %s to 8 kHz mono", name)
            self._store(path, resample(decode(source)))
        self.conversions[seen] = path
        return path

    async def wav_file(self, name: str) -> Path:
        """The converted copy of a recording for Twilio's `<Play>`, or text spoken here
        (`spoken_name`'s `tts/...` names)."""
        if name.startswith(SPOKEN):
            return self.spoken_file(name)
        return await asyncio.to_thread(self.converted, name)

    # -- text spoken here, played by Twilio ----------------------------------------------------

    async def spoken_name(self, text: str, language: str, voice: str | None) -> str | None:
        """Text said by this server's TTS (for a language Twilio has no voice for), made
        now or found made: its name for `<Play>` under the audio route, `tts/HASH.wav`;
        None for nothing to say. TTSError when it cannot be spoken."""
        part = Text(text)
        key = self.key(part, language, voice)
        if key is None:
            return None
        path = self.cache_dir / f"{_digest(*key)}.wav"
        if self.memory.get(key) is None or not path.is_file():
            await self._made(key, part)
        return f"{SPOKEN}{path.name}"

    def spoken_file(self, name: str) -> Path:
        """The WAV of a `tts/HASH.wav` name; PromptError when there is none."""
        digest = name.removeprefix(SPOKEN)
        path = self.cache_dir / digest
        if not _SPOKEN_NAME.fullmatch(digest) or not path.is_file():
            raise PromptError(f"{name!r} was not spoken here")
        return path

    # -- ahead of calls ----------------------------------------------------------------------

    async def warm(self, flow: Flow, languages: Sequence[str] | None = None) -> int:
        """Make every static prompt of `flow` (and every recording it names) now, not on a
        turn, in `languages` (default: all the flow's); returns how many distinct parts are
        ready. What fails is logged, not raised: the flow still serves, and a turn that
        needs the part tries again."""
        ready = 0
        for key, part in self._every_language(flow, languages):
            if self.memory.get(key) is None:
                try:
                    await self._made(key, part)
                except Exception as e:
                    log.error("flow %s: prompt %r not made: %s", flow.id, part, e)
                    continue
            ready += 1
        log.info("flow %s: %d prompt parts ready", flow.id, ready)
        return ready

    def warm_soon(self, flow: Flow, languages: Sequence[str] | None = None) -> None:
        """`warm` in the background (a flow loaded or reloaded while serving); nothing
        without a running event loop (a tool that loads flows)."""
        try:
            task = asyncio.get_running_loop().create_task(self.warm(flow, languages))
        except RuntimeError:
            return
        self.warming.add(task)
        task.add_done_callback(self.warming.discard)

    async def close(self) -> None:
        """Stop warming (the server is stopping)."""
        for task in list(self.warming):
            task.cancel()
        await asyncio.gather(*self.warming, return_exceptions=True)

    def _every_language(
        self, flow: Flow, languages: Sequence[str] | None
    ) -> Iterator[tuple[Key, Part]]:
        """The flow's static parts in its own language, then in each of its others."""
        wanted = (flow.language, *flow.languages) if languages is None else languages
        if flow.language in wanted:
            yield from self._unique(static_parts(flow), flow.language, flow.voice)
        for language in flow.languages[1:]:
            if language in wanted:
                yield from self._unique(static_parts(flow, language), language, None)

    def _unique(
        self, parts: Iterable[Part], language: str, voice: str | None
    ) -> Iterator[tuple[Key, Part]]:
        seen: set[Key] = set()
        for part in parts:
            key = self.key(part, language, voice)
            if key is not None and key not in seen:
                seen.add(key)
                yield key, part

    # -- disk --------------------------------------------------------------------------------

    def _store(self, path: Path, samples: np.ndarray) -> None:
        """Write atomically: a reader never sees half a file, two writers agree."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{id(samples)}")
        temporary.write_bytes(wav_bytes(samples))
        os.replace(temporary, path)

    @staticmethod
    def _ulaw(path: Path) -> bytes:
        with wave.open(str(path)) as wav:
            return pcm_to_ulaw(wav.readframes(wav.getnframes()))


def static_parts(flow: Flow, language: str | None = None) -> Iterator[Part]:
    """What `flow` may say that is known before a call: static prompts (menus, asks, their
    no_input and no_match, say, hold, transfer and end), recordings in templated prompts,
    hold music, the notice that speech is down, the apology and the engine's own last
    words. In `language`, one of the flow's others: its prompts in that language only."""
    if language is not None and language != flow.language:
        for node in flow.nodes.values():
            for _, prompt in node.prompts():
                said = prompt.in_language(language)
                if said is not prompt and said.static is not None:
                    yield from said.static
        yield from apology_of(flow, language).parts
        return
    for node in flow.nodes.values():
        for _, prompt in node.prompts():
            if prompt.static is not None:
                yield from prompt.static
            else:
                yield from (p for p in prompt.pieces if isinstance(p, Audio))
    if flow.hold_music:
        yield Audio(flow.hold_music)
    yield from flow.speech_down or ()
    yield from apology_of(flow).parts
    yield from GIVE_UP.parts
