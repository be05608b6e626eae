"""Prompt audio out to a Media Stream: which 20 ms frames and marks to send now. Pure.

Twilio plays what it is sent in order and holds what it has not played yet; a `mark`
sent after a prompt comes back once the prompt has played, and `clear` drops what is
held (the marks it held come back at once). `Playback` keeps the prompts waiting to be
sent and the marks not yet echoed, and paces sending by the stream's own clock (the
media timestamps of the caller's audio, 50 frames a second): audio goes out no more
than `lead` seconds ahead of it. So Twilio never holds more than `lead` of a prompt, a
barge-in has little to drop, and a test that streams faster than real time hears its
prompts faster too.
"""

from __future__ import annotations

from collections import deque

from ivr.speech.audio import FRAME_MS
from ivr.telephony.media import frames

LEAD = 0.3  # seconds of audio sent ahead of the stream's clock: absorbs network jitter
# a mark not echoed this long after its prompt should have played counts as echoed: Twilio
# always echoes them, but a call must not wait for ever on one that got lost
MARK_SLACK = 3.0


class Playback:
    """One call's outgoing audio. `add` prompts; `due(clock)` says what to send now;
    `echoed` the marks Twilio sends back; `idle` once everything sent has played."""

    def __init__(self, lead: float = LEAD) -> None:
        self.lead = lead
        self._lead_ms = round(lead * 1000)  # milliseconds, so no rounding drift adds up
        self._queue: deque[bytes | str] = deque()  # 20 ms mu-law frames, and mark names
        self._sent_until = 0  # stream time (ms) the audio sent so far plays until
        # marks sent and not yet echoed, in order, with when their prompt plays until (ms)
        self._unechoed: list[tuple[str, int]] = []

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent and everything sent has played."""
        return not self._queue and not self._unechoed

    def add(self, ulaw: bytes, mark: str) -> None:
        """A prompt's audio (mu-law), then the mark that says it has played."""
        self._queue.extend(frames(ulaw))
        self._queue.append(mark)

    def due(self, clock: float) -> list[bytes | str]:
        """What to send at stream time `clock`, in order: frames (bytes) until the audio
        sent reaches `lead` past the clock, and the mark after a prompt's last frame."""
        now = round(clock * 1000)
        self._sent_until = max(self._sent_until, now)
        out: list[bytes | str] = []
        queue = self._queue
        while queue:
            head = queue[0]
            if isinstance(head, str):
                self._unechoed.append((head, self._sent_until))
            elif self._sent_until >= now + self._lead_ms:
                break
            else:
                self._sent_until += FRAME_MS
            out.append(queue.popleft())
        return out

    def echoed(self, name: str) -> bool:
        """Twilio sent `name` back: it and every mark before it have played. True when
        it was one of ours."""
        names = [mark for mark, _ in self._unechoed]
        if name not in names:
            return False
        del self._unechoed[: names.index(name) + 1]
        return True

    def overdue(self, clock: float, slack: float = MARK_SLACK) -> str | None:
        """The last mark sent, when it is `slack` seconds past when its prompt should have
        played and has not come back: the caller takes it as echoed."""
        if self._unechoed and clock * 1000 >= self._unechoed[-1][1] + slack * 1000:
            return self._unechoed[-1][0]
        return None

    def clear(self) -> bool:
        """Barge-in: drop what was not sent; Twilio drops what it holds (after a `clear`)
        and echoes the marks sent. True when something was still to be played."""
        playing = not self.idle
        self._queue.clear()
        self._sent_until = 0
        return playing
