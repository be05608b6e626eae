"""One listen of a Media Streams call: what the caller's keys, voice and silence mean. Pure.

The stream driver (`ivr.telephony.stream`) owns the socket, the recogniser and the voice
activity detector; it tells a `Listener` what happened and when (seconds of stream time,
from the media timestamps), and the listener decides: stop the prompt (barge-in), start
or stop feeding the recogniser, or end the listen with keys or silence. The same rules
as Twilio's `<Gather>` on the webhook path:
- the listen times out after the node's `timeout` of silence once the prompt has played
  (the `mark` echo says when), and after the same time between two keys;
- a menu takes one key; an ask collects up to `max_digits`, or up to the finish key
  (kept at the end of the digits: the engine takes it off), or up to a global key;
- while the prompt plays, input is taken only if the node allows barge-in, and taking it
  stops the prompt.

`understanding` says what a recogniser should listen for at a listen and how its N-best
list is read (the exact-phrase rule of `ivr.speech.intent.pick`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ivr.engine.session import Session
from ivr.flow.model import Ask, Flow, Listen, Menu
from ivr.speech.intent import YES_NO, digit_phrases, pick, pick_digits
from ivr.speech.recognizer import Heard


@dataclass(frozen=True, slots=True)
class Decision:
    """What the driver does after telling the listener something: at most a few flags."""

    clear: bool = False  # stop the prompt now (barge-in): Twilio's `clear`
    # the caller started speaking: feed the recogniser from here (the driver feeds while
    # `Listener.speaking`)
    feed: bool = False
    recognise: bool = False  # the caller stopped speaking: ask the recogniser what it was
    event: str | None = None  # "digits" | "no_input": the listen is over
    digits: str = ""


NOTHING = Decision()
MAX_UTTERANCE = 12.0  # seconds: a caller's answer is shorter; noise that never stops is not


class Listener:
    """The state of one listen. `speech`: whether speech is recognised at it (the node
    takes speech and the call's recogniser works); `playing`: whether its prompt still
    plays when the listen starts; times are stream seconds."""

    def __init__(self, listen: Listen, speech: bool, at: float, playing: bool) -> None:
        self.listen = listen
        self.speech = speech and "speech" in listen.modes
        self.dtmf = "dtmf" in listen.modes
        self.playing = playing
        self.quiet_since: float | None = None if playing else at  # silence counts from here
        self.digits = ""
        self.last_key = 0.0
        self.speaking = False  # between the voice's start and its end
        self.speech_since = 0.0  # when the voice started
        self.recognising = False  # the recogniser's answer is awaited
        self.done = False

    @property
    def open(self) -> bool:
        """Input is taken now: the prompt has played, or the node allows barge-in."""
        return not self.done and (self.listen.barge_in or not self.playing)

    def played(self, at: float) -> None:
        """The prompt has played to its end (or was cleared): silence counts from now."""
        self.playing = False
        if self.quiet_since is None and not self.busy:
            self.quiet_since = at

    def prompt_again(self) -> None:
        """Something more is said before the caller is heard (the notice that speech
        recognition stopped): silence counts again once it has played."""
        self.playing, self.quiet_since = True, None

    @property
    def busy(self) -> bool:
        """The caller is keying, speaking, or what they said is being recognised."""
        return bool(self.digits) or self.speaking or self.recognising

    def key(self, digit: str, at: float) -> Decision:
        if not self.dtmf or not self.open or self.recognising:
            return NOTHING
        clear, self.playing = self.playing, False
        self.speaking = False  # keys win over a voice heard meanwhile (a key's own tone)
        listen = self.listen
        if listen.keys:  # a menu: one key chooses (a key it does not know is a no-match)
            return self._over(Decision(clear, event="digits", digits=digit))
        if listen.finish_on and digit == listen.finish_on:
            return self._over(Decision(clear, event="digits", digits=self.digits + digit))
        self.digits += digit
        # a global key (one the ask does not collect) ends the entry: the engine takes it
        if digit in listen.global_keys or len(self.digits) >= listen.max_digits:
            return self._over(Decision(clear, event="digits", digits=self.digits))
        self.last_key = at
        return Decision(clear)

    def speech_started(self, at: float) -> Decision:
        if not self.speech or not self.open or self.busy:
            return NOTHING
        clear, self.playing = self.playing, False
        self.speaking, self.quiet_since, self.speech_since = True, None, at
        return Decision(clear, feed=True)

    def speech_ended(self, at: float) -> Decision:
        if not self.speaking:
            return NOTHING
        self.speaking, self.recognising = False, True
        return Decision(recognise=True)

    def heard_nothing(self, at: float) -> None:
        """The recogniser made nothing of it (a cough, a breath): listen on, silence
        counting from now."""
        self.recognising, self.quiet_since = False, at

    def speech_lost(self, at: float) -> None:
        """Speech recognition stopped working: keys only from now on."""
        self.speech = self.speaking = self.recognising = False
        if self.quiet_since is None and not self.playing and not self.digits:
            self.quiet_since = at

    def recognised(self) -> None:
        """What was said is the listen's answer."""
        self.done = True

    def tick(self, at: float) -> Decision:
        """Stream time went on: the listen may time out, and an utterance that goes on
        past `MAX_UTTERANCE` (loud noise, a television) is recognised as it is."""
        if self.speaking and at - self.speech_since >= MAX_UTTERANCE:
            return self.speech_ended(at)
        if self.done or self.speaking or self.recognising:
            return NOTHING
        timeout = self.listen.timeout
        if self.digits:
            if at - self.last_key >= timeout:
                return self._over(Decision(event="digits", digits=self.digits))
        elif self.quiet_since is not None and at - self.quiet_since >= timeout:
            return self._over(Decision(event="no_input"))
        return NOTHING

    def _over(self, decision: Decision) -> Decision:
        self.done, self.speaking = True, False
        return decision


# -- what the recogniser listens for, and how its answer is read -----------------------------

Reading = Callable[[Heard], tuple[str, float] | None]  # N-best -> (text, confidence) or None


def understanding(flow: Flow, session: Session, listen: Listen) -> tuple[list[str] | None, Reading]:
    """The phrases a recogniser should expect at `listen` (None: free speech), and how to
    read its N-best list: a menu's (or a confirmation's yes/no) exact phrases, digits for
    an ask that wants them, the best hypothesis for free speech. The text read is what the
    engine gets; None means nothing the listen can take was said (a no-match)."""
    spec = flow.nodes[listen.node].spec
    if isinstance(spec, Menu):
        matcher = YES_NO if session.waiting == "confirm" else spec.matcher
        phrases = list(listen.phrases)

        def option(heard: Heard) -> tuple[str, float] | None:
            found = pick(heard.alternatives, _confidences(heard), matcher)
            return (found.text, found.confidence) if found else None

        return phrases, option
    if isinstance(spec, Ask) and spec.input == "digits":
        low, high = spec.min_digits, spec.max_digits
        globals_ = spec.matcher if "speech" in listen.modes else None

        def digits(heard: Heard) -> tuple[str, float] | None:
            found = pick_digits(heard.alternatives, _confidences(heard), low, high)
            if found is None and globals_ is not None:  # a global's phrase, said whole
                found = pick(heard.alternatives, _confidences(heard), globals_)
            return (found.text, found.confidence) if found else None

        return [*digit_phrases(listen.language or flow.language), *listen.phrases], digits

    def free(heard: Heard) -> tuple[str, float] | None:
        return (heard.text, heard.confidence) if heard.text else None

    return None, free


def _confidences(heard: Heard) -> tuple[float, ...]:
    """One confidence per alternative (a recogniser without N-best scores gives none)."""
    if len(heard.confidences) == len(heard.alternatives):
        return heard.confidences
    return (heard.confidence,) + (0.0,) * (len(heard.alternatives) - 1)
