"""Recognition off the event loop: calls in parallel hear what they hear alone, a call is
served in order by one thread at a time, and a recogniser that raises or falls behind
fails its own call over to DTMF without stalling the others. Real model, real audio,
streamed in real time; fakes (not mocks) for the recognisers that misbehave."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from ivr.errors import RecognitionFailed
from ivr.speech.audio import FRAME_BYTES
from ivr.speech.intent import Matcher, pick
from ivr.speech.recognizer import Heard, Recognizer
from ivr.speech.service import RecognitionSession, SpeechService
from ivr.speech.vad import Endpointer, SpeechEnded
from ivr.speech.vosk_speech import VoskSpeech
from tests.voices import Utterance

MENU = ["예금 잔액", "내역 조회", "상담원 연결", "한번 더", "영업 시간", "카드 정지", "분실 신고"]
OPTIONS = Matcher((phrase, [phrase]) for phrase in MENU)
SAID = ["예금 잔액", "내역 조회", "영업 시간"]  # recognised in every run and voice
FRAME = 0.02


class Fake:
    """A recogniser that misbehaves on purpose: slow, or raising after a while."""

    def __init__(self, feed_seconds: float = 0.0, raise_after: int | None = None) -> None:
        self.feed_seconds, self.raise_after, self.fed = feed_seconds, raise_after, 0

    def expect(self, phrases: Sequence[str] | None) -> None:
        pass

    def feed(self, pcm: bytes) -> None:
        self.fed += 1
        if self.raise_after is not None and self.fed > self.raise_after:
            raise RuntimeError("the decoder broke")
        time.sleep(self.feed_seconds)

    def finish(self) -> Heard:
        return Heard("", 0.0)


class Speeches:
    """Real recognisers for real languages; made-up languages get fakes."""

    def __init__(self, real: VoskSpeech, fakes: dict[str, Callable[[], Recognizer]]) -> None:
        self.real, self.fakes = real, fakes

    def languages(self) -> Sequence[str]:
        return [*self.real.languages(), *self.fakes]

    def recognizer(self, language: str) -> Recognizer | None:
        fake = self.fakes.get(language)
        return fake() if fake else self.real.recognizer(language)


@pytest.fixture
async def service(korean_speech) -> AsyncIterator[SpeechService]:
    made = SpeechService(korean_speech)
    yield made
    await made.close()


async def call(session: RecognitionSession, said: Utterance, pace: float = FRAME) -> str | None:
    """One caller saying one thing to a menu, streamed at `pace` seconds a 20 ms chunk:
    the option picked (None: nothing)."""
    await session.expect(MENU)
    endpointer = Endpointer()
    for chunk in said.chunks():
        session.feed(chunk)
        if session.failed or any(isinstance(e, SpeechEnded) for e in endpointer.feed(chunk)):
            break  # a failed session: the driver is on DTMF prompts now
        await asyncio.sleep(pace)
    heard = await session.finish()
    picked = pick(heard.alternatives, heard.confidences, OPTIONS)
    return picked.value if picked else None


async def test_calls_in_parallel_hear_what_they_hear_alone(service, korean_speech, voices):
    said = [voices.say(SAID[i % len(SAID)]) for i in range(8)]
    alone = []
    serial = SpeechService(korean_speech, workers=1, max_lag=60)  # fed as fast as it goes
    for utterance in said:
        session = serial.open("ko-KR")
        alone.append(await call(session, utterance, pace=0))
        session.close()
    await serial.close()
    sessions = [service.open("ko-KR") for _ in said]
    together = await asyncio.gather(*(call(s, u) for s, u in zip(sessions, said, strict=True)))
    assert together == alone == [SAID[i % len(SAID)] for i in range(8)]
    assert not any(s.failed for s in sessions)


async def test_a_recogniser_that_raises_fails_its_call_over(korean_speech, voices):
    service = SpeechService(Speeches(korean_speech, {"broken": lambda: Fake(raise_after=10)}))
    try:
        broken, fine = service.open("broken"), service.open("ko-KR")
        result = await asyncio.gather(
            call(broken, voices.say("영업 시간")),
            call(fine, voices.say("영업 시간")),
            return_exceptions=True,
        )
        assert isinstance(result[0], RecognitionFailed)
        assert result[1] == "영업 시간"
        assert broken.failed and "RuntimeError: the decoder broke" in (broken.failure or "")
        assert not fine.failed
        broken.feed(b"\x00" * FRAME_BYTES)  # dropped, not raised: the driver is on DTMF
        with pytest.raises(RecognitionFailed):
            await broken.expect(MENU)
    finally:
        await service.close()


async def test_a_slow_recogniser_fails_over_and_stalls_no_one(korean_speech, voices):
    # three times slower than real time: it falls behind by a second within ~1.5 s
    slow = {"slow": lambda: Fake(feed_seconds=3 * FRAME)}
    service = SpeechService(Speeches(korean_speech, slow), workers=2)
    try:
        lagging = [service.open("slow") for _ in range(2)]  # as many as there are threads
        fine = [service.open("ko-KR") for _ in SAID]
        long = voices.say("상담원 연결 해 주세요 오늘 날씨가 정말 좋네요")
        finished: list[float] = []

        async def timed(session: RecognitionSession, said: Utterance) -> str | None:
            picked = await call(session, said)
            finished.append(time.monotonic() - started)
            return picked

        started = time.monotonic()
        results = await asyncio.gather(
            *(call(s, long) for s in lagging),
            *(timed(s, voices.say(text)) for s, text in zip(fine, SAID, strict=True)),
            return_exceptions=True,
        )
        assert all(isinstance(r, RecognitionFailed) for r in results[:2])
        assert all(s.failed and "behind" in (s.failure or "") for s in lagging)
        assert results[2:] == SAID
        # each fine call ends ~0.3 s after its voice (1.3-2.1 s of audio), as if alone
        assert max(finished) < 2.1 + 0.3 + 0.5
    finally:
        await service.close()


async def test_finish_that_takes_too_long_fails_over(korean_speech):
    class Stuck(Fake):
        def finish(self) -> Heard:
            time.sleep(1.0)
            return Heard("", 0.0)

    service = SpeechService(Speeches(korean_speech, {"stuck": Stuck}), finish_timeout=0.2)
    try:
        session = service.open("stuck")
        await session.expect(MENU)
        with pytest.raises(RecognitionFailed, match="more than 0.2 s to finish"):
            await session.finish()
        assert session.failed
    finally:
        await service.close()


async def test_one_thread_at_a_time_and_in_order(korean_speech):
    entered: list[int] = []
    overlaps: list[int] = []

    class Watched(Fake):
        def __init__(self) -> None:
            super().__init__()
            self.inside = threading.Lock()
            self.order: list[bytes] = []

        def feed(self, pcm: bytes) -> None:
            if not self.inside.acquire(blocking=False):
                overlaps.append(1)
                return
            try:
                entered.append(threading.get_ident())
                self.order.append(pcm)
                time.sleep(0.0005)
            finally:
                self.inside.release()

    made: list[Watched] = []

    def watched() -> Watched:
        made.append(Watched())
        return made[-1]

    service = SpeechService(Speeches(korean_speech, {"watched": watched}), workers=4)
    try:
        sessions = [service.open("watched") for _ in range(6)]
        chunks = [i.to_bytes(2, "little") * 160 for i in range(40)]
        for chunk in chunks:
            for session in sessions:
                session.feed(chunk)
        for session in sessions:
            await session.finish()
        assert overlaps == []
        assert all(w.order == chunks for w in made)
        assert len(set(entered)) > 1  # the pool's threads all served, one call at a time each
    finally:
        await service.close()


async def test_closed_and_unknown(service):
    assert service.open("en-US") is None  # no model: the driver uses DTMF prompts
    session = service.open("ko-KR")
    session.close()
    session.feed(b"\x00" * FRAME_BYTES)
    assert session.lag == 0
    with pytest.raises(RecognitionFailed, match="closed"):
        await session.expect(MENU)
