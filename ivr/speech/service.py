"""Recognition off the event loop: a thread pool shared by every call, one queue a call.

For the Media Streams driver (ivr/telephony/stream.py), one `RecognitionSession` a call:

    session = service.open(flow.language)    # None: no model for it -> DTMF prompts
    endpointer = Endpointer()                 # ivr.speech.vad, on the loop (cheap)
    await session.expect(phrases)             # a listen starts: a grammar, or None (free)
    endpointer.reset()
    ... on each `media` message:
        pcm = ulaw_to_pcm(payload)            # ivr.speech.audio
        session.feed(pcm)                     # never blocks: queued for the pool
        for event in endpointer.feed(pcm):
            SpeechStarted -> barge-in (`clear`) if the prompt allows it
            SpeechEnded   -> heard = await session.finish()
                             picked = pick(heard.alternatives, heard.confidences, matcher)
    ... when the call ends:
        session.close()

A session fails over, once and for good, when its recogniser raises, when its queue
holds more than `max_lag` seconds of audio (the pool is not keeping up: the caller
would wait for an answer that comes ever later), or when `finish` takes longer than
`finish_timeout`. Then `session.failed` is True, `session.failure` says why, `feed`
drops audio, and `expect`/`finish` raise `RecognitionFailed`: the driver goes on with
DTMF prompts. Nothing of one call can stall another: a call's work runs on a pool
thread in slices (at most `SLICE` seconds, then it queues behind the other calls), and
a failed call's queue is dropped at once.

Why threads: Vosk releases the GIL while it decodes (measured: a Python loop kept 93% of
its speed beside a decoding thread), so a pool the size of the cores uses them all; a
call's recogniser is used by one thread at a time (two at once abort the process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ivr.errors import RecognitionFailed
from ivr.speech.audio import PCM_BYTES_PER_SECOND
from ivr.speech.recognizer import Heard, Recognizer, Speech

log = logging.getLogger("ivr.speech")
MAX_LAG = 1.0  # seconds of a call's audio queued before it fails over to DTMF
FINISH_TIMEOUT = 3.0  # seconds `finish` may take (the queue, then the final decode)
SLICE = 0.05  # seconds of work a call does on a thread before the other calls' turn
CLOSED = "the recognition session was closed"

_Op = tuple[str, Any, "asyncio.Future[Any] | None"]  # (what, argument, who waits)


class SpeechService:
    """The thread pool and the sessions on it: made once by the server, shared by calls."""

    def __init__(
        self,
        speech: Speech,
        workers: int | None = None,
        max_lag: float = MAX_LAG,
        finish_timeout: float = FINISH_TIMEOUT,
    ) -> None:
        self.speech, self.max_lag, self.finish_timeout = speech, max_lag, finish_timeout
        self.workers = workers or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ivr-speech")

    def open(self, language: str) -> RecognitionSession | None:
        """A session for one call in `language`; None when no model serves it. Call it on
        the event loop: the session's results come back there."""
        recognizer = self.speech.recognizer(language)
        if recognizer is None:
            return None
        return RecognitionSession(self, recognizer, asyncio.get_running_loop())

    def submit(self, work: Callable[[], None]) -> None:
        self._pool.submit(work)

    async def close(self) -> None:
        """Stop taking work; what runs finishes on its thread, what waits is dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class RecognitionSession:
    """One call's recognition: its recogniser, fed in order by one pool thread at a time."""

    def __init__(
        self, service: SpeechService, recognizer: Recognizer, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._service, self._recognizer, self._loop = service, recognizer, loop
        self._ops: deque[_Op] = deque()
        self._lock = threading.Lock()  # the queue and the counters below
        self._draining = False  # a pool thread owns the recogniser now
        self._queued = 0  # bytes of audio waiting
        self.failure: str | None = None
        self.closed = False

    @property
    def failed(self) -> bool:
        """True once recognition gave up on this call: use DTMF prompts."""
        return self.failure is not None

    @property
    def lag(self) -> float:
        """Seconds of this call's audio waiting for the recogniser."""
        return self._queued / PCM_BYTES_PER_SECOND

    async def expect(self, phrases: Sequence[str] | None) -> None:
        """Start an utterance (a grammar of `phrases`, or free speech for None); returns
        once the recogniser is ready. RecognitionFailed when the session failed over."""
        phrases = tuple(phrases) if phrases is not None else None
        await self._call("expect", phrases, self._service.finish_timeout)

    def feed(self, pcm: bytes) -> None:
        """Queue caller audio (8 kHz 16-bit PCM) for the recogniser; never blocks. Fails
        the session over when more than `max_lag` seconds are waiting."""
        if self.failure is not None or self.closed:
            return
        with self._lock:
            self._queued += len(pcm)
            behind = self._queued / PCM_BYTES_PER_SECOND
            if behind <= self._service.max_lag:
                self._ops.append(("feed", pcm, None))
                start, self._draining = not self._draining, True
        if behind > self._service.max_lag:
            self._fail(f"recognition fell {behind:.1f} s behind the call's audio")
        elif start:
            self._service.submit(self._drain)

    async def finish(self) -> Heard:
        """The utterance is over: what was heard, once the audio queued before it is
        recognised. RecognitionFailed when the session failed over (or does now, after
        `finish_timeout`)."""
        result: Heard = await self._call("finish", None, self._service.finish_timeout)
        return result

    def close(self) -> None:
        """The call ended: drop what is queued; the recogniser goes with the session."""
        self.closed = True
        self._drop(RecognitionFailed(CLOSED))

    async def _call(self, what: str, argument: Any, timeout: float) -> Any:
        done: asyncio.Future[Any] = self._loop.create_future()
        with self._lock:
            stopped = self.failure or (CLOSED if self.closed else None)
            if stopped is None:
                self._ops.append((what, argument, done))
                start, self._draining = not self._draining, True
        if stopped is not None:
            raise RecognitionFailed(stopped)
        if start:
            self._service.submit(self._drain)
        try:
            return await asyncio.wait_for(done, timeout)
        except TimeoutError:
            self._fail(f"recognition took more than {timeout:g} s to {what}")
            raise RecognitionFailed(self.failure or "") from None

    def _drain(self) -> None:
        """On a pool thread: run this call's queued work in order, for one slice."""
        until = time.monotonic() + SLICE
        while True:
            with self._lock:
                if not self._ops or self.failure is not None or self.closed:
                    self._draining = False
                    return
                what, argument, done = self._ops.popleft()
            try:
                result = self._run(what, argument)
            except Exception as e:  # any failure of the recogniser: this call goes to DTMF
                self._fail(f"the recogniser raised {type(e).__name__}: {e}", e)
                if done is not None:
                    self._loop.call_soon_threadsafe(_settle, done, None, RecognitionFailed(str(e)))
                with self._lock:
                    self._draining = False
                return
            if what == "feed":
                with self._lock:
                    self._queued = max(0, self._queued - len(argument))
            elif done is not None:
                self._loop.call_soon_threadsafe(_settle, done, result, None)
            if time.monotonic() > until:
                self._service.submit(self._drain)  # behind the other calls' work; still ours
                return

    def _run(self, what: str, argument: Any) -> Any:
        if what == "feed":
            return self._recognizer.feed(argument)
        if what == "expect":
            return self._recognizer.expect(argument)
        return self._recognizer.finish()

    def _fail(self, why: str, error: BaseException | None = None) -> None:
        with self._lock:
            if self.failure is not None:
                return
            self.failure = why
        log.warning("speech recognition failed over to DTMF: %s", why, exc_info=error)
        self._drop(RecognitionFailed(why))

    def _drop(self, error: RecognitionFailed) -> None:
        """Forget the queue; whoever waits on it gets `error`."""
        with self._lock:
            waiting = [done for _, _, done in self._ops if done is not None]
            self._ops.clear()
            self._queued = 0
        for done in waiting:
            self._loop.call_soon_threadsafe(_settle, done, None, error)


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.done():
        return  # the waiter gave up (timeout, cancelled)
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
