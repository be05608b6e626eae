"""The interpreter: `step(flow, session, event) -> (session, actions)`, pure and synchronous.

No I/O, no clock (time comes with the event), no globals. Each call of `step`
works on a copy of the session, so a caller of `step` can retry or discard it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ivr.engine import actions as act
from ivr.engine import apologies
from ivr.engine.events import (
    NO_HISTORY,
    CallStarted,
    Digits,
    Event,
    FetchResult,
    HangUp,
    MessageSent,
    NoInput,
    Recorded,
    RecordingStatus,
    Resumed,
    Speech,
    TransferEnded,
)
from ivr.engine.session import MASK, Session
from ivr.flow.listing import listing
from ivr.flow.model import (
    CALLBACK_DIGITS,
    TRANSFER_ENDS,
    Ask,
    Callback,
    End,
    Flow,
    Http,
    Listening,
    Menu,
    Node,
    Option,
    PromptTemplate,
    Record,
    Text,
)
from ivr.flow.model import Message as MessageSpec
from ivr.flow.model import Transfer as TransferSpec
from ivr.speech.intent import YES_NO, spoken_digits, yes_no_phrases

APOLOGY = act.Prompt(
    (Text("Sorry, something went wrong on our side. Please call again later. Goodbye."),)
)
GIVE_UP = act.Prompt((Text("Sorry, I couldn't help you this time. Goodbye."),))
MAX_HOPS = 200  # nodes entered in one step before the flow counts as looping
MAX_TRANSCRIPT = 60  # lines of a call's transcript kept (the last ones)
MAX_SAID = 60  # characters of what a caller said kept in the transcript
MAX_MESSAGE = 320  # characters of a message sent kept in the transcript
CALLBACK_TIMEOUT = 5.0  # seconds for a backend to take a callback request (per attempt)


def fail(
    session: Session, error: str, at: float, apology: act.Prompt = APOLOGY
) -> tuple[Session, list[act.Action]]:
    """End a call as `failed`: ivr's fault, not the caller's. The one place a call fails:
    the engine calls it for errors inside a step, the runner for errors around one. The
    caller hears `apology` and is hung up on; sensitive values are dropped."""
    s = session.copy()
    return s, _fail(s, error, at, apology)


def _fail(s: Session, error: str, at: float, apology: act.Prompt) -> list[act.Action]:
    s.error = error
    _finish(s, "failed", at)
    return [apology, act.Hangup(str(s.outcome))]


def apology_of(flow: Flow | None, language: str | None = None) -> act.Prompt:
    """What a caller of `flow` hears when the call fails: the flow's own, else the built-in
    one in the call's `language` (default: the flow's)."""
    if flow is None:
        return APOLOGY
    if flow.apology:
        own = flow.own("apology", language) or flow.apology
        return act.Prompt(own, None if language in (None, flow.language) else language)
    said = apologies.apology("failed", language or flow.language)
    return said if language in (None, flow.language) else act.Prompt(said.parts, language)


def call_language(flow: Flow, session: Session) -> str:
    """The language the call is in: its `language` variable when the flow declares it
    (a menu, a backend or the called number chose it), else the flow's own."""
    chosen = session.vars.get("language")
    return chosen if isinstance(chosen, str) and chosen in flow.languages else flow.language


def _finish(s: Session, outcome: str, at: float) -> None:
    if s.transfer is not None and outcome != "transferred":
        # a call that reached an agent, or tried to, stays transferred whatever followed
        # (a survey, a voicemail): containment counts calls no agent was needed for
        outcome, s.reason, s.reason_at = "transferred", s.transfer, s.transfer_at
    s.outcome, s.waiting, s.ended_at, s.pending = outcome, None, at, None
    for name in s.sensitive:  # an ended call needs them no more: they are not kept
        s.vars.pop(name, None)


def new_session(flow: Flow, call_id: str) -> Session:
    """An empty session for a call about to start on `flow`."""
    return Session(call_id=call_id, flow_id=flow.id, version=flow.version)


def step(flow: Flow, session: Session, event: Event) -> tuple[Session, list[act.Action]]:
    """Advance a call by one event; returns the new session and what to do now."""
    s = session.copy()
    out: list[act.Action] = []
    if s.ended or not fits(s, event):
        return s, out  # it changes nothing, and takes no turn
    if not isinstance(event, RecordingStatus):  # it may come between any two turns
        s.turn += 1
    s.updated_at = event.at
    turn = _Turn(flow, s, out, event.at)
    try:
        turn.handle(event)
    except Exception as e:  # a template or expression failed at run time: never a dead call
        turn.fail(f"{type(e).__name__} at {s.node}: {e}")
    return s, out


def fits(session: Session, event: Event) -> bool:
    """Whether `event` is one the call waits for: a key or words while it listens, a
    backend's answer while it fetches, a recording while it records, a start before it
    started; a hang-up always; a recording's status always. Anything else (a late or
    stray callback) changes nothing. Once the flow ended, only the status of the recording
    it waits for (its outcome is not final without it) is awaited, and the customer going
    on by text in the window a message node opened."""
    waiting = session.waiting
    if isinstance(event, RecordingStatus):
        return True
    if session.outcome is not None:  # over: but its window for text may be open
        return isinstance(event, Resumed) and session.handoff is not None
    if isinstance(event, CallStarted):
        return not waiting and not session.path
    if isinstance(event, Digits | Speech | NoInput):
        return waiting in ("listen", "confirm")
    if isinstance(event, FetchResult):
        return waiting == "fetch"
    if isinstance(event, MessageSent):
        return waiting == "message"
    if isinstance(event, Recorded):
        return waiting == "record"
    if isinstance(event, TransferEnded):
        return waiting == "transfer"
    return not isinstance(event, Resumed)  # HangUp; a call goes on by text once over


class _Turn:
    """One step's work on a session (mutable copy) and its list of actions."""

    def __init__(self, flow: Flow, s: Session, out: list[act.Action], at: float) -> None:
        self.flow, self.s, self.out, self.at = flow, s, out, at
        self.texting = s.medium != "voice"  # on a text channel (looked up once: a hot path)

    # -- events ----------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        s = self.s
        if isinstance(event, CallStarted):
            s.started_at = event.at
            s.vars = {
                **self.flow.vars,
                **event.given,
                "caller": event.caller,
                "called": event.called,
                "call_id": s.call_id,
                "flow_id": self.flow.id,
                "language": self.flow.language_by_number.get(event.called, self.flow.language),
                "history": {**NO_HISTORY, **event.history},  # every field, null when unknown
            }
            s.sensitive = sorted(self.flow.sensitive)
            self.run(self.answered(event.answered_by))
        elif isinstance(event, HangUp):
            self.note("hangup")
            self.finish("abandoned")
        elif isinstance(event, Digits | Speech | NoInput):
            node = self.node(s.node)
            callback = _callback_of(node)
            if callback is not None:
                self.run(self.callback_input(node, callback, event))
            elif isinstance(node.spec, Menu):
                self.run(self.menu_input(node, node.spec, event))
            elif isinstance(node.spec, Ask):
                self.run(self.ask_input(node, node.spec, event))
        elif isinstance(event, FetchResult):
            self.run(self.fetched(self.node(s.node), event))
        elif isinstance(event, MessageSent):
            self.run(self.message_sent(self.node(s.node), event))
        elif isinstance(event, Recorded):
            self.run(self.recorded(self.node(s.node), event))
        elif isinstance(event, TransferEnded):
            self.run(self.transfer_ended(self.node(s.node), event))
        elif isinstance(event, RecordingStatus):
            self.recording_status(event)
        elif isinstance(event, Resumed):
            self.resume(event)

    def answered(self, by: str) -> str | None:
        """Where a call starts: an answering machine (or fax) of an outbound call gets the
        flow's `voicemail` node, or is hung up on (outcome abandoned: nobody was served)."""
        if by:
            self.s.vars["answered_by"] = by
            self.note("answered_by", by)
        if not by.startswith(("machine", "fax")):
            return self.flow.start
        if self.flow.voicemail is None:
            self.hang_up("abandoned")
        return self.flow.voicemail

    # -- walking nodes -----------------------------------------------------------------------

    def node(self, name: str | None) -> Node:
        node = self.flow.nodes.get(name or "")
        if node is None:
            raise LookupError(f"no node {name!r} in flow {self.flow.id}")
        return node

    def run(self, name: str | None) -> None:
        """Enter `name` and follow the flow until it waits for something or ends."""
        s, nodes = self.s, self.flow.nodes
        hops = 0
        while name is not None and s.outcome is None:
            hops += 1
            if hops > MAX_HOPS:
                self.fail(f"more than {MAX_HOPS} nodes without input: a loop around {name}")
                return
            node = nodes.get(name)
            if node is None:
                raise LookupError(f"no node {name!r} in flow {self.flow.id}")
            if self.texting and not node.runs_on(s.medium):
                name = self.off_channel(node)
                continue
            s.node, s.waiting, s.pending = name, None, None
            s.misses = s.no_inputs = s.no_matches = 0
            s.path.append(name)
            if node.resolves and node.kind not in (
                "record",
                "http",
                "message",
            ):  # those: once their result is in
                self.resolve(node)
            name = _ENTER[node.kind](self, node)

    def resolve(self, node: Node) -> None:
        if node.resolves and node.resolves not in self.s.tasks:
            self.s.tasks.append(node.resolves)

    def ctx(self, **extra: Any) -> dict[str, Any]:
        return {
            **self.s.vars,
            "open": self.is_open,
            "closed_message": self.closed_message,
            "now": self.at,
            **extra,
        }

    def is_open(self, name: str) -> bool:
        hours = self.flow.hours.get(name)
        return hours is not None and hours.is_open(self.at)

    def closed_message(self, name: str) -> str:
        """What ops said when they closed these hours (`ivr hours close --say`), else ""."""
        hours = self.flow.hours.get(name)
        return "" if hours is None else hours.closed_message(self.at)

    def say(self, prompt: PromptTemplate | None, role: str, **extra: Any) -> None:
        """Say `prompt` (if any); the transcript notes it as `role` at this node."""
        if prompt is not None:
            other = None  # the call's language, when not the flow's own
            if len(self.flow.languages) > 1:  # (most flows have one: nothing to look up)
                language = self.language()
                prompt, other = prompt.in_language(language), self.other(language)
            if self.texting and prompt.shown is not None:
                prompt = prompt.shown
            parts = prompt.render(self.ctx(**extra)) if prompt.static is None else prompt.static
            if parts:
                # a subflow's own language and voice, else the call's language
                spoken = prompt.language or other
                self.out.append(act.Prompt(parts, spoken, prompt.voice))
                if role:
                    self.note(role)

    def note(self, *what: Any) -> None:
        """A line of the call's transcript: seconds into the call, node, what happened."""
        s = self.s
        s.transcript.append([round(self.at - s.started_at, 1), s.node, *what])
        if len(s.transcript) > MAX_TRANSCRIPT:  # the end of a call tells most of why it ended
            del s.transcript[0]

    def finish(self, outcome: str) -> None:
        _finish(self.s, outcome, self.at)

    def hang_up(self, outcome: str) -> None:
        """End the call here: `outcome`, unless an agent was tried (`_finish`)."""
        self.finish(outcome)
        self.out.append(act.Hangup(str(self.s.outcome)))

    def fail(self, error: str, apology: act.Prompt | None = None) -> None:
        """A technical error: apologise, hang up, outcome failed."""
        apology = apology or apology_of(self.flow, self.language())
        self.out += _fail(self.s, error, self.at, apology)

    def language(self) -> str:
        return call_language(self.flow, self.s)

    def other(self, language: str) -> str | None:
        """`language` for an action, None when it is the flow's own (the adapters' default)."""
        return None if language == self.flow.language else language

    def listening(self, listen: act.Listen) -> act.Listen:
        """`listen` in the call's language: recognition's, and the built-in words it hears."""
        if len(self.flow.languages) < 2:
            return listen
        language = self.other(self.language())
        return listen if language is None else replace(listen, language=language)

    def heard(self, node: Node, mode: str, result: str, event: Event | None = None) -> None:
        """Count an input at `node` (`mode`: dtmf, speech or "" for none; `result`: match,
        no_match or no_input) and note it, masked when the answer is sensitive (or a
        phone number, at a callback)."""
        key = f"{node.name}:{mode}:{result}" if mode else f"{node.name}:{result}"
        self.s.inputs[key] = self.s.inputs.get(key, 0) + 1
        said: list[Any] = []
        if isinstance(event, Digits | Speech):
            text = event.digits if isinstance(event, Digits) else event.text
            masked = (isinstance(node.spec, Ask) and node.spec.sensitive) or (
                self.s.pending == "callback:number"
            )
            said = [MASK if masked else text[:MAX_SAID]]
            if isinstance(event, Speech):
                said.append(round(event.confidence, 2))
        self.note(mode or "silence", result, *said)

    # -- entering nodes: one function per kind ------------------------------------------------

    def enter_say(self, node: Node) -> str | None:
        self.say(node.spec, "say")
        return node.next

    def enter_menu(self, node: Node) -> str | None:
        self.question(node, "prompt")
        self.listen(node)
        return None

    enter_ask = enter_menu

    def question(self, node: Node, role: str) -> None:
        """Say a menu's or an ask's prompt; by text, a menu without a `text:` of its own
        is its choices, as one message."""
        spec: Menu | Ask = node.spec
        if self.texting and isinstance(spec, Menu) and spec.prompt.shown is None:
            self.text(listing(spec, self.language()), role)
        else:
            self.say(spec.prompt, role)

    def text(self, words: str, role: str) -> None:
        """Say built-in `words` (already in the call's language)."""
        self.out.append(act.Prompt((Text(words),), self.other(self.language())))
        if role:
            self.note(role)

    def off_channel(self, node: Node) -> str | None:
        """A text conversation reached a node that does not run on its channel (a sensitive
        ask, a voice-only step): on to its `on_text`, else told to call; the conversation
        ends transferred (reason channel): self-service could not finish it here."""
        self.note("off_channel", node.name)
        if node.on_text:
            return node.on_text
        self.call_us("to_voice")
        self.s.reason, self.s.reason_at = f"channel:{node.name}", node.name
        self.hang_up("transferred")
        return None

    def call_us(self, kind: str) -> None:
        """Tell a text customer to call (`kind`: why), at the flow's first number."""
        language = self.language()
        at = apologies.AT_NUMBER.get(language.split("-", 1)[0].lower(), "")
        number = self.flow.numbers[0] if self.flow.numbers else ""
        self.text(
            apologies.said(kind, language).format(at=at.format(number=number) if number else ""),
            "say",
        )

    def confirm_listen(self, node: Node) -> act.Listen:
        """Listening for yes or no, in the call's language when not the flow's own."""
        language = self.other(self.language())
        if language is None:
            return node.confirm_listen
        return replace(node.confirm_listen, language=language, phrases=yes_no_phrases(language))

    def listen(self, node: Node) -> None:
        # what led here is spent: a transfer after the caller's next answer has its own reason
        self.s.waiting, self.s.reason = "listen", None
        self.out.append(self.listening(node.listen))

    def enter_http(self, node: Node) -> str | None:
        h: Http = node.spec
        ctx = self.ctx()
        self.s.waiting = "fetch"
        language = self.language()
        hold = h.hold.in_language(language).render(ctx) if h.hold is not None else ()
        self.out.append(
            act.Fetch(
                node.name,
                h.method,
                str(h.url(ctx)),
                h.timeout,
                headers=tuple((k, str(v(ctx))) for k, v in h.headers),
                json=None if h.json is None else h.json(ctx),
                sensitive=h.sensitive,
                retries=h.retries,
                hold=act.Prompt(hold, h.hold.language or self.other(language), h.hold.voice)
                if h.hold and hold
                else None,
                hold_after=h.hold_after,
                text=h.text,
            )
        )
        return None

    def enter_message(self, node: Node) -> str | None:
        m: MessageSpec = node.spec
        ctx = self.ctx()
        to, text = str(m.to(ctx)).strip(), str(m.text(ctx)).strip()
        caller = str(self.s.vars.get("caller", ""))
        if self.texting and to in ("", caller):  # the customer is writing to us
            self.out.append(act.Prompt((Text(text),)))  # it is shown here, not sent
            self.note("message", self.s.medium, "shown")
            self.resolve(node)
            return node.next
        self.s.waiting = "message"
        self.note("message", m.channel, _masked(to), text[:MAX_MESSAGE])
        self.out.append(act.Message(node.name, to, m.channel, text))
        return None

    def message_sent(self, node: Node, event: MessageSent) -> str | None:
        """Sent: its task counts and the flow goes on; not sent: at on_error, else next."""
        self.note("sent" if event.ok else "not sent", event.sid if event.ok else event.error)
        if event.ok:
            self.resolve(node)
            m: MessageSpec = node.spec
            if m.go_on is not None:  # the caller may answer it to go on by text
                verified = self.at + m.verified_for if m.verified_for is not None else None
                self.hand_off(node.name, m.channel, m.go_on, self.at + m.window, verified)
            return node.next
        return node.on_error or node.next

    def enter_set(self, node: Node) -> str | None:
        for name, expr in node.spec:
            self.s.vars[name] = expr(self.ctx())
        return node.next

    def enter_branch(self, node: Node) -> str | None:
        ctx = self.ctx()
        for _, cond, target in node.spec:
            if cond is None or cond(ctx):
                return str(target)
        self.fail(f"no case of branch {node.name} is true and it has no else")
        return None

    def enter_transfer(self, node: Node) -> str | None:
        t: TransferSpec = node.spec
        s = self.s
        came_from = s.path[-2] if len(s.path) > 1 else node.name
        if s.reason is None:
            s.reason, s.reason_at = f"node:{came_from}", came_from
        reason = s.reason
        ctx = self.ctx(reason=reason)
        queue = t.queue_in(ctx)
        if self.texting:  # agents take calls: the customer is told where to call
            s.queue, s.transfer, s.transfer_at = queue, reason, s.reason_at
            self.call_us("agent_by_voice")
            self.finish("transferred")
            return None
        self.say(t.say, "say")
        whisper = t.whisper.render(ctx) if t.whisper is not None else ()
        self.out.append(
            act.Transfer(
                str(t.to(ctx)),
                queue,
                reason,
                {k: str(v(ctx)) for k, v in t.attributes},
                t.caller_id,
                t.timeout,
                whisper=act.Prompt(whisper).text if whisper else None,
                wait=t.wait is not None,
                tasks=tuple(s.tasks),
            )
        )
        s.reason, s.queue = reason, queue
        s.transfer, s.transfer_at = reason, s.reason_at
        if t.continues:  # Twilio tells how the transfer ended (TransferEnded), and on we go
            s.waiting = "transfer"
            return None
        self.finish("transferred")
        return None

    def transfer_ended(self, node: Node, event: TransferEnded) -> str | None:
        t: TransferSpec = node.spec
        s = self.s
        s.transfer_result = event.result
        self.note("transfer", event.result)
        target = None if event.result == "hangup" else t.then(event.result)
        if target is not None:
            return target
        if TRANSFER_ENDS.get(event.result) != "after" and event.result != "hangup":
            self.out.append(apologies.apology("no_agent", self.flow.language))
        self.hang_up("transferred")
        return None

    def enter_record(self, node: Node) -> str | None:
        r: Record = node.spec
        if self.texting and r.prompt.shown is None:
            self.text(apologies.said("record_text", self.language()), "prompt")
        else:
            self.say(r.prompt, "prompt")
        self.s.waiting, self.s.reason = "record", None
        self.out.append(act.Record(node.name, r.max_seconds, r.finish_on))
        return None

    def enter_end(self, node: Node) -> str | None:
        e: End = node.spec
        self.say(e.say, "say")
        if e.returns_to:
            return e.returns_to
        self.hang_up(e.outcome)
        return None

    def enter_subflow(self, node: Node) -> str | None:
        return node.next

    # -- answers -----------------------------------------------------------------------------

    def menu_input(self, node: Node, m: Menu, event: Event) -> str | None:
        if isinstance(event, NoInput):
            return self.miss(node, m.listening, "no_input", event)
        mode = "dtmf" if isinstance(event, Digits) else "speech"
        if self.s.waiting == "confirm":
            return self.confirmed(node, m, event, mode)
        option: Option | None = None
        if isinstance(event, Digits):
            option = m.by_key.get(event.digits[:1])
        elif isinstance(event, Speech):
            match = m.matcher.match(event.text)
            if match is not None:
                option = next(o for o in m.options if o.name == match.option)
                if m.confirm and event.confidence * match.score < m.confirm_below:
                    self.s.waiting, self.s.pending = "confirm", option.name
                    question = m.confirm(self.ctx(option=option.name, phrase=match.phrase))
                    question_in = m.prompt.language or self.other(self.language())
                    said = (Text(str(question)),)
                    self.out.append(act.Prompt(said, question_in, m.prompt.voice))
                    self.note(mode, "unsure", event.text[:MAX_SAID], round(event.confidence, 2))
                    self.note("confirm")
                    self.out.append(self.confirm_listen(node))
                    return None
        if option is None:
            return self.miss(node, m.listening, "no_match", event, mode)
        self.heard(node, mode, "match", event)
        return self.choose(node, option)

    def confirmed(self, node: Node, m: Menu, event: Event, mode: str) -> str | None:
        if isinstance(event, Digits):
            answer = {"1": "yes", "2": "no"}.get(event.digits[:1])
        else:
            match = YES_NO.match(event.text) if isinstance(event, Speech) else None
            answer = match.option if match else None
        option = next((o for o in m.options if o.name == self.s.pending), None)
        self.s.waiting, self.s.pending = "listen", None
        if answer != "yes" or option is None:
            return self.miss(node, m.listening, "no_match", event, mode)
        self.heard(node, mode, "match", event)
        return self.choose(node, option)

    def choose(self, node: Node, option: Option) -> str | None:
        """A menu's option or a global one (at a menu or an ask) was chosen."""
        if option.goto is None:  # repeat, or help: the prompt (or the help), then listen again
            spec: Menu | Ask = node.spec
            if option.help and spec.help is not None:
                self.say(spec.help, "help")
            else:
                self.question(node, "help" if option.help else "repeat")
            self.listen(node)
            return None
        s = self.s
        s.vars["last_option"] = option.name
        if isinstance(node.spec, Menu) and node.spec.survey and not option.is_global:
            s.survey[node.spec.survey] = option.name
        kind = "global" if option.is_global else "option"
        s.reason, s.reason_at = f"{kind}:{option.name}", node.name
        return option.goto

    def ask_input(self, node: Node, a: Ask, event: Event) -> str | None:
        if isinstance(event, NoInput):
            return self.miss(node, a.listening, "no_input", event)
        if isinstance(event, Speech) and "speech" not in node.listen.modes:
            return self.miss(node, a.listening, "no_match", event, "speech")  # keys only here
        chosen = _global(a, event)
        if chosen is not None:
            self.heard(node, "dtmf" if isinstance(event, Digits) else "speech", "match", event)
            return self.choose(node, chosen)
        value: str | None
        if isinstance(event, Digits):
            mode, value = "dtmf", event.digits
            if a.finish_on and value.endswith(a.finish_on):
                value = value[: -len(a.finish_on)]
            if a.input == "speech":
                value = None
        else:
            assert isinstance(event, Speech)
            mode, said = "speech", event.text.strip()
            value = spoken_digits(said) if a.input != "speech" else said
            if value is None and a.input == "any":
                value = said
        digits_wanted = a.input == "digits" or (
            a.input == "any" and value is not None and value.isdigit()
        )
        if not value or (
            digits_wanted and not (value.isdigit() and a.min_digits <= len(value) <= a.max_digits)
        ):
            return self.miss(node, a.listening, "no_match", event, mode)
        if a.validate is not None and not a.validate(self.ctx(value=value)):
            return self.miss(node, a.listening, "no_match", event, mode)
        self.heard(node, mode, "match", event)
        self.s.vars[a.save_as] = value
        if a.survey:
            self.s.survey[a.survey] = value
        return node.next

    def miss(
        self,
        node: Node,
        listening: Listening,
        kind: str,
        event: Event,
        mode: str = "",
        again: Callable[[], None] | None = None,
    ) -> str | None:
        """No input or no match: re-prompt with the message for this try of its kind, or,
        past `retries` of that kind, go to on_no_input / on_no_match (default on_fail)."""
        s = self.s
        self.heard(node, mode, kind, event)
        s.misses += 1
        if kind == "no_input":
            s.no_inputs = count = s.no_inputs + 1
        else:
            s.no_matches = count = s.no_matches + 1
        if count > listening.retries:
            s.reason, s.reason_at = f"on_fail:{node.name}", node.name
            target = listening.gives_up(kind)
            if target is None:
                language = self.language()
                said = apologies.apology("give_up", language)
                give_up = act.Prompt(said.parts, self.other(language))
                self.fail(f"retries ran out at {node.name} and it has no on_fail", give_up)
            return target
        message = listening.message(kind, count)
        self.say(message, f"{kind}:{s.misses + 1}")  # the attempt the caller is now on
        if again is not None:
            again()
        else:
            self.question(node, "")
            self.listen(node)
        return None

    def fetched(self, node: Node, result: FetchResult) -> str | None:
        self.note("fetch", result.status or result.error)
        callback = _callback_of(node)
        if result.ok and callback is not None:  # the callback request was taken
            self.callback_booked(callback)
            return None
        if result.ok:
            self.resolve(node)
            if node.spec.save_as:
                self.s.vars[node.spec.save_as] = result.body
            return node.next
        self.s.reason, self.s.reason_at = f"on_error:{node.name}", node.name
        # so the flow can tell "no such order" (404) from a backend that is down
        self.s.vars["http_error"] = {
            "node": node.name,
            "status": result.status,
            "error": result.error or f"HTTP {result.status}",
        }
        if node.on_error is None:
            self.fail(f"backend call at {node.name} failed: {result.error or result.status}")
        return node.on_error

    def recorded(self, node: Node, result: Recorded) -> str | None:
        r: Record = node.spec
        self.note("recorded", round(result.seconds, 1))
        self.s.vars[r.save_as] = result.reference
        if self.texting:  # the customer's written message: kept, nothing to await
            if result.reference:
                self.resolve(node)
                if r.callback is not None:
                    return self.offer_callback(node, r.callback)
        elif result.reference == self.s.recording:  # Twilio said it was stored before this
            self.resolve(node)
        elif result.reference:  # an empty recording (silence at the beep) requested nothing
            self.s.awaiting = node.name  # its task is done once Twilio says it is stored
            if r.callback is not None:
                return self.offer_callback(node, r.callback)
        if node.next:
            return node.next
        self.hang_up("contained")
        return None

    def recording_status(self, event: RecordingStatus) -> None:
        """The recording of the record node the call awaits is stored (its task is done,
        its URL kept), or it failed; either way the call's outcome may now be final."""
        s = self.s
        self.note("recording", event.status)
        if event.status == "completed" and event.url:
            s.recording = event.url
            if s.awaiting:
                self.resolve(self.node(s.awaiting))
        s.awaiting = None

    # -- switching channels ----------------------------------------------------------------

    def hand_off(
        self, by: str, channel: str, node: str, until: float, verified_until: float | None
    ) -> None:
        """Let the customer go on by `channel` at `node` until `until` (the message node
        `by` said so): the conversation's outcome is not final until then (or until its
        text leg ends)."""
        self.s.handoff = {
            "by": by,
            "channel": channel,
            "node": node,
            "until": until,
            "verified_until": verified_until,
        }

    def resume(self, event: Resumed) -> None:
        """The customer wrote within the window: a new leg on `event.channel`, where the
        message node said; what the call knew goes on, but for sensitive values (dropped
        when it ended) and `verified` past its own window."""
        s, handoff = self.s, self.s.handoff or {}
        ended = {"outcome": s.outcome, "ended": s.ended_at}
        first = {"channel": s.medium, "at": s.started_at}
        s.legs = [*s.legs[:-1], {**s.legs[-1], **ended}] if s.legs else [{**first, **ended}]
        s.legs.append({"channel": event.channel, "at": event.at})
        self.texting = event.channel != "voice"
        s.outcome = s.ended_at = s.handoff = None
        verified_until = handoff.get("verified_until")
        if verified_until is None or event.at > verified_until:
            s.vars.pop("verified", None)
        self.note("resumed", event.channel, handoff.get("by"), handoff.get("node"))
        self.run(handoff.get("node"))

    # -- callbacks -----------------------------------------------------------------------------

    def enter_callback(self, node: Node) -> str | None:
        return self.offer_callback(node, node.spec)

    def offer_callback(self, node: Node, cb: Callback) -> str | None:
        """Take the number to call back: the one given (the caller's), read back for a yes
        when the flow says so; typed or said when there is none or it is not right."""
        number = _phone(str(cb.number(self.ctx())))
        self.s.vars["callback_number"] = number
        if not number:
            self.callback_listen(node, cb, "number")
        elif cb.confirm is not None:
            self.callback_listen(node, cb, "confirm")
        else:
            return self.request_callback(node, cb)
        return None

    def callback_listen(self, node: Node, cb: Callback, state: str) -> None:
        s = self.s
        number = str(s.vars.get("callback_number", ""))
        if state == "confirm":
            self.say(cb.confirm, "prompt", number=" ".join(number.lstrip("+")))
        else:
            self.say(cb.ask_number, "prompt")
        s.waiting, s.reason, s.pending = "listen", None, f"callback:{state}"
        self.out.append(node.confirm_listen if state == "confirm" else node.number_listen)

    def callback_input(self, node: Node, cb: Callback, event: Event) -> str | None:
        state = (self.s.pending or "").partition(":")[2]

        def again() -> None:
            self.callback_listen(node, cb, state)

        if isinstance(event, NoInput):
            return self.miss(node, cb.listening, "no_input", event, again=again)
        mode = "dtmf" if isinstance(event, Digits) else "speech"
        if state == "confirm":
            if isinstance(event, Digits):
                answer = {"1": "yes", "2": "no"}.get(event.digits[:1])
            else:
                match = YES_NO.match(event.text) if isinstance(event, Speech) else None
                answer = match.option if match else None
            if answer is None:
                return self.miss(node, cb.listening, "no_match", event, mode, again)
            self.heard(node, mode, "match", event)
            if answer == "yes":
                return self.request_callback(node, cb)
            self.s.no_inputs = self.s.no_matches = 0
            self.callback_listen(node, cb, "number")
            return None
        if isinstance(event, Digits):
            value: str | None = event.digits.removesuffix("#")
        else:
            value = spoken_digits(event.text) if isinstance(event, Speech) else None
        low, high = CALLBACK_DIGITS
        if not value or not value.isdigit() or not low <= len(value) <= high:
            return self.miss(node, cb.listening, "no_match", event, mode, again)
        self.heard(node, mode, "match", event)
        self.s.vars["callback_number"] = value
        return self.request_callback(node, cb)

    def request_callback(self, node: Node, cb: Callback) -> str | None:
        """Keep the request with the call (its record has it, the number encrypted) and post
        it to the flow's backend when it has one; the call ends transferred, reason callback."""
        s, ctx = self.s, self.ctx()
        s.pending = None
        s.callback = {
            "number": str(s.vars.get("callback_number", "")),
            "window": str(cb.window(ctx)) if cb.window is not None else "",
            "queue": cb.queue or "",
        }
        s.reason, s.reason_at, s.queue = f"callback:{node.name}", node.name, cb.queue or s.queue
        if s.transfer is None:  # asked for an agent's call: transferred however it ends
            s.transfer, s.transfer_at = s.reason, node.name
        self.note("callback", cb.queue or "")
        if cb.url is None:
            self.callback_booked(cb)
            return None
        s.waiting = "fetch"
        body = {**s.callback, "call_id": s.call_id, "flow": self.flow.id, "reason": s.reason}
        if s.transfer:
            body["transfer"] = s.transfer
        self.out.append(
            act.Fetch(
                node.name,
                "POST",
                str(cb.url(ctx)),
                CALLBACK_TIMEOUT,
                json=body,
                sensitive=True,
                retries=1,
            )
        )
        return None

    def callback_booked(self, cb: Callback) -> None:
        self.say(cb.say, "say")
        self.hang_up("transferred")


def _callback_of(node: Node) -> Callback | None:
    """The callback a node takes: a callback node's, or a recording's that asks for one."""
    if isinstance(node.spec, Callback):
        return node.spec
    if isinstance(node.spec, Record):
        return node.spec.callback
    return None


def _phone(text: str) -> str:
    """A phone number's digits, with its leading + (E.164) when it has one."""
    digits = "".join(c for c in text if c.isdigit())
    return ("+" + digits if text.strip().startswith("+") else digits) if digits else ""


def _masked(number: str) -> str:
    """A number with all but its last 2 digits hidden: transcripts are kept."""
    return "*" * max(len(number) - 2, 0) + number[-2:]


def _global(a: Ask, event: Event) -> Option | None:
    """The global option an ask's answer chooses: a global key anywhere in the keys (the
    caller gave up the entry; what came before it is dropped), or the whole utterance
    being a global phrase. Digits said are always an answer, never a global."""
    if isinstance(event, Digits):
        return next((a.by_key[k] for k in event.digits if k in a.by_key), None)
    if not isinstance(event, Speech) or a.matcher is None:
        return None
    if a.input != "speech" and spoken_digits(event.text) is not None:
        return None
    match = a.matcher.exact(event.text)
    return next((o for o in a.globals if match and o.name == match.option), None)


_ENTER: dict[str, Callable[[_Turn, Node], str | None]] = {
    kind: getattr(_Turn, f"enter_{kind}")
    for kind in (
        "say",
        "menu",
        "ask",
        "http",
        "set",
        "branch",
        "transfer",
        "record",
        "subflow",
        "end",
        "callback",
        "message",
    )
}
