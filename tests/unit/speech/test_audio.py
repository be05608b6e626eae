"""Stream audio: G.711 mu-law against the reference over every value, the 8 -> 16 kHz
upsampler against whole-signal interpolation, and 20 ms framing."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from ivr.speech.audio import (
    FRAME_BYTES,
    PCM_TO_ULAW,
    ULAW_TO_PCM,
    Framer,
    Upsampler,
    pcm_to_ulaw,
    ulaw_to_pcm,
)

ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))
_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def reference_lin2ulaw(sample: int) -> int:
    """Sun's g711.c linear2ulaw on the top 14 bits, sample by sample (what CPython's
    audioop did): the reference the numpy table must equal."""
    value = sample >> 2
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, 8159) + (0x84 >> 2)
    segment = next((i for i, end in enumerate(_SEGMENT_ENDS) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def reference_ulaw2lin(code: int) -> int:
    """Sun's g711.c ulaw2linear, to 16 bits."""
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return 0x84 - t if code & 0x80 else t - 0x84


def test_encoding_equals_the_reference_for_every_sample():
    samples = struct.unpack("<65536h", ALL_SAMPLES)
    expected = bytes(reference_lin2ulaw(s) for s in samples)
    assert pcm_to_ulaw(ALL_SAMPLES) == expected


def test_decoding_equals_the_reference_for_every_code():
    expected = struct.pack("<256h", *(reference_ulaw2lin(c) for c in range(256)))
    assert ulaw_to_pcm(ALL_CODES) == expected


def test_bit_identical_to_audioop():
    # audioop is in the standard library up to 3.12, and audioop-lts (a pydub dependency)
    # brings it back from 3.13
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    assert pcm_to_ulaw(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)
    assert ulaw_to_pcm(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("code", "sample"),
    [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xFE, 8), (0x7E, -8), (0xEF, 132)],
)
def test_golden_codes(code, sample):
    assert ULAW_TO_PCM[code] == sample


def test_decoding_then_encoding_gives_the_same_code():
    # every code but the second zero (0x7F, "-0") survives a round trip
    again = pcm_to_ulaw(ulaw_to_pcm(ALL_CODES))
    assert [c for c in range(256) if again[c] != c] == [0x7F]
    assert again[0x7F] == 0xFF


def test_encoding_then_decoding_stays_within_a_step():
    samples = np.frombuffer(ALL_SAMPLES, "<i2").astype(np.int32)
    back = np.frombuffer(ulaw_to_pcm(pcm_to_ulaw(ALL_SAMPLES)), "<i2").astype(np.int32)
    error = np.abs(back - samples)
    # mu-law's steps grow with the magnitude: 8 near zero, 1024 at the top (+ clipping)
    assert error[np.abs(samples) < 100].max() <= 8
    assert error.max() <= 1024 + 644


def test_tables_are_the_right_size_and_type():
    assert ULAW_TO_PCM.shape == (256,) and ULAW_TO_PCM.dtype == np.dtype("<i2")
    assert PCM_TO_ULAW.shape == (65536,) and PCM_TO_ULAW.dtype == np.uint8


def test_odd_trailing_byte_is_ignored():
    assert pcm_to_ulaw(b"\x00\x00\x01") == b"\xff"
    assert ulaw_to_pcm(b"") == b"" and pcm_to_ulaw(b"") == b""


def samples(n: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(-32768, 32768, n).astype("<i2").tobytes()


def test_upsampling_is_linear_interpolation():
    pcm = samples(1000)
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    expected = np.interp(np.arange(2 * len(x)) / 2, np.arange(len(x)), x)
    got = np.frombuffer(Upsampler()(pcm), "<i2")
    # the last input sample waits for its successor; halves are rounded down
    assert len(got) == 2 * (len(x) - 1)
    assert np.abs(got - expected[: len(got)]).max() <= 0.5


@pytest.mark.parametrize("size", [1, 7, 160, 161, 320, 999])
def test_upsampling_in_chunks_equals_upsampling_at_once(size):
    pcm = samples(4000, seed=size)
    whole = Upsampler()(pcm)
    upsample = Upsampler()
    step = 2 * size  # bytes: whole samples
    pieces = b"".join(upsample(pcm[i : i + step]) for i in range(0, len(pcm), step))
    assert pieces == whole


def test_upsampler_reset_forgets_the_last_sample():
    upsample = Upsampler()
    upsample(samples(10))
    upsample.reset()
    assert upsample(samples(10, seed=2)) == Upsampler()(samples(10, seed=2))
    assert Upsampler()(b"") == b""


def test_framer_cuts_20ms_frames_and_keeps_the_rest():
    frame = Framer()
    data = bytes(range(256)) * 4  # 1024 bytes: 3 frames and 64 bytes
    assert [len(f) for f in frame(data[:100])] == []
    frames = frame(data[100:])
    assert [len(f) for f in frames] == [FRAME_BYTES] * 3
    assert b"".join(frames) == data[: 3 * FRAME_BYTES]
    assert frame(b"\x00" * (FRAME_BYTES - 64)) == [data[3 * FRAME_BYTES :] + b"\x00" * 256]
    frame.reset()
    assert frame(b"\x00" * 10) == []
