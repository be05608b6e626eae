"""The compiled flow: immutable nodes shared by every call on one flow version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ivr.flow.hours import Hours
from ivr.flow.ssml import Markup
from ivr.speech.intent import NO, YES, Matcher

Render = Callable[[Mapping[str, Any]], Any]  # a compiled template or expression


@dataclass(frozen=True, slots=True)
class Text:
    """Spoken text (already rendered); `ssml`, when the prompt has inline markup, is that
    text as a tree of words and tags (`text` is then its words alone)."""

    text: str
    ssml: tuple[Markup, ...] = ()


@dataclass(frozen=True, slots=True)
class Audio:
    """A recording to play, relative to the audio directory."""

    file: str


Part = Text | Audio


@dataclass(frozen=True, slots=True)
class Listen:
    """Wait for the caller. `keys` are the menu keys accepted (empty for an ask); an ask
    collects `min_digits`..`max_digits` ending on `finish_on`."""

    node: str
    modes: frozenset[str]  # "dtmf", "speech"
    timeout: float
    barge_in: bool = True
    keys: str = ""
    min_digits: int = 1
    max_digits: int = 1
    finish_on: str = ""
    phrases: tuple[str, ...] = ()
    sensitive: bool = False  # the answer must not be logged
    # an ask's global keys: one ends the entry at once where the transport can tell
    global_keys: str = ""
    language: str | None = None  # recognised in this language (None: the flow's)


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt: `static` when nothing in it is templated (rendered once, at compile time)."""

    static: tuple[Part, ...] | None
    pieces: tuple[Audio | Render, ...] = ()
    speaks: frozenset[str] = frozenset()  # variables it speaks
    source: tuple[Part, ...] = ()  # as written, templates unrendered (`ivr prompts` lists it)
    # a subflow's own language and voice, when not the flow's (None: the flow's)
    language: str | None = None
    voice: str | None = None
    # what a text channel shows instead (the parts' `text:`); None: the spoken words
    shown: PromptTemplate | None = None
    # the same prompt in the flow's other languages; this one is in the flow's own
    languages: tuple[tuple[str, PromptTemplate], ...] = ()

    def render(self, ctx: Mapping[str, Any]) -> tuple[Part, ...]:
        if self.static is not None:
            return self.static
        parts = (p if isinstance(p, Audio) else _text(p(ctx)) for p in self.pieces)
        return tuple(p for p in parts if not isinstance(p, Text) or p.text.strip())

    def in_language(self, language: str | None) -> PromptTemplate:
        """This prompt in `language` (a tag the flow declares), else in the flow's own."""
        for tag, prompt in self.languages:
            if tag == language:
                return prompt
        return self


def _text(value: Any) -> Text:
    return value if isinstance(value, Text) else Text(str(value))


@dataclass(frozen=True)
class Listening:
    """How a menu or ask listens and retries, made by the compiler and read by the engine.
    No-inputs and no-matches are counted apart, `retries` bounding each; the message
    before the k-th re-prompt of a kind is its item min(k, len) - 1 (the last repeats)."""

    timeout: float
    retries: int
    no_input: tuple[PromptTemplate, ...]
    no_match: tuple[PromptTemplate, ...]
    on_fail: str | None
    barge_in: bool
    on_no_input: str | None = None  # where no-inputs beyond `retries` go (compiled: or on_fail)
    on_no_match: str | None = None  # where no-matches beyond `retries` go (compiled: or on_fail)

    def message(self, kind: str, count: int) -> PromptTemplate:
        """What is said before the re-prompt after the `count`-th `kind` (no_input, no_match)."""
        messages = self.no_input if kind == "no_input" else self.no_match
        return messages[min(count, len(messages)) - 1]

    def gives_up(self, kind: str) -> str | None:
        """Where the caller goes when `kind` runs out of retries (None: the call ends failed)."""
        return self.on_no_input if kind == "no_input" else self.on_no_match


@dataclass(frozen=True)
class Option:
    name: str
    dtmf: str | None
    phrases: tuple[str, ...]
    goto: str | None  # None: repeat the prompt (or say the help, with `help`)
    is_global: bool = False
    help: bool = False  # say the node's help prompt (its prompt when it has none)


@dataclass(frozen=True)
class Menu:
    prompt: PromptTemplate
    options: tuple[Option, ...]
    by_key: Mapping[str, Option]
    matcher: Matcher
    listening: Listening
    modes: frozenset[str]  # "dtmf", "speech"
    confirm_below: float
    confirm: Render | None
    survey: str | None = None  # the answer (the option's name) is kept as this survey's
    help: PromptTemplate | None = None


@dataclass(frozen=True)
class Ask:
    prompt: PromptTemplate
    input: str  # digits | speech | any
    min_digits: int
    max_digits: int
    finish_on: str
    validate: Render | None
    save_as: str
    sensitive: bool
    listening: Listening
    survey: str | None = None  # the answer is kept in the call record as this survey's
    help: PromptTemplate | None = None
    # the flow's global options that work here: by a key the ask does not collect
    # (`by_key`), or by a spoken phrase said whole (`matcher`)
    globals: tuple[Option, ...] = ()
    by_key: Mapping[str, Option] = field(default_factory=dict)
    matcher: Matcher | None = None
    keys_only: bool = False  # sensitive, on Twilio's recogniser, not opted in: no speech


@dataclass(frozen=True)
class Http:
    method: str
    url: Render
    headers: tuple[tuple[str, Render], ...]
    json: Render | None
    timeout: float  # per attempt
    save_as: str | None
    sensitive: bool  # the request mentions a sensitive variable
    retries: int = 0  # attempts after the first one
    hold: PromptTemplate | None = None  # said when the answer is slow
    hold_after: float = 2.0
    text: bool = False  # the answer is saved as text; else it must be JSON


@dataclass(frozen=True)
class Wait:
    """What a caller waiting in a queue hears (`<Enqueue waitUrl>`): hold music, their
    place and expected wait, and a key that leaves the queue (to be called back)."""

    music: str | None = None
    announce: bool = True
    leave_key: str | None = None
    leave_prompt: PromptTemplate | None = None  # the offer of the leave key


# what Twilio tells of a transfer (DialCallStatus, QueueResult) -> the field naming where
# the flow goes on; an agent took the call -> `after`
TRANSFER_ENDS = {
    "completed": "after",
    "answered": "after",
    "bridged": "after",
    "busy": "on_busy",
    "queue-full": "on_busy",
    "no-answer": "on_no_answer",
    "failed": "on_failed",
    "canceled": "on_failed",
    "error": "on_failed",
    "system-error": "on_failed",
    "leave": "on_leave",
}


@dataclass(frozen=True)
class Transfer:
    to: Render
    queue: str | None
    say: PromptTemplate | None
    caller_id: str | None
    timeout: float | None
    attributes: tuple[tuple[str, Render], ...]
    # where the flow goes on when the transfer ends so (None: the call ends there)
    on_no_answer: str | None = None
    on_busy: str | None = None
    on_failed: str | None = None
    on_leave: str | None = None  # the caller left the queue with the wait's leave key
    after: str | None = None  # an agent took the call and the agent's leg ended
    whisper: PromptTemplate | None = None  # said to the agent before the caller is put through
    wait: Wait | None = None  # set: the caller waits in `queue` (<Enqueue>)
    # `queue` written as a template ("{{ history.last_queue or 'general' }}"): rendered per call
    queued: Render | None = None

    def queue_in(self, ctx: Mapping[str, Any]) -> str | None:
        """The queue a call goes to: `queue`, or its template rendered (None when empty)."""
        if self.queued is None:
            return self.queue
        return str(self.queued(ctx)).strip()[:64] or None

    def then(self, result: str) -> str | None:
        """The node the flow goes on at after the transfer ended with Twilio's `result`."""
        field_ = TRANSFER_ENDS.get(result)
        return getattr(self, field_) if field_ else self.on_failed

    @property
    def continues(self) -> bool:
        """Whether the flow may go on after this transfer: the call waits for its result."""
        return any((self.on_no_answer, self.on_busy, self.on_failed, self.on_leave, self.after))


@dataclass(frozen=True)
class Callback:
    """A callback request: the number to call (the caller ID unless told), confirmed or
    typed; a time window and a queue; posted to `url` when there is one. The call ends
    `transferred`, reason callback."""

    number: Render
    confirm: PromptTemplate | None  # "we will call you back on ...": yes/no; None: no check
    ask_number: PromptTemplate  # "enter the number to call, then #"
    window: Render | None
    queue: str | None
    url: Render | None
    say: PromptTemplate | None  # said once the request is taken
    listening: Listening


@dataclass(frozen=True)
class Record:
    prompt: PromptTemplate
    max_seconds: int
    finish_on: str
    save_as: str
    callback: Callback | None = None  # the recording asks to be called back


@dataclass(frozen=True)
class End:
    say: PromptTemplate | None
    outcome: str
    returns_to: str | None = None  # set on a subflow's ends: go on there instead of hanging up


@dataclass(frozen=True)
class Message:
    """A `message` node: `text` sent by `channel` (sms, whatsapp) to `to` during the call,
    made by the compiler; the engine renders it into an `act.Message` the runner sends."""

    text: Render
    channel: str
    to: Render
    # the caller may answer it to go on by text: at `go_on`, within `window` seconds of
    # sending; `verified` crosses for `verified_for` seconds of it (None: it does not)
    go_on: str | None = None
    window: float = 3600.0
    verified_for: float | None = None


CALLBACK_DIGITS = (6, 15)  # the digits of a number to call back: short local to full E.164

Spec = (
    Any  # PromptTemplate | Menu | Ask | Http | tuple (set, branch) | Transfer | Record | End | None
)


_ASK_MODES = {
    "digits": frozenset({"dtmf", "speech"}),
    "speech": frozenset({"speech"}),
    "any": frozenset({"dtmf", "speech"}),
}


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    spec: Spec
    next: str | None = None
    on_error: str | None = None
    resolves: str | None = None
    file: str = ""
    line: int = 0
    # the channels it runs on (empty: all); a text conversation that reaches it elsewhere
    # (or reaches a sensitive ask) goes to `on_text`, or is sent to voice
    channels: frozenset[str] = frozenset()
    on_text: str | None = None

    def runs_on(self, channel: str) -> bool:
        """Whether a conversation on `channel` may enter this node."""
        if self.channels:
            return channel in self.channels
        sensitive = isinstance(self.spec, Ask) and self.spec.sensitive
        return channel == "voice" or not sensitive  # carriers keep messages: keys only

    @cached_property
    def listen(self) -> Listen:
        """What this menu or ask listens for; built once per node, on first use."""
        spec = self.spec
        if isinstance(spec, Menu):
            keys, phrases = "".join(spec.by_key), tuple(spec.matcher.phrases)
            return Listen(
                self.name,
                spec.modes,
                spec.listening.timeout,
                spec.listening.barge_in,
                keys=keys,
                phrases=phrases,
                language=spec.prompt.language,
            )
        assert isinstance(spec, Ask)
        modes = frozenset({"dtmf"}) if spec.keys_only else _ASK_MODES[spec.input]
        keys = "".join(spec.by_key)
        free_keys = spec.input == "speech" and bool(keys)  # it takes no keys but the globals'
        if free_keys:
            modes |= {"dtmf"}
        heard = "speech" in modes and spec.matcher is not None
        return Listen(
            self.name,
            modes,
            spec.listening.timeout,
            spec.listening.barge_in,
            keys=keys if free_keys else "",
            min_digits=spec.min_digits,
            max_digits=spec.max_digits,
            finish_on=spec.finish_on,
            phrases=tuple(spec.matcher.phrases) if heard and spec.matcher else (),
            sensitive=spec.sensitive,
            global_keys=keys,
            language=spec.prompt.language,
        )

    @cached_property
    def number_listen(self) -> Listen:
        """Listening for the number a callback goes to, typed or said (a callback node)."""
        spec: Callback = self.spec if isinstance(self.spec, Callback) else self.spec.callback
        return Listen(
            self.name,
            frozenset({"dtmf", "speech"}),
            spec.listening.timeout,
            spec.listening.barge_in,
            min_digits=CALLBACK_DIGITS[0],
            max_digits=CALLBACK_DIGITS[1],
            finish_on="#",
        )

    @cached_property
    def confirm_listen(self) -> Listen:
        """Listening for yes (1) or no (2) after "Did you mean ...?"."""
        timeout = self.spec.listening.timeout
        return Listen(
            self.name, frozenset({"dtmf", "speech"}), timeout, True, keys="12", phrases=(*YES, *NO)
        )

    def prompts(self) -> list[tuple[str, PromptTemplate]]:
        """(role, prompt) for everything this node may say, for audio made ahead of calls
        (`ivr.speech.prompts`) and `ivr prompts`."""
        s, out = self.spec, list[tuple[str, PromptTemplate]]()
        if isinstance(s, PromptTemplate):
            out.append(("say", s))
        elif isinstance(s, Menu | Ask):
            out.append(("prompt", s.prompt))
            if s.help is not None:
                out.append(("help", s.help))
            for kind in ("no_input", "no_match"):
                messages = getattr(s.listening, kind)
                out += [(kind if k == 1 else f"{kind}.{k}", m) for k, m in enumerate(messages, 1)]
        elif isinstance(s, Record):
            out.append(("prompt", s.prompt))
        elif isinstance(s, Http) and s.hold is not None:
            out.append(("hold", s.hold))
        elif isinstance(s, Transfer | End) and s.say is not None:
            out.append(("say", s.say))
        if isinstance(s, Transfer) and s.whisper is not None:
            out.append(("whisper", s.whisper))
        if isinstance(s, Transfer) and s.wait is not None and s.wait.leave_prompt is not None:
            out.append(("leave", s.wait.leave_prompt))
        callback = s.callback if isinstance(s, Record) else s if isinstance(s, Callback) else None
        if callback is not None:
            if callback.confirm is not None:
                out.append(("confirm", callback.confirm))
            out.append(("number", callback.ask_number))
            if callback.say is not None:
                out.append(("say", callback.say))
        return out

    def edges(self) -> list[tuple[str, str]]:
        """(label, target) for every way out of this node, for checks and diagrams."""
        out: list[tuple[str, str]] = []
        s = self.spec
        if self.next:
            out.append(("next", self.next))
        options = s.options if isinstance(s, Menu) else s.globals if isinstance(s, Ask) else ()
        for o in options:
            keys = [f"[{o.dtmf}]"] if o.dtmf and (isinstance(s, Menu) or o.dtmf in s.by_key) else []
            label = " / ".join([*keys, *o.phrases[:2]])
            out.append((label or o.name, o.goto or self.name))
        listens = s.callback if isinstance(s, Record) else s
        if isinstance(listens, Menu | Ask | Callback):
            out.append(("no_input / no_match", self.name))
            for kind in ("no_input", "no_match"):
                target = listens.listening.gives_up(kind)
                label = "on_fail" if target == listens.listening.on_fail else f"on_{kind}"
                if target and (label, target) not in out:
                    out.append((label, target))
        if isinstance(s, Transfer):
            for label in ("on_no_answer", "on_busy", "on_failed", "on_leave", "after"):
                if getattr(s, label):
                    out.append((label, getattr(s, label)))
        if self.on_error:
            out.append(("on_error", self.on_error))
        if self.on_text:
            out.append(("on_text", self.on_text))
        if isinstance(s, Message) and s.go_on:
            out.append(("continue", s.go_on))
        if self.kind == "branch":
            out.extend((cond or "else", target) for cond, _, target in s)
        if isinstance(s, End) and s.returns_to:
            out.append(("return", s.returns_to))
        return out


@dataclass(frozen=True)
class Experiment:
    """A flow's A/B split of new calls between variant flows, made by the compiler and
    read by the registry when it routes a call (`ivr.flow.experiment.choose`)."""

    name: str
    split: tuple[tuple[str, int], ...]  # (variant flow id, weight), sorted by flow id

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(flow_id for flow_id, _ in self.split)

    @property
    def total(self) -> int:
        return sum(weight for _, weight in self.split)


@dataclass(frozen=True)
class Flow:
    """A compiled, immutable flow: what `ivr.engine.step` runs."""

    id: str
    version: str
    file: str
    start: str
    nodes: Mapping[str, Node]
    language: str = "en-US"  # the flow's own: calls start in it, prompts fall back to it
    languages: tuple[str, ...] = ()  # every one its prompts are in, `language` first
    language_by_number: Mapping[str, str] = field(default_factory=dict)  # called -> language
    # its own `apology` and `speech_down` in its other languages: role -> language -> parts
    said_in: Mapping[str, Mapping[str, tuple[Part, ...]]] = field(default_factory=dict)
    voice: str | None = None
    numbers: tuple[str, ...] = ()
    hours: Mapping[str, Hours] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    sensitive: frozenset[str] = frozenset()
    apology: tuple[Part, ...] | None = None  # said when a call fails (None: the engine's)
    hold_music: str | None = None  # played while a slow backend answer is awaited
    experiment: Experiment | None = None  # new calls routed here are split between variants
    speech: str = "twilio"  # who recognises speech: twilio (<Gather>) or vosk (Media Streams)
    speech_down: tuple[Part, ...] | None = None  # said when a stream's recogniser fails
    speech_model: str | None = None  # Twilio's <Gather speechModel> (None: Twilio chooses)
    speech_timeout: int | None = None  # seconds of silence ending speech (None: Twilio's auto)

    def own(self, role: str, language: str | None) -> tuple[Part, ...] | None:
        """The flow's own `apology` or `speech_down` (`role`) in `language`, else in its
        own language; None when it has none (ivr's built-in one is said)."""
        default = self.apology if role == "apology" else self.speech_down
        if default is None or language is None:
            return default
        return self.said_in.get(role, {}).get(language, default)

    idle: float = 1800.0  # seconds a text conversation may wait for the customer (then abandoned)
    # the transfer node callers go to when their session store is unreachable (None: they
    # hear the apology and the call ends failed); its `to` is static (checked at compile)
    fallback: str | None = None
    # where an outbound call answered by a machine starts (None: it is hung up on)
    voicemail: str | None = None
