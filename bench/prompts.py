"""Prompt benchmark: what inline SSML and a language spoken here cost a turn.

- rendering a templated prompt with and without SSML (engine side) and its TwiML;
- a Kazakh prompt spoken by espeak-ng for `<Play>`: the first time (synthesis) and
  when it is in the cache (a static prompt, made when the flow loaded).

Run: .venv/bin/python bench/prompts.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import timeit
from pathlib import Path

from ivr.engine import actions as act
from ivr.flow import parse_and_compile
from ivr.speech.prompts import PromptAudio
from ivr.speech.tts import EspeakTTS
from ivr.telephony import twiml
from ivr.telephony.spoken_here import localised

FLOW = parse_and_compile(
    """
flow: b
languages: [en-US, kk-KZ]
start: plain
nodes:
  plain:
    say: "Your code is {{ code }}. Press 1 to hear it again."
    next: marked
  marked:
    say: >-
      Your code is <say-as interpret-as="digits">{{ code }}</say-as>.<break time="500ms"/>
      <prosody rate="slow">Press <emphasis>1</emphasis> to hear it again.</prosody>
    next: e
  e:
    end: {}
"""
)


def per_call(fn: object, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number  # type: ignore[arg-type]


def main() -> None:
    ctx = {"code": "4821"}
    voice = twiml.Voice()
    for name in ("plain", "marked"):
        prompt = FLOW.nodes[name].spec
        render = per_call(lambda p=prompt: p.render(ctx), 20_000)
        parts = prompt.render(ctx)
        actions = (act.Prompt(parts), act.Hangup("contained"))
        # _build, not render: the TwiML cache keyed on the actions would answer
        write = per_call(lambda a=actions: twiml._build(a, voice), 5_000)
        print(f"{name:7} prompt: render {render * 1e6:6.1f} us, TwiML {write * 1e6:6.1f} us")
    asyncio.run(kazakh())


async def kazakh() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prompts = PromptAudio(Path(tmp), Path(tmp) / "cache", EspeakTTS())
        said = act.Prompt((act.Text("Сіздің балансыңыз: 1 500,00 теңге."),), "kk-KZ")
        start = time.perf_counter()
        await localised([said], FLOW, prompts)
        first = time.perf_counter() - start
        runs = 200
        start = time.perf_counter()
        for _ in range(runs):
            await localised([said], FLOW, prompts)
        cached = (time.perf_counter() - start) / runs
        print(f"kk-KZ prompt spoken here: first {first * 1e3:.1f} ms, cached {cached * 1e6:.0f} us")


if __name__ == "__main__":
    main()
