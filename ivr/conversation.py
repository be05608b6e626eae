"""Conversation tests: scripted calls in YAML, run through the engine against a local backend.

A test file names a flow, the environment it loads with (`{backend}` is the base URL
of a real aiohttp server the runner starts on 127.0.0.1), that server's answers by
"METHOD /path", and tests. A test is a caller number, a clock and steps: caller
steps (`press`, `say`, `say_audio`, `silence`, `record`, `hangup`), `clock` (move time)
and `expect` (`heard`, `not_heard`, `node`, `var`, `outcome`, `transfer`, `tasks`,
`fetched`, `listening`, `recognised`, `message`). `say_audio` plays a recording to
the real Vosk model of the flow's language, heard as on a Media Streams call
(`ivr.speech.offline`). Messages are kept, never sent (`messaging: fail` makes a test's
sends fail); `vars` and `answered_by` make the call an outbound one (`ivr notify`).
Every call must end by the last step. Runs also report the flow's nodes and
node-to-node ways no test took. Format: docs/conversation-tests.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from ivr.backend import Backend
from ivr.engine import actions as act
from ivr.engine import new_session
from ivr.engine.events import (
    NO_HISTORY,
    CallStarted,
    Digits,
    Event,
    HangUp,
    NoInput,
    Recorded,
    RecordingStatus,
    Resumed,
    Speech,
    TransferEnded,
)
from ivr.engine.session import MASK
from ivr.errors import FlowError, Problem
from ivr.flow import load_flow
from ivr.flow.hours import Closure
from ivr.flow.loader import Document, parse_flow
from ivr.flow.loader import Path as DocPath
from ivr.flow.model import TRANSFER_ENDS, Flow
from ivr.runner import Outbox, Runner, Turn

if TYPE_CHECKING:
    from ivr.speech.offline import Hearing, Models
    from ivr.speech.recognizer import Recognizer
    from ivr.speech.vosk_speech import VoskSpeech

DEFAULT_CLOCK = "2026-11-25T12:00:00+00:00"  # a Wednesday, noon UTC
FILE_KEYS = frozenset({"flow", "env", "backend", "tests"})
TEST_KEYS = frozenset(
    {"name", "clock", "caller", "called", "backend", "steps", "closed", "history", "channel"}
    | {"messaging", "vars", "answered_by"}  # an outbound call's (`ivr notify`)
)
CHANNELS = ("voice", "sms", "whatsapp", "chat")  # a test's `channel`: text ones are messages
CALLER_STEPS = ("press", "say", "say_audio", "silence", "record", "agent", "hangup")
STEPS = frozenset({*CALLER_STEPS, "clock", "expect", "reply"})
EXPECT_KEYS = frozenset(
    {
        *("heard", "not_heard", "node", "var", "outcome", "transfer", "tasks", "fetched"),
        *("listening", "recognised", "survey", "callback", "said", "not_said", "message"),
    }
)
MESSAGE_KEYS = frozenset({"text", "to", "channel"})
RESPONSE_KEYS = frozenset({"status", "json", "text", "headers", "delay"})
TRANSFER_KEYS = frozenset({"to", "queue", "reason", "attributes", "caller_id", "timeout"})
HISTORY_KEYS = frozenset(NO_HISTORY)  # a test's `history:` pretends the caller's
_UNSET = object()


class ConversationError(FlowError):
    """A test file that cannot run (bad YAML, unknown keys); carries every problem."""


@dataclass
class TestResult:
    """One test: passed, or the failures (each `file:line: test: step N (kind): ...`)."""

    __test__ = False  # a result, not something pytest should collect

    name: str
    passed: bool
    failures: list[str]
    steps: int  # steps run
    visited: list[str] = field(default_factory=list)  # the call's path through the nodes
    outcome: str | None = None
    # (node, the node off the text channel it led to): passed by for its `on_text`
    detours: list[tuple[str, str]] = field(default_factory=list)
    # (message node, where it let the caller go on by text): ways taken by a reply
    continued: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Suite:
    """A test file's results and its coverage of the flow's nodes."""

    file: str
    flow: Flow
    results: list[TestResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def visited(self) -> set[str]:
        """The nodes entered, and those a text conversation was sent past to `on_text`."""
        return {n for r in self.results for n in (*r.visited, *(off for _, off in r.detours))}

    @property
    def unvisited(self) -> list[str]:
        """The flow's nodes no test reached, in the flow's order."""
        return [n for n in self.flow.nodes if n not in self.visited]

    @property
    def untaken(self) -> list[str]:
        """The flow's ways between two nodes that no call took, as `node -(label)-> target`
        (re-prompts, which stay at a node, are not counted)."""
        taken = {pair for r in self.results for pair in pairwise(r.visited)}
        for source, off in (pair for r in self.results for pair in r.detours):
            taken |= {(source, off), (off, self.flow.nodes[off].on_text or "")}
        taken |= {pair for r in self.results for pair in r.continued}
        return [
            f"{n.name} -({label})-> {to}"
            for n in self.flow.nodes.values()
            for label, to in n.edges()
            if to != n.name and (n.name, to) not in taken
        ]

    def report(self) -> str:
        failed = [r for r in self.results if not r.passed]
        nodes, seen = len(self.flow.nodes), len(self.flow.nodes) - len(self.unvisited)
        lines = [
            f"{self.file}: {len(self.results) - len(failed)} passed, {len(failed)} failed; "
            f"nodes visited {seen}/{nodes}"
        ]
        lines += [f"FAIL {r.name}\n  " + "\n  ".join(r.failures) for r in failed]
        if self.unvisited:
            lines.append(f"not visited by any test: {', '.join(self.unvisited)}")
        lines += [f"not taken by any test: {edge}" for edge in self.untaken]
        return "\n".join(lines)


def run_file(path: str | os.PathLike[str], speech: VoskSpeech | None = None) -> list[TestResult]:
    """Run every test in a conversation test file (sync wrapper over `run_suite_async`)."""
    return run_suite(path, speech).results


def run_suite(path: str | os.PathLike[str], speech: VoskSpeech | None = None) -> Suite:
    """Run a test file and collect its coverage; not inside a running event loop."""
    return asyncio.run(run_suite_async(path, speech))


async def run_suite_async(path: str | os.PathLike[str], speech: VoskSpeech | None = None) -> Suite:
    """Run a test file: start the local backend, load the flow, run each test in order.
    `speech`: the models `say_audio` steps are recognised with (None: none configured)."""
    doc = _read(Path(path))
    data = doc.data
    server = _LocalBackend(data.get("backend") or {})
    base = await server.start()
    backend = Backend([urlsplit(base).netloc])
    try:
        env = {k: str(v).replace("{backend}", base) for k, v in (data.get("env") or {}).items()}
        flow = load_flow(Path(path).parent / data["flow"], {**os.environ, **env})
        results = []
        for i, test in enumerate(data["tests"]):
            results.append(await _Call(flow, backend, server, doc, i, test, speech).run())
    finally:
        await backend.close()
        await server.close()
    return Suite(str(path), flow, results)


def main(paths: Sequence[str | os.PathLike[str]], vosk_models: Models | None = None) -> int:
    """`ivr test`: print each file's report; 1 when any test fails or a file cannot run.
    A directory stands for the *.yaml files in it. `vosk_models` (else IVR_VOSK_MODELS)
    recognise the `say_audio` steps; a model loads only when a step needs it."""
    files: list[Path] = []
    for given in map(Path, paths):
        found = sorted(given.glob("*.yaml")) if given.is_dir() else [given]
        if not found:
            print(f"ivr test: no conversation tests in {given}", file=sys.stderr)
            return 1
        files += found
    if not files:
        print("ivr test: no conversation test files given", file=sys.stderr)
        return 1
    speech = _speech(vosk_models)
    status = 0
    for path in files:
        try:
            suite = run_suite(path, speech)
        except FlowError as e:
            print(e, file=sys.stderr)
            status = 1
            continue
        print(suite.report())
        status |= not suite.passed
    return status


def _speech(flags: Models | None) -> VoskSpeech | None:
    """The speech models configured, or None; ConfigError for a bad IVR_VOSK_MODELS."""
    if not flags and not os.environ.get("IVR_VOSK_MODELS", "").strip():
        return None  # what recognises speech is not even imported
    from ivr.speech.offline import configured, speech_for

    return speech_for(configured(flags))


class _LocalBackend:
    """The test file's backend: a real aiohttp server on 127.0.0.1 answering from `routes`."""

    def __init__(self, routes: Mapping[str, Any]) -> None:
        self.defaults = dict(routes)
        self.routes = dict(routes)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    def use(self, overrides: Mapping[str, Any] | None) -> None:
        """The file's answers with a test's overrides on top (`null` removes one)."""
        merged = {**self.defaults, **(overrides or {})}
        self.routes = {k: v for k, v in merged.items() if v is not None}

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        spec = self.routes.get(f"{request.method} {request.path_qs}")
        if spec is None:
            spec = self.routes.get(f"{request.method} {request.path}")
        if spec is None:
            message = f"no answer for {request.method} {request.path_qs} in the test file"
            return web.json_response({"error": message}, status=404)
        if spec.get("delay"):  # woken early when the run ends, so no handler outlives it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), float(spec["delay"]))
        status, headers = int(spec.get("status", 200)), spec.get("headers") or {}
        if "json" in spec:
            return web.json_response(spec["json"], status=status, headers=headers)
        return web.Response(text=str(spec.get("text", "")), status=status, headers=headers)

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()


class _Call:
    """One test's call: the session, and what was heard and fetched since the caller acted."""

    def __init__(
        self,
        flow: Flow,
        backend: Backend,
        server: _LocalBackend,
        doc: Document,
        index: int,
        test: dict[str, Any],
        speech: VoskSpeech | None = None,
    ) -> None:
        self.flow, self.server, self.doc, self.speech = flow, server, doc, speech
        self.closures = _closures(test.get("closed"))  # as ops closed them (`ivr hours close`)
        # messages are kept, not sent; `messaging: fail` makes every send of the test fail
        self.outbox = Outbox()
        if test.get("messaging") == "fail":
            self.outbox.failing = "the messaging API refused it (messaging: fail)"
        self.runner = Runner(
            backend, clock=lambda: self.at, closures=lambda: self.closures, messenger=self.outbox
        )
        self.index, self.test, self.name = index, test, str(test["name"])
        self.at = _timestamp(test.get("clock", DEFAULT_CLOCK))
        self.session = new_session(flow, f"test-{index + 1}")
        self.channel = str(test.get("channel", "voice"))
        self.session.channel = self.channel
        self.started = self.channel == "voice"  # a text conversation starts at a message
        self.said: list[str] = []  # the text messages sent since the customer wrote
        self.heard: list[str] = []
        self.fetched: list[str] = []
        self.messages: list[act.Message] = []  # sent since the caller's last step
        self.transfer: act.Transfer | None = None
        self.listen: act.Listen | None = None  # what the call waits for, when it listens
        self.recognizer: Recognizer | None = None  # made at the first `say_audio`
        self.heard_in = ""  # the language `recognizer` hears: the call's, which may change
        self.hearing: Hearing | None = None  # what the last `say_audio` was heard as
        self.hearing_sensitive = False  # ...at a sensitive listen: never shown

    async def run(self) -> TestResult:
        self.server.use(self.test.get("backend"))
        unknown = [c.hours for c in self.closures if c.hours not in self.flow.hours]
        if unknown:
            known = ", ".join(self.flow.hours) or "none"
            wrong = f"the flow has no hours named {', '.join(unknown)} (it has: {known})"
            return TestResult(self.name, False, [self.where(("closed",), "closed", wrong)], 0)
        if self.started:
            await self.feed(self.call_started())
        failures: list[str] = []
        number = 0
        for number, item in enumerate(self.test["steps"], 1):
            kind, value = next(iter(item.items()))
            problem = await self.do(kind, value)
            if problem:
                failures.append(
                    self.where(("steps", number - 1), f"step {number} ({kind})", problem)
                )
                break
        if not failures and self.session.outcome is None:  # (a window for text may be open)
            failures.append(
                self.where((), "end", f"the call did not end: add steps or hangup{self.state()}")
            )
        s = self.session
        detours = [
            (str(ln[1] or ""), str(ln[3])) for ln in s.transcript if ln[2:3] == ["off_channel"]
        ]
        continued = [(str(ln[4]), str(ln[5])) for ln in s.transcript if ln[2:3] == ["resumed"]]
        return TestResult(
            self.name, not failures, failures, number, list(s.path), s.outcome, detours, continued
        )

    def call_started(self) -> CallStarted:
        called = self.test.get("called", self.flow.numbers[0] if self.flow.numbers else "")
        caller = "" if self.channel == "chat" else str(self.test.get("caller", ""))
        given = dict(self.test.get("vars") or {})
        answered_by = str(self.test.get("answered_by", ""))
        history = self.test.get("history") or {}
        return CallStarted(caller, str(called), given, answered_by, at=self.at, history=history)

    async def start_text(self, text: str) -> None:
        """The customer's first message starts the conversation; when it answers the menu
        the flow starts at, that menu's question is not sent (as on the channels)."""
        from ivr.channels.text import answers_first, message_event, unasked

        self.started = True
        turn = await self.runner.run(self.flow, self.session, self.call_started())
        if answers_first(self.flow, turn.session, text):
            event = message_event(self.flow, turn.session, text, self.at)
            answered = await self.runner.run(self.flow, turn.session, event)
            actions = unasked(turn.actions) + answered.actions
            turn = Turn(answered.session, actions, turn.fetched + answered.fetched)
        self.took(turn)

    async def reply(self, text: str) -> str | None:
        """The caller answers the message a `message` node with `continue` sent them: the
        conversation goes on by text where the node said (its answer answers the question
        there when it is one of its choices), and later steps are messages."""
        from ivr.channels.text import answers_first, message_event, unasked

        s = self.session
        if s.outcome is None or s.handoff is None:
            return f"nothing lets the caller go on by text: the call goes on{self.state()}"
        self.channel = str(s.handoff["channel"])
        self.heard, self.fetched, self.said, self.messages = [], [], [], []
        self.hearing = None
        turn = await self.runner.run(self.flow, s, Resumed(self.channel, at=self.at))
        if answers_first(self.flow, turn.session, text):
            event = message_event(self.flow, turn.session, text, self.at)
            answered = await self.runner.run(self.flow, turn.session, event)
            turn = Turn(answered.session, unasked(turn.actions) + answered.actions)
        self.took(turn)
        return None

    async def message(self, kind: str, value: Any) -> str | None:
        """A `say` or `press` step in a text conversation: the customer's message."""
        from ivr.channels.text import message_event

        text = str(value.get("text") if isinstance(value, dict) else value)
        self.heard, self.fetched, self.said, self.messages = [], [], [], []
        self.hearing = None
        if not self.started:
            await self.start_text(text)
            return None
        s = self.session
        if s.ended:
            return f"the conversation has already ended{self.state()}"
        if s.waiting not in ("listen", "confirm", "record"):
            return f"the conversation does not wait for a message{self.state()}"
        await self.feed(message_event(self.flow, s, text, self.at))
        return None

    def where(self, path: DocPath, what: str, problem: str) -> str:
        line = self.doc.mark(("tests", self.index, *path))[0]
        return f"{self.doc.file}:{line}: {self.name}: {what}: {problem}"

    async def do(self, kind: str, value: Any) -> str | None:
        if kind == "clock":
            self.at = _timestamp(value)
            return None
        if kind == "reply":
            return await self.reply(str(value))
        if self.channel != "voice" and kind in ("say", "press"):
            return await self.message(kind, value)
        if not self.started:  # a text conversation the test looks at before any message
            await self.start_text("")
        if kind == "expect":
            return self.expect(value)
        if kind == "say_audio":
            return await self.say_audio(str(value))
        wanted = {"hangup": None, "record": ("record",), "agent": ("transfer",)}.get(
            kind, ("listen", "confirm")
        )
        for i, event in enumerate(_events(kind, value, self.at)):
            s = self.session
            if isinstance(event, RecordingStatus):  # Twilio's word after the recording
                await self.feed(event)
                continue
            if s.ended:
                return f"the call has already ended{self.state()}"
            if wanted is not None and s.waiting not in wanted:
                return f"the call does not wait for this{self.state()}"
            if i == 0:  # what this step brings replaces what the previous one brought
                self.heard, self.fetched, self.said, self.messages = [], [], [], []
                self.hearing = None
            await self.feed(event)
        return None

    async def say_audio(self, name: str) -> str | None:
        """The recording heard at the listen by the real recogniser, as a call hears it."""
        from ivr.errors import ConfigError
        from ivr.speech import offline

        s, listen = self.session, self.listen
        if s.ended:
            return f"the call has already ended{self.state()}"
        if s.waiting not in ("listen", "confirm") or listen is None:
            return f"the call does not wait for this{self.state()}"
        if "speech" not in listen.modes:
            return f"the call takes keys only here{self.state()}"
        try:
            language = listen.language or self.flow.language
            if self.recognizer is None or self.heard_in != language:
                self.recognizer = offline.recognizer(self.speech, language)
                self.heard_in = language
            pcm = await asyncio.to_thread(offline.file_audio, Path(self.doc.file).parent / name)
        except ConfigError as e:
            return f"say_audio needs a speech model: {e}" if self.recognizer is None else str(e)
        hearing = await asyncio.to_thread(
            offline.hear, self.recognizer, self.flow, s, listen, pcm, self.at
        )
        self.heard, self.fetched, self.hearing, self.messages = [], [], hearing, []
        self.hearing_sensitive = listen.sensitive
        await self.feed(hearing.event)
        return None

    async def feed(self, event: Event) -> None:
        """One turn through the runner: backend calls happen for real, at the test's clock."""
        self.took(await self.runner.run(self.flow, self.session, event))

    def took(self, turn: Turn) -> None:
        """What a turn said, fetched and transferred, and where the call waits now."""
        self.session = turn.session
        if self.channel != "voice":
            from ivr.channels.text import render

            self.said += render(self.flow, turn.actions).messages
        self.listen = next((a for a in turn.actions if isinstance(a, act.Listen)), None)
        sent = iter(turn.sent)
        for a in turn.actions:
            if isinstance(a, act.Prompt):
                self.heard.append(a.text)
            elif isinstance(a, act.Transfer):
                self.transfer = a
            elif isinstance(a, act.Message):
                told = next(sent, None)  # its result: they come in order
                if told is not None and told.ok:
                    self.messages.append(a)
            elif isinstance(a, act.Fetch):
                url = urlsplit(a.url)
                local = url.netloc in self.runner.backend.allow
                self.fetched.append(f"{a.method} {_path_qs(url) if local else a.url}")

    def state(self) -> str:
        s = self.session
        if s.ended:
            where = f"ended at node {s.node}, outcome {s.outcome}"
        else:
            where = f"at node {s.node}, waiting for {s.waiting}, no outcome yet"
        said = " | ".join(self.heard) or "(nothing)"
        if self.channel != "voice":
            said = " | ".join(self.said) or "(no message)"
        fetched = f"\n    fetched: {', '.join(self.fetched)}" if self.fetched else ""
        hearing = self.hearing.lines(self.hearing_sensitive) if self.hearing else []
        recognised = "".join(f"\n    audio: {line}" for line in hearing)
        return f"\n    call: {where}\n    heard: {said}{fetched}{recognised}"

    def expect(self, want: dict[str, Any]) -> str | None:
        s, said = self.session, " | ".join(self.heard).casefold()
        wrong = [
            f"expected to hear {t!r}" for t in _texts(want.get("heard")) if t.casefold() not in said
        ]
        wrong += [
            f"expected not to hear {t!r}"
            for t in _texts(want.get("not_heard"))
            if t.casefold() in said
        ]
        wrong += self.texted(want)
        if "node" in want and s.node != want["node"]:
            wrong.append(f"expected node {want['node']}, but the call is at {s.node}")
        if "outcome" in want and s.outcome != want["outcome"]:
            wrong.append(f"expected outcome {want['outcome']}, got {s.outcome or 'none yet'}")
        for name, value in (want.get("var") or {}).items():
            got = _lookup(s.vars, str(name))
            if not _same(got, value):
                dropped = s.ended and str(name).split(".")[0] in s.sensitive
                unset = "unset (sensitive: dropped when the call ended)" if dropped else "unset"
                wrong.append(
                    f"expected {name} = {value!r}, got {unset if got is _UNSET else got!r}"
                )
        if "transfer" in want:
            wrong += self.transferred(want["transfer"] or {})
        if "tasks" in want and sorted(s.tasks) != sorted(_texts(want["tasks"])):
            wrong.append(f"expected tasks {_texts(want['tasks'])}, got {s.tasks}")
        fetched = want.get("fetched")
        if isinstance(fetched, list) and fetched != self.fetched:
            wrong.append(f"expected requests {fetched}, got {self.fetched}")
        elif isinstance(fetched, str) and fetched not in self.fetched:
            wrong.append(f"expected request {fetched!r}, got {self.fetched or 'none'}")
        if "listening" in want and (s.waiting in ("listen", "confirm")) != bool(want["listening"]):
            wrong.append(f"expected the call {'' if want['listening'] else 'not '}to listen")
        if "recognised" in want:
            wrong += self.recognised(want["recognised"])
        for name, value in (want.get("survey") or {}).items():
            if not _same(s.survey.get(str(name)), value):
                wrong.append(f"expected survey {name} = {value!r}, got {s.survey.get(str(name))!r}")
        if "message" in want:
            wrong += self.messaged(want["message"])
        for key, value in (want.get("callback") or {}).items():
            got = (s.callback or {}).get(str(key))
            if not _same(got, value):
                wrong.append(f"expected callback {key} {value!r}, got {got!r}")
        return "\n    ".join(wrong) + self.state() if wrong else None

    def texted(self, want: dict[str, Any]) -> list[str]:
        """`said` and `not_said`: in the text messages sent since the customer wrote."""
        if ("said" in want or "not_said" in want) and self.channel == "voice":
            return ["said and not_said check text messages: give the test a text `channel`"]
        sent = " | ".join(self.said).casefold()
        wrong = [
            f"expected a message saying {t!r}"
            for t in _texts(want.get("said"))
            if t.casefold() not in sent
        ]
        wrong += [
            f"expected no message saying {t!r}"
            for t in _texts(want.get("not_said"))
            if t.casefold() in sent
        ]
        return wrong

    def recognised(self, want: Any) -> list[str]:
        if self.hearing is None:
            return [f"expected {want!r} recognised, but no say_audio step came before"]
        got = self.hearing.text
        if got is None and want is None:
            return []
        if got is None or want is None or got.casefold() != str(want).strip().casefold():
            said = "silence (no input)" if got is None else "a no-match" if not got else repr(got)
            said = MASK if got and self.hearing_sensitive else said
            return [f"expected {want!r} recognised, but the flow got {said}"]
        return []

    def messaged(self, want: dict[str, Any] | None) -> list[str]:
        """`message: {text, to, channel}`: a message sent since the caller's last step has
        them (`text`: words it contains); `message: null`: none was sent."""
        sent = [(m.text, m.to, m.channel) for m in self.messages]
        if want is None:
            return [f"expected no message, but {len(sent)} were sent: {sent}"] if sent else []
        for m in self.messages:
            text_ok = str(want.get("text", "")).casefold() in m.text.casefold()
            if text_ok and all(
                _same(getattr(m, k), want[k]) for k in ("to", "channel") if k in want
            ):
                return []
        return [f"expected a message {want}, got {sent or 'none'}"]

    def transferred(self, want: dict[str, Any]) -> list[str]:
        if self.transfer is None:
            return ["expected a transfer, but none happened"]
        wrong = []
        for key, value in want.items():
            got = getattr(self.transfer, key)
            if key == "attributes":
                got = {k: got.get(k) for k in value}
            if not _same(got, value):
                wrong.append(f"expected transfer {key} {value!r}, got {got!r}")
        return wrong


def _read(path: Path) -> Document:
    """The test file with line marks; raises ConversationError listing every problem."""
    try:
        doc = parse_flow(path.read_bytes(), str(path))
    except OSError as e:
        raise ConversationError(
            [Problem(str(path), 1, 1, "", f"cannot read: {e.strerror}")]
        ) from None
    problems = _check(doc)
    if problems:
        raise ConversationError(sorted(problems, key=lambda p: (p.line, p.col)))
    return doc


def _check(doc: Document) -> list[Problem]:
    data, out = doc.data, []

    def bad(path: DocPath, message: str) -> None:
        out.append(doc.problem(path, message))

    def keys(path: DocPath, value: Any, allowed: frozenset[str]) -> bool:
        if not isinstance(value, dict):
            bad(path, "expected a mapping")
            return False
        for key in sorted(set(value) - allowed):
            bad(
                (*path, key), f"unknown key '{key}' (expected one of: {', '.join(sorted(allowed))})"
            )
        return True

    def answers(path: DocPath, routes: Any) -> None:
        for route, spec in (routes or {}).items():
            method, _, where = str(route).partition(" ")
            if not method.isupper() or not where.startswith("/"):
                bad((*path, route), f"'{route}': write an answer's key as \"METHOD /path\"")
            if spec is not None:
                keys((*path, route), spec, RESPONSE_KEYS)

    if not keys((), data, FILE_KEYS):
        return out
    if not isinstance(data.get("flow"), str):
        bad(("flow",), "'flow' must name the flow file, relative to this file")
    if not isinstance(data.get("env") or {}, dict):
        bad(("env",), "'env' maps variable names to values ({backend} is the local server)")
    answers(("backend",), data.get("backend"))
    if not isinstance(data.get("tests"), list) or not data["tests"]:
        bad(("tests",), "'tests' must be a list of tests")
        return out
    names: set[str] = set()
    for i, test in enumerate(data["tests"]):
        here: DocPath = ("tests", i)
        if not keys(here, test, TEST_KEYS):
            continue
        name = str(test.get("name") or "")
        if not name or name in names:
            bad((*here, "name"), "each test needs a name of its own")
        names.add(name)
        answers((*here, "backend"), test.get("backend"))
        steps = test.get("steps")
        if not isinstance(steps, list) or not steps:
            bad((*here, "steps"), "a test needs a list of steps")
            steps = []
        for j, item in enumerate(steps):
            spot: DocPath = (*here, "steps", j)
            if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in STEPS:
                bad(spot, f"a step is one of: {', '.join(sorted(STEPS))}")
            elif "expect" in item:
                ok = keys((*spot, "expect"), item["expect"], EXPECT_KEYS)
                if ok and item["expect"].get("message"):
                    keys((*spot, "expect", "message"), item["expect"]["message"], MESSAGE_KEYS)
                if ok and "transfer" in item["expect"]:
                    keys(
                        (*spot, "expect", "transfer"),
                        item["expect"]["transfer"] or {},
                        TRANSFER_KEYS,
                    )
            elif "clock" in item:
                _clock_problem(doc, (*spot, "clock"), item["clock"], out)
            elif "say_audio" in item:
                _audio_problem(doc, (*spot, "say_audio"), item["say_audio"], out)
            elif "reply" in item:
                if not isinstance(item["reply"], str | int) or isinstance(item["reply"], bool):
                    bad((*spot, "reply"), "reply takes the text of the caller's message")
            else:
                kind, value = next(iter(item.items()))
                try:
                    _events(kind, value, 0.0)
                except (ValueError, TypeError, KeyError) as e:
                    bad(
                        (*spot, kind), str(e) if isinstance(e, ValueError) else f"{kind}: bad value"
                    )
        if test.get("channel", "voice") not in CHANNELS:
            bad((*here, "channel"), f"channel is one of: {', '.join(CHANNELS)}")
        if not isinstance(test.get("vars") or {}, dict):
            bad((*here, "vars"), "vars: the variables an outbound call starts with, a mapping")
        if test.get("messaging", "ok") not in ("ok", "fail"):
            bad((*here, "messaging"), "messaging: ok (messages are sent, the default) or fail")
        _clock_problem(doc, (*here, "clock"), test.get("clock", DEFAULT_CLOCK), out)
        if "history" in test and keys((*here, "history"), test["history"], HISTORY_KEYS):
            if not isinstance(test["history"].get("calls_today", 0), int):
                bad((*here, "history", "calls_today"), "calls_today: a whole number")
        try:
            _closures(test.get("closed"))
        except (TypeError, ValueError) as e:
            bad((*here, "closed"), str(e))
    return out


def _closures(value: Any) -> list[Closure]:
    """A test's `closed`: hours name -> what ops said (text, or nothing), or {say, until};
    raises ValueError or TypeError saying what is wrong."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise TypeError("closed: maps hours names to what ops said, e.g. {support: Closed today.}")
    out = []
    for name, spec in value.items():
        if isinstance(spec, dict):
            extra = set(spec) - {"say", "until"}
            if extra:
                raise ValueError(f"closed.{name}: unknown key {sorted(extra)[0]!r} (say, until)")
            until = _timestamp(spec["until"]) if spec.get("until") is not None else None
            out.append(Closure(str(name), until=until, message=str(spec.get("say") or "")))
        else:
            out.append(Closure(str(name), message="" if spec is None else str(spec)))
    return out


def _audio_problem(doc: Document, path: DocPath, value: Any, out: list[Problem]) -> None:
    if not isinstance(value, str) or not value:
        out.append(doc.problem(path, "say_audio takes a recording's file, relative to this file"))
    elif not (Path(doc.file).parent / value).is_file():
        out.append(doc.problem(path, f"no such file: {value} (paths are relative to this file)"))


def _clock_problem(doc: Document, path: DocPath, value: Any, out: list[Problem]) -> None:
    try:
        _timestamp(value)
    except (TypeError, ValueError) as e:
        out.append(doc.problem(path, f"clock: {e}"))


def _timestamp(value: Any) -> float:
    """An ISO 8601 time with its UTC offset (YAML may hand over a datetime already)."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError(f"{value} has no UTC offset; write e.g. 2026-11-23T10:00:00+05:00")
    return when.timestamp()


def _events(kind: str, value: Any, at: float) -> list[Event]:
    """What a caller step sends; raises ValueError, TypeError or KeyError on a bad value."""
    if kind == "press":
        keys = value if isinstance(value, str) else str(value) if type(value) is int else ""
        if not keys or keys.strip("0123456789*#"):
            raise ValueError('press takes keys as text, e.g. "1" or "12345674#"')
        return [Digits(keys, at=at)]
    if kind == "say":
        said = value if isinstance(value, dict) else {"text": value}
        if not isinstance(said.get("text"), str) or set(said) - {"text", "confidence"}:
            raise ValueError("say takes words, or {text: words, confidence: 0.4}")
        return [Speech(said["text"], float(said.get("confidence", 1.0)), at=at)]
    if kind == "silence":
        count = 1 if value is True else value
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("silence takes true, or how many silences in a row")
        return [NoInput(at=at) for _ in range(count)]
    if kind == "agent":  # what became of the transfer under way: Twilio's words
        if not isinstance(value, str) or value not in TRANSFER_ENDS and value != "hangup":
            raise ValueError(f"agent takes one of: {', '.join([*TRANSFER_ENDS, 'hangup'])}")
        return [TransferEnded(value, at=at)]
    if kind == "record":  # the recording is stored at once: its status follows
        rec = value if isinstance(value, dict) else {"reference": value}
        reference = str(rec["reference"])
        stored = RecordingStatus(str(rec.get("status", "completed")), reference, at=at)
        return [Recorded(reference, float(rec.get("seconds", 0)), at=at), stored]
    if value is not True:
        raise ValueError("write hangup: true")
    return [HangUp(at=at)]


def _path_qs(url: Any) -> str:
    return url.path + (f"?{url.query}" if url.query else "")


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _lookup(variables: Mapping[str, Any], name: str) -> Any:
    """`acct.balance` or `acct.transactions.0.amount` in the session's variables."""
    value: Any = variables
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _UNSET
    return value


def _same(got: Any, want: Any) -> bool:
    """Equal, or equal as text for scalars (YAML `1234` matches the digits "1234")."""
    if got == want:
        return True
    scalar = (str, int, float, bool)
    return isinstance(got, scalar) and isinstance(want, scalar) and str(got) == str(want)
