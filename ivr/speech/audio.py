"""Stream audio: G.711 mu-law <-> 16-bit PCM, 8 -> 16 kHz resampling, 20 ms framing.

Pure functions and small stateful helpers over bytes (16-bit signed little-endian mono
PCM), with numpy tables: no audioop (it left the standard library in Python 3.13), no
subprocess. Twilio Media Streams carry 8 kHz mu-law in 20 ms frames (160 bytes); Vosk
models want 16 kHz, and linear interpolation to 16 kHz was recognised somewhat better
than handing Kaldi 8 kHz (docs/speech.md has the figures).
"""

from __future__ import annotations

import numpy as np

RATE = 8000  # Twilio Media Streams: 8 kHz mono
FRAME_MS = 20  # one Media Streams `media` message; also a frame webrtcvad accepts
PCM_BYTES_PER_SECOND = RATE * 2  # 16-bit samples
FRAME_BYTES = PCM_BYTES_PER_SECOND * FRAME_MS // 1000  # 320 bytes of PCM, 160 of mu-law
_BIAS = 0x84  # G.711's bias, 132 in 16-bit units (33 in the 14-bit units below)
_CLIP = 8159  # the largest 14-bit magnitude mu-law encodes


def _decode_table() -> np.ndarray:
    """The 256 mu-law codes as 16-bit samples (G.711 expansion, as audioop.ulaw2lin)."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF  # mu-law stores every bit inverted
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype("<i2")


def _encode_table() -> np.ndarray:
    """Every 16-bit sample's mu-law code, indexed by the sample as an unsigned number:
    G.711 compression of the top 14 bits, as CPython's audioop.lin2ulaw (Sun's g711.c)."""
    sample = np.arange(65536, dtype=np.int32).astype(np.uint16).astype(np.int16)
    value = sample.astype(np.int32) >> 2
    mask = np.where(value < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), _CLIP) + (_BIAS >> 2)
    segment = np.clip(np.floor(np.log2(value)).astype(np.int32) - 5, 0, 8)
    low = np.minimum(segment, 7)
    code = np.where(segment >= 8, 0x7F, (low << 4) | ((value >> (low + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


ULAW_TO_PCM = _decode_table()
PCM_TO_ULAW = _encode_table()


def ulaw_to_pcm(ulaw: bytes) -> bytes:
    """Mu-law bytes -> 16-bit little-endian PCM (twice as many bytes)."""
    return ULAW_TO_PCM[np.frombuffer(ulaw, np.uint8)].tobytes()


def pcm_to_ulaw(pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> mu-law bytes (an odd trailing byte is ignored)."""
    samples = np.frombuffer(pcm, "<i2", count=len(pcm) // 2)
    return PCM_TO_ULAW[samples.view(np.uint16)].tobytes()


class Upsampler:
    """8 -> 16 kHz by linear interpolation, one chunk at a time.

    Each output pair is (x[n], (x[n] + x[n+1]) / 2), so a sample's second half waits for
    the next sample: the last input sample of a chunk is kept and emitted with the next
    chunk. Chunk edges therefore come out exactly as if the whole stream were one array
    (a resampler restarted per chunk would put a glitch every 20 ms). The output lags the
    input by one sample (125 us); `reset()` between utterances.
    """

    def __init__(self) -> None:
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self._last = None

    def __call__(self, pcm: bytes) -> bytes:
        new = np.frombuffer(pcm, "<i2", count=len(pcm) // 2).astype(np.int32)
        if self._last is not None:
            new = np.concatenate((self._last, new))
        if len(new) == 0:
            return b""
        self._last = new[-1:]
        now, following = new[:-1], new[1:]
        out = np.empty(2 * len(now), np.int32)
        out[0::2], out[1::2] = now, (now + following) >> 1
        return out.astype("<i2").tobytes()


class Framer:
    """Cuts a byte stream into frames of `size` bytes (default: 20 ms of 8 kHz PCM),
    keeping a partial frame for the next call: WebSocket messages need not be 20 ms."""

    def __init__(self, size: int = FRAME_BYTES) -> None:
        self.size = size
        self._rest = b""

    def reset(self) -> None:
        self._rest = b""

    def __call__(self, data: bytes) -> list[bytes]:
        data = self._rest + data if self._rest else data
        whole = len(data) - len(data) % self.size
        self._rest = data[whole:]
        return [data[i : i + self.size] for i in range(0, whole, self.size)]
