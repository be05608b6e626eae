"""Stage 3: a validated flow document -> an immutable Flow, plus static checks.

Names are resolved, defaults applied, templates and conditions compiled once,
static prompts rendered once, subflows inlined (their nodes prefixed with the
calling node's name, their `end`s turned into returns).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ivr.engine.apologies import said
from ivr.errors import FlowError, Problem
from ivr.flow import phrases
from ivr.flow.calendars import FindCalendar, calendar_days
from ivr.flow.hours import Day, Hours, HoursError, parse_hours
from ivr.flow.loader import Document, Path
from ivr.flow.model import (
    Ask,
    Callback,
    End,
    Experiment,
    Flow,
    Http,
    Listening,
    Menu,
    Message,
    Node,
    Option,
    Part,
    PromptTemplate,
    Record,
    Render,
    Transfer,
    Wait,
)
from ivr.flow.prompts import compile_prompt, has_locale
from ivr.flow.spoken import DEFAULT_LANGUAGE, known_currency, locale_of
from ivr.flow.templates import (
    BUILTINS,
    check_syntax,
    compile_expression,
    compile_template,
    compile_url,
    constant,
    is_template,
    names_used,
)
from ivr.flow.text_paths import strongly_connected, text_problems
from ivr.speech.intent import Matcher, normalize

FindFlow = Callable[[str], Document | None]  # subflow id -> its document

DEFAULTS: dict[str, Any] = {
    "timeout": 5,
    "retries": 2,
    "barge_in": True,
    "confirm_below": 0.0,
    "no_input": "Sorry, I didn't hear anything.",
    "no_match": "Sorry, I didn't catch that.",
    "hold_after": 2.0,
}
TARGETS = ("on_fail", "on_no_input", "on_no_match")  # defaults naming where callers go
REPROMPTS = ("no_input", "no_match")
_QUOTED = re.compile(r"""\s*(['"])([^'"]*)\1\s*""")  # a string constant in an expression
IDEMPOTENT = ("GET", "PUT", "DELETE")
TURN_BUDGET = 10.0  # seconds within which every webhook is answered (IVR_TURN_BUDGET)
ANSWER_MARGIN = 0.5  # of the budget, kept for saving the turn and answering
# kinds that never wait for the caller: a cycle of them alone would loop on its own
PASSING = ("say", "set", "branch", "http", "message", "subflow")


def compile_flow(
    doc: Document,
    find_flow: FindFlow | None = None,
    turn_budget: float = TURN_BUDGET,
    find_calendar: FindCalendar | None = None,
) -> tuple[Flow, list[Problem]]:
    """Compile `doc`; returns the Flow and its warnings, raises FlowError on any error.
    `turn_budget` is the server's time to answer a webhook, which backend waits must fit;
    `find_calendar` finds the holiday calendars hours name."""
    c = _Compiler(doc, find_flow or (lambda _id: None), turn_budget)
    c.find_calendar = find_calendar or (lambda _name: None)
    data = doc.data
    if "main_menu" in data:
        c.refs.append((doc, ("main_menu",), c.main_menu))
    nodes = c.nodes(prefix="", returns_to=None, stack=(doc.data["flow"],))
    defaults = data.get("defaults", {})
    apology = (
        c.prompt(("defaults", "apology"), defaults["apology"]) if "apology" in defaults else None
    )
    if apology is not None and _templated(apology):
        c.error(("defaults", "apology"), "the apology is said when something broke: no templates")
    speech_down = (
        c.prompt(("defaults", "speech_down"), defaults["speech_down"])
        if "speech_down" in defaults
        else None
    )
    if speech_down is not None and _templated(speech_down):
        c.error(("defaults", "speech_down"), "said when recognition broke: no templates")
    fallback = c.ref(defaults.get("fallback"), ("defaults", "fallback"))
    _check_fallback(c, fallback, nodes)
    voicemail = c.ref(data.get("voicemail"), ("voicemail",))  # an answering machine's start
    by_number = _by_number(c, data)
    idle = c.duration(("defaults", "idle"), defaults.get("idle", IDLE))
    _check_messages(c)
    problems = c.problems + _check_graph(doc, doc.data["start"], nodes, c, fallback, voicemail)
    if any(p.severity == "error" for p in problems):
        raise FlowError(sorted(problems, key=_order))
    version = hashlib.sha256("\0".join(c.texts).encode()).hexdigest()[:12]
    flow = Flow(
        id=data["flow"],
        version=version,
        file=doc.file,
        start=data["start"],
        nodes=MappingProxyType(nodes),
        language=c.languages[0],
        languages=c.languages,
        language_by_number=MappingProxyType(by_number),
        voice=data.get("voice"),
        numbers=tuple(data.get("numbers", ())),
        hours=MappingProxyType(c.hours),
        vars=MappingProxyType(c.vars),
        sensitive=frozenset(c.sensitive),
        apology=apology.static if apology else None,
        hold_music=defaults.get("hold_music"),
        experiment=_experiment(data.get("experiment")),
        speech=data.get("speech", "twilio"),
        speech_down=speech_down.static if speech_down else None,
        said_in=MappingProxyType(_said_in(apology=apology, speech_down=speech_down)),
        speech_model=data.get("speech_model"),
        speech_timeout=data.get("speech_timeout"),
        voicemail=voicemail,
        fallback=fallback,
        idle=idle,
    )
    return flow, sorted(problems, key=_order)


IDLE = 1800.0  # a text conversation's default idle timeout: 30 minutes
KEPT = 6 * 3600.0  # how long the stores keep a conversation not over (store.base.ACTIVE_TTL)
TEXT_CHANNELS = ("sms", "whatsapp", "chat")


def _channels(names: Any) -> frozenset[str]:
    """A node's `channels`, `text` standing for every text channel."""
    out = set(names)
    if "text" in out:
        out = (out - {"text"}) | set(TEXT_CHANNELS)
    return frozenset(out)


def _duration(value: Any) -> float:
    """Seconds, from a number or `30m`, `2h`, `1d`, `45s` (the schema checked the form)."""
    if isinstance(value, int | float):
        return float(value)
    return float(value[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[value[-1]]


def _templated(prompt: PromptTemplate) -> bool:
    return any(p.static is None for p in (prompt, *(p for _, p in prompt.languages)))


def _said_in(**prompts: PromptTemplate | None) -> dict[str, dict[str, tuple[Part, ...]]]:
    """The static versions of prompts said outside any node, by role and language."""
    return {
        role: {tag: p.static for tag, p in prompt.languages if p.static is not None}
        for role, prompt in prompts.items()
        if prompt is not None and prompt.languages
    }


def languages_of(data: Mapping[str, Any], language: str) -> tuple[str, ...]:
    """The flow's languages, its own (`language`, else the first listed) first."""
    listed = [str(tag) for tag in data.get("languages", ())]
    own = str(data.get("language") or (listed[0] if listed else language))
    return (own, *(tag for tag in listed if tag != own))


def _by_number(c: _Compiler, data: Mapping[str, Any]) -> dict[str, str]:
    """`language_by_number`: the language a call to each number starts in (declared ones)."""
    out = {}
    for number, tag in data.get("language_by_number", {}).items():
        if tag not in c.languages:
            c.error(
                ("language_by_number", number),
                f"{tag!r} is not one of the flow's languages ({', '.join(c.languages)})",
            )
        out[str(number)] = str(tag)
    return out


def _check_fallback(c: _Compiler, name: str | None, nodes: Mapping[str, Node]) -> None:
    """The fallback is a transfer whose number needs nothing of the call: it is used when
    the call's session (its variables) cannot be read. A missing node is a ref error."""
    node = nodes.get(name) if name else None
    if node is None:
        return
    where = ("defaults", "fallback")
    if not isinstance(node.spec, Transfer):
        c.error(
            where,
            f"'{name}' is a {node.kind} node: the fallback must name a transfer node (where "
            "callers go when ivr cannot go on with their call)",
        )
    elif is_template(str(c.doc.data["nodes"][name]["transfer"]["to"])):
        c.error(
            where,
            f"the transfer '{name}' has a templated `to`: a fallback's `to` must be a plain "
            "number or sip: address, since it is used when the call's variables are lost",
        )


def _check_messages(c: _Compiler) -> None:
    """No message sends a sensitive value: carriers keep messages, and the flow may not
    know yet, where it writes the message, which variables its asks make sensitive."""
    for doc, path, names in c.sends:
        secret = sorted(names & c.sensitive)
        if secret:
            problem = doc.problem(
                path,
                f"a message may not carry sensitive {', '.join(secret)}: messages are kept "
                "by carriers (send a link that asks for it instead)",
            )
            c.problems.append(problem)


def _experiment(spec: dict[str, Any] | None) -> Experiment | None:
    """The split in flow id order, so that reordering it in the file moves no caller. Which
    variants exist is checked across flows (`ivr.flow.experiment`), not here."""
    if spec is None:
        return None
    split = sorted((str(flow_id), int(weight)) for flow_id, weight in spec["split"].items())
    return Experiment(spec["name"], tuple(split))


def _order(p: Problem) -> tuple[str, int, int]:
    return (p.file, p.line, p.col)


class _Compiler:
    def __init__(self, doc: Document, find_flow: FindFlow, turn_budget: float) -> None:
        self.doc, self.find_flow, self.turn_budget = doc, find_flow, turn_budget
        self.problems: list[Problem] = []
        self.hours: dict[str, Hours] = {}
        self.find_calendar: FindCalendar = lambda _name: None
        self.calendars: dict[str, list[Day] | None] = {}  # by name, read once
        self.vars: dict[str, Any] = {}
        self.sensitive: set[str] = set()
        self.known: set[str] = set(BUILTINS)  # every variable some node sets
        self.uses: list[
            tuple[Document, Path, frozenset[str], bool]
        ] = []  # (doc, path, names, spoken)
        self.texts: list[str] = [doc.text]
        self.refs: list[tuple[Document, Path, str]] = []  # (doc, where written, target)
        self.sends: list[tuple[Document, Path, frozenset[str]]] = []  # what messages use
        # subflows speak values in the calling flow's language: it is the call's
        self.language, self.currency = self.spoken_in(doc)
        self.speech = str(doc.data.get("speech", "twilio"))  # the call's recogniser
        self.main_menu = str(doc.data.get("main_menu", doc.data["start"]))
        # a (sub)flow's language and voice; prompts are stamped with them when they are
        # not the flow's (`stamp`), so that its adapters say them so
        self.speaks_as: tuple[str, str | None] = (
            str(doc.data.get("language", "en-US")),
            doc.data.get("voice"),
        )
        self.flow_voice = self.speaks_as
        self.stamp: tuple[str | None, str | None] = (None, None)
        self.prefix, self.defaults = "", dict(DEFAULTS)
        self.targets: dict[str, str | None] = {}  # TARGETS of the defaults, resolved
        self.globals: list[Option] = []
        self.languages = languages_of(doc.data, self.language)

    def spoken_in(self, doc: Document) -> tuple[str, str | None]:
        """The language and currency templates speak values in; a language without locale
        data is a warning (values are then spoken as in en-US)."""
        listed = doc.data.get("languages") or [DEFAULT_LANGUAGE]
        language, currency = str(doc.data.get("language") or listed[0]), doc.data.get("currency")
        try:
            locale_of(language)
        except ValueError:
            self.error(
                ("language",),
                f"no locale data for {language!r}: amounts, numbers and dates are spoken as "
                f"in {DEFAULT_LANGUAGE} (use a BCP-47 tag such as ko-KR or en-US)",
                "warning",
            )
            language = DEFAULT_LANGUAGE
        if currency is not None and not known_currency(str(currency)):
            self.error(
                ("currency",),
                f"unknown currency {currency!r}: use an ISO 4217 code such as KRW, USD or EUR",
            )
            currency = None
        return language, currency

    def reprompts(self) -> dict[str, Any]:
        """The built-in no_input and no_match, in each of a flow's several languages."""
        if len(self.languages) < 2:
            return {}
        return {kind: self.builtin(kind) for kind in REPROMPTS}

    def builtin(self, kind: str) -> Any:
        """A built-in message: in the flow's language (DEFAULTS' English for most flows), or
        by language in a flow with several."""
        if len(self.languages) < 2:
            return DEFAULTS.get(kind) or said(kind, "en")
        return {tag: said(kind, tag) for tag in self.languages}

    def question(self, path: Path, spec: Any) -> Render:
        """A menu's `confirm`: a template, or one by language chosen by the call's."""
        if not isinstance(spec, dict):
            return self.template(path, spec)
        own, saved, by_tag = self.languages[0], self.language, {}
        for tag, text in spec.items():
            if tag not in self.languages:
                self.error((*path, tag), f"{tag!r} is not one of the flow's languages")
            self.language = tag if has_locale(tag) else saved
            by_tag[tag] = self.template((*path, tag), text)
            self.language = saved
        default = by_tag.get(own) or next(iter(by_tag.values()))
        return lambda ctx: by_tag.get(ctx.get("language"), default)(ctx)

    # -- one document ------------------------------------------------------------------------

    def nodes(self, prefix: str, returns_to: str | None, stack: tuple[str, ...]) -> dict[str, Node]:
        doc, data = self.doc, self.doc.data
        for name, spec in data.get("hours", {}).items():
            self.opening_hours(name, spec)
        for name, value in data.get("vars", {}).items():
            self.vars.setdefault(name, value)
            self.known.add(name)
        # a subflow inherits what it does not declare: the calling flow's defaults (its
        # targets as a whole: declaring one of them drops the others) and global options
        own = data.get("defaults", {})
        inherit = bool(prefix)
        self.prefix, self.returns_to = prefix, returns_to
        base = self.defaults if inherit else {**DEFAULTS, **self.reprompts()}
        self.defaults = {**base, **{k: v for k, v in own.items() if k not in TARGETS}}
        if not inherit or any(k in own for k in TARGETS):
            self.targets = {k: self.ref(own[k], ("defaults", k)) for k in TARGETS if k in own}
        if not inherit or "global" in data:
            self.globals = [
                self.option(("global", n), n, o, is_global=True)
                for n, o in data.get("global", {}).items()
            ]
        out: dict[str, Node] = {}
        for name, raw in data["nodes"].items():
            kind = next(k for k in raw if k in _KINDS)
            path: Path = ("nodes", name)
            spec = _KINDS[kind](self, (*path, kind), raw[kind], raw)
            line = doc.mark(path, key=True)[0]
            if kind == "subflow":
                sub, first = self.subflow((*path, kind), raw[kind], prefix + name + ".", stack)
                out.update(sub)
                node = Node(
                    prefix + name,
                    kind,
                    None,
                    # a subflow that cannot be inlined is an error already: pass it by,
                    # so the graph checks do not add "stuck" errors for every node before it
                    next=first or self.ref(raw[kind]["next"], (*path, kind, "next")),
                    resolves=raw.get("resolves"),
                    file=doc.file,
                    line=line,
                )
            else:
                node = Node(
                    prefix + name,
                    kind,
                    spec,
                    next=self.ref(raw.get("next"), (*path, "next")),
                    on_error=self.ref(raw.get("on_error"), (*path, "on_error")),
                    resolves=raw.get("resolves"),
                    file=doc.file,
                    line=line,
                    channels=_channels(raw.get("channels", ())),
                    on_text=self.ref(raw.get("on_text"), (*path, "on_text")),
                )
                if kind == "http" and node.on_error is None:
                    node = replace(node, on_error=self.targets.get("on_fail"))
            out[node.name] = node
        return out

    def subflow(
        self, path: Path, spec: dict[str, Any], prefix: str, stack: tuple[str, ...]
    ) -> tuple[dict[str, Node], str | None]:
        """The other flow's nodes, renamed `prefix + name`, and the name of its first one."""
        flow_id = spec["flow"]
        if flow_id in stack:
            chain = " -> ".join((*stack, flow_id))
            self.error((*path, "flow"), f"subflow '{flow_id}' calls itself ({chain})")
            return {}, None
        sub_doc = self.find_flow(flow_id)
        if sub_doc is None:
            self.error(
                (*path, "flow"),
                f"no flow '{flow_id}' beside this file (a file with 'flow: {flow_id}')",
            )
            return {}, None
        saved = (self.doc, self.defaults, self.targets, self.prefix, self.returns_to)
        saved_voice = (self.globals, self.speaks_as, self.stamp)
        self.doc = sub_doc
        self.texts.append(sub_doc.text)
        self.speaks_as = self.sub_voice(sub_doc.data)
        self.stamp = (None, None) if self.speaks_as == self.flow_voice else self.speaks_as
        try:
            nodes = self.nodes(prefix, self.ref(spec["next"], (*path, "next")), (*stack, flow_id))
        finally:
            self.doc, self.defaults, self.targets, self.prefix, self.returns_to = saved
            self.globals, self.speaks_as, self.stamp = saved_voice
        return nodes, prefix + sub_doc.data["start"]

    def sub_voice(self, data: Mapping[str, Any]) -> tuple[str, str | None]:
        """A subflow's language and voice: its own, else the calling flow's (a language of
        its own without a voice: that language's default voice)."""
        language, voice = self.speaks_as
        own = str(data.get("language", language))
        return own, data.get("voice", voice if own == language else None)

    # -- pieces ------------------------------------------------------------------------------

    def opening_hours(self, name: str, spec: dict[str, Any]) -> None:
        named = spec.get("calendar", [])
        one = isinstance(named, str)
        calendars = [
            self.calendar(calendar, ("hours", name, "calendar", *(() if one else (i,))))
            for i, calendar in enumerate([named] if one else named)
        ]
        if any(days is None for days in calendars):
            return  # its errors are told
        try:
            self.hours.setdefault(name, parse_hours(spec, [d for d in calendars if d is not None]))
        except HoursError as e:
            self.error(("hours", name, *e.path), str(e))

    def calendar(self, name: str, where: Path) -> list[Day] | None:
        """The days of the calendar `name`; None (and an error) when it cannot be had.
        Its problems are located in its own file, once however many hours name it."""
        if name in self.calendars:
            return self.calendars[name]
        days = None
        try:
            doc = self.find_calendar(name)
        except FlowError as e:  # not YAML: located in the calendar's file
            self.problems += e.problems
            doc = None
        else:
            if doc is None:
                self.error(
                    where,
                    f"no calendar '{name}': expected calendars/{name}.yaml beside the flow file",
                )
        if doc is not None:
            self.texts.append(doc.text)  # an edited calendar is a new version of the flow
            found, problems = calendar_days(doc)
            self.problems += problems
            days = None if problems else found
        self.calendars[name] = days
        return days

    def error(self, path: Path, message: str, severity: str = "error") -> None:
        self.problems.append(self.doc.problem(path, message, severity))

    def ref(self, target: str | None, path: Path | None = None) -> str | None:
        """`target` as named in the compiled flow; `path` is where the flow writes it."""
        if target is None:
            return None
        if path is not None:
            self.refs.append((self.doc, path, self.prefix + target))
        return self.prefix + target

    def template(self, path: Path, source: str, spoken: bool = True) -> Render:
        if not is_template(source):
            return constant(source)
        err = check_syntax(source)
        if err:
            self.error(path, f"template error: {err}")
            return constant(source)
        self.uses.append((self.doc, path, names_used(source), spoken))
        return compile_template(source, self.language, self.currency)

    def duration(self, path: Path, value: Any) -> float:
        """`value` in seconds; more than a conversation not over is kept is an error."""
        seconds = _duration(value)
        if seconds > KEPT:
            self.error(path, f"at most {KEPT / 3600:g}h: the stores keep an unended one so long")
        return seconds

    def written(self, source: str) -> Render:
        return compile_template(source, self.language, self.currency, text=True)

    def url(self, path: Path, source: str) -> Render:
        """An http node's URL: the values put in are percent-encoded (`compile_url`)."""
        self.template(path, source, spoken=False)  # checked and its names noted
        return compile_url(source, self.language, self.currency)

    def expression(self, path: Path, source: Any, extra: frozenset[str] = frozenset()) -> Render:
        if not isinstance(source, str):
            return constant(source)
        err = check_syntax(source, expression=True)
        if err:
            self.error(path, f"expression error: {err}")
            return constant(None)
        self.uses.append((self.doc, path, names_used(source, expression=True) - extra, False))
        return compile_expression(source, self.language, self.currency)

    def prompt(self, path: Path, spec: Any) -> PromptTemplate:
        prompt = compile_prompt(self, path, spec)
        if self.stamp == (None, None):
            return prompt
        language, voice = self.stamp  # a subflow's own, when not the flow's
        return replace(prompt, language=language, voice=voice)

    def listening(self, path: Path, spec: dict[str, Any]) -> Listening:
        d = {**self.defaults, **{k: v for k, v in spec.items() if k in DEFAULTS}}

        def where(key: str) -> Path:
            return (*path, key) if key in spec else ("defaults", key)

        def target(*keys: str) -> str | None:
            # the node's own settings before the defaults', the specific before on_fail
            for key in keys:
                if key in spec:
                    return self.ref(spec[key], where(key))
            return next((self.targets[key] for key in keys if key in self.targets), None)

        on_fail = target("on_fail")
        return Listening(
            timeout=float(d["timeout"]),
            retries=int(d["retries"]),
            no_input=self.messages(where("no_input"), d["no_input"]),
            no_match=self.messages(where("no_match"), d["no_match"]),
            on_fail=on_fail,
            barge_in=bool(d["barge_in"]),
            on_no_input=target("on_no_input", "on_fail"),
            on_no_match=target("on_no_match", "on_fail"),
        )

    def messages(self, path: Path, spec: Any) -> tuple[PromptTemplate, ...]:
        """`no_input` / `no_match`: one message, or a list of them, one per re-prompt."""
        if not isinstance(spec, list):
            return (self.prompt(path, spec),)
        return tuple(self.prompt((*path, i), item) for i, item in enumerate(spec))

    def option(
        self, path: Path, name: str, spec: dict[str, Any], is_global: bool = False
    ) -> Option:
        # the main menu is the flow's, also for an option written in a subflow
        goto = (
            self.main_menu if spec.get("main_menu") else self.ref(spec.get("goto"), (*path, "goto"))
        )
        return Option(
            name,
            spec.get("dtmf"),
            tuple(spec.get("speech", ())),
            goto,
            is_global,
            help=bool(spec.get("help")),
        )

    # -- node kinds: one function each ---------------------------------------------------------

    def c_say(self, path: Path, spec: Any, raw: dict[str, Any]) -> PromptTemplate:
        return self.prompt(path, spec)

    def c_menu(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> Menu:
        own = [self.option((*path, "options", n), n, o) for n, o in spec["options"].items()]
        options = own + (self.globals if spec.get("global", True) else [])
        by_key: dict[str, Option] = {}
        by_phrase: dict[str, Option] = {}
        for o in options:
            where = ("global", o.name) if o.is_global else (*path, "options", o.name)
            if o.dtmf is not None:
                if o.dtmf in by_key and o.is_global and not by_key[o.dtmf].is_global:
                    self.error(  # at the menu's option: the global is fine in other menus
                        (*path, "options", by_key[o.dtmf].name, "dtmf"),
                        f"key {o.dtmf} is used by the global option '{o.name}' too "
                        "(choose another key, or set 'global: false' on this menu)",
                    )
                elif o.dtmf in by_key:
                    self.error(
                        (*where, "dtmf"),
                        f"key {o.dtmf} is used by option '{by_key[o.dtmf].name}' too",
                    )
                by_key.setdefault(o.dtmf, o)
            for phrase in o.phrases:
                norm = normalize(phrase)
                first = by_phrase.get(norm)
                if first is not None and first is not o and o.is_global and not first.is_global:
                    self.error(
                        (*path, "options", first.name, "speech"),
                        f"phrase '{phrase}' is used by the global option '{o.name}' too",
                    )
                elif first is not None and first is not o:
                    self.error(
                        (*where, "speech"),
                        f"phrase '{phrase}' is used by option '{by_phrase[norm].name}' too",
                    )
                by_phrase.setdefault(norm, o)
        modes = {"dtmf": {"dtmf"}, "speech": {"speech"}}.get(spec.get("input", ""))
        if modes is None:
            modes = {m for o in own for m, has in (("dtmf", o.dtmf), ("speech", o.phrases)) if has}
        confirm = spec.get("confirm", self.builtin("confirm"))
        below = spec.get("confirm_below", self.defaults["confirm_below"])
        return Menu(
            prompt=self.prompt((*path, "prompt"), spec["prompt"]),
            options=tuple(options),
            by_key=MappingProxyType(by_key),
            matcher=Matcher((o.name, o.phrases) for o in options),
            listening=self.listening(path, spec),
            modes=frozenset(modes),
            confirm_below=float(below),
            confirm=self.question((*path, "confirm"), confirm) if below else None,
            survey=spec.get("survey"),
            help=self.prompt((*path, "help"), spec["help"]) if "help" in spec else None,
        )

    def c_ask(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> Ask:
        digits = spec.get("digits", {})
        lo, hi = digits.get("min", 1), digits.get("max", digits.get("min", 32))
        if lo > hi:
            self.error((*path, "digits"), f"min ({lo}) is more than max ({hi})")
        name = spec["save_as"]
        self.known.add(name)
        if spec.get("sensitive"):
            self.sensitive.add(name)
        validate = spec.get("validate")
        if spec.get("survey") and spec.get("sensitive"):
            self.error(
                (*path, "survey"), "a sensitive answer is never kept: it cannot be a survey's"
            )
        kind, finish_on = spec.get("input", "digits"), digits.get("finish_on", "#")
        keys_only = self.keys_only(path, spec)
        globals_ = self.globals if spec.get("global", True) else []
        by_key = self.global_keys(path, globals_, kind, finish_on)
        spoken = [o for o in globals_ if o.phrases]
        return Ask(
            prompt=self.prompt((*path, "prompt"), spec["prompt"]),
            input=kind,
            min_digits=lo,
            max_digits=hi,
            finish_on=finish_on,
            validate=self.expression((*path, "validate"), validate, frozenset({"value"}))
            if validate
            else None,
            save_as=name,
            sensitive=bool(spec.get("sensitive")),
            listening=self.listening(path, spec),
            survey=spec.get("survey"),
            help=self.prompt((*path, "help"), spec["help"]) if "help" in spec else None,
            globals=tuple(o for o in globals_ if o.dtmf in by_key or (o.phrases and not keys_only)),
            by_key=MappingProxyType(by_key),
            matcher=Matcher((o.name, o.phrases) for o in spoken)
            if spoken and not keys_only
            else None,
            keys_only=keys_only,
        )

    def global_keys(
        self, path: Path, options: list[Option], kind: str, finish_on: str
    ) -> dict[str, Option]:
        """The global options an ask takes by key: those on keys it does not collect (a
        digits or any ask collects digits and its finish key; a speech ask no key)."""
        by_key: dict[str, Option] = {}
        for o in options:
            if o.dtmf is None:
                continue
            if kind != "speech" and (o.dtmf.isdigit() or o.dtmf == finish_on):
                what = "digit" if o.dtmf.isdigit() else "finish key"
                self.error(
                    path,
                    f"the global option '{o.name}' (key {o.dtmf}) is off here: this ask takes "
                    f"{o.dtmf} as a {what} (its phrases still work; move the global to * or #, "
                    "or set `global: false` on the ask)",
                    "warning",
                )
                continue
            by_key[o.dtmf] = o
        return by_key

    def keys_only(self, path: Path, spec: dict[str, Any]) -> bool:
        """Whether a sensitive ask is keys only: on Twilio's recogniser (the flow's speech:
        twilio) a spoken answer would leave our servers, unless the ask opts in with
        `cloud_speech: true` (a warning). Local recognition (speech: vosk) keeps speech."""
        if not spec.get("sensitive") or self.speech != "twilio":
            return False
        if spec.get("cloud_speech"):
            self.error(
                (*path, "cloud_speech"),
                f"a spoken {spec['save_as']} goes to Twilio's speech recogniser: sensitive "
                "answers are better keyed in (or recognised locally, with speech: vosk)",
                "warning",
            )
            return False
        if spec.get("input") == "speech":
            self.error(
                (*path, "input"),
                f"a sensitive ask is keys only on Twilio's recogniser, so {spec['save_as']} "
                "could never be answered: use input: digits, speech: vosk, or opt in with "
                "`cloud_speech: true`",
            )
        return True

    def c_http(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> Http:
        if spec.get("save_as"):
            self.known.add(spec["save_as"])
        body = spec.get("json")
        headers = tuple(
            (k, self.template((*path, "headers", k), v, spoken=False))
            for k, v in spec.get("headers", {}).items()
        )
        used: set[str] = set()
        for text in [spec["url"], *spec.get("headers", {}).values(), repr(body)]:
            used |= names_used(text) if is_template(text) and not check_syntax(text) else set()
        method, timeout = spec.get("method", "GET"), float(spec.get("timeout", 5))
        hold_path = (*path, "hold") if "hold" in spec else ("defaults", "hold")
        hold = spec.get("hold", self.defaults.get("hold"))
        if hold is None and timeout + ANSWER_MARGIN > self.turn_budget:
            self.error(
                (*path, "timeout"),
                f"a {timeout:g} s wait cannot fit in a turn: ivr answers every webhook within "
                f"{self.turn_budget:g} s (IVR_TURN_BUDGET); give the node a hold prompt "
                '(hold: "One moment while I look that up.") or a timeout under '
                f"{self.turn_budget - ANSWER_MARGIN:g} s",
            )
        return Http(
            method=method,
            url=self.url((*path, "url"), spec["url"]),
            headers=headers,
            json=None if body is None else self.json_body((*path, "json"), body),
            timeout=timeout,
            save_as=spec.get("save_as"),
            sensitive=bool(used & self.sensitive),
            # a POST or PATCH sent twice may do its work twice: retried only when asked to
            retries=int(spec.get("retries", 1 if method in IDEMPOTENT else 0)),
            hold=None if hold is None else self.prompt(hold_path, hold),
            hold_after=float(self.defaults["hold_after"]),
            text=bool(spec.get("text")),
        )

    def json_body(self, path: Path, body: Any) -> Render:
        if isinstance(body, str):
            return self.template(path, body, spoken=False)
        if isinstance(body, dict):
            parts = {k: self.json_body((*path, k), v) for k, v in body.items()}
            return lambda ctx: {k: r(ctx) for k, r in parts.items()}
        if isinstance(body, list):
            items = [self.json_body((*path, i), v) for i, v in enumerate(body)]
            return lambda ctx: [r(ctx) for r in items]
        return constant(body)

    def c_set(
        self, path: Path, spec: dict[str, Any], raw: dict[str, Any]
    ) -> tuple[tuple[str, Render], ...]:
        out = []
        for name, expr in spec.items():
            out.append((name, self.expression((*path, name), expr)))
            self.known.add(name)
        self.check_language(path, spec.get("language"))
        return tuple(out)

    def check_language(self, path: Path, expr: Any) -> None:
        """`set: {language: "'kk-KZ'"}`: a language written out must be one of the flow's
        (a computed one that is not counts as the flow's own, on the call)."""
        written = _QUOTED.fullmatch(expr) if isinstance(expr, str) else None
        if written and written[2] not in self.languages:
            self.error(
                (*path, "language"),
                f"{written[2]!r} is not one of the flow's languages "
                f"({', '.join(self.languages)}): add it to `languages`",
            )

    def c_branch(
        self, path: Path, spec: list[dict[str, Any]], raw: dict[str, Any]
    ) -> tuple[Any, ...]:
        cases: list[tuple[Any, Render | None, str | None]] = []
        for i, case in enumerate(spec):
            if "else" in case:
                if i != len(spec) - 1:
                    self.error(
                        (*path, i), "'else' must be the last case (cases after it never run)"
                    )
                cases.append((None, None, self.ref(case["else"], (*path, i, "else"))))
            else:
                cases.append(
                    (
                        case["if"],
                        self.expression((*path, i, "if"), case["if"]),
                        self.ref(case["goto"], (*path, i, "goto")),
                    )
                )
        return tuple(cases)

    def c_transfer(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> Transfer:
        wait = spec.get("wait")
        if wait is not None and not spec.get("queue"):
            self.error((*path, "wait"), "a caller waits in a queue: give the transfer a `queue`")
        if wait is not None and wait.get("leave_key") and "on_leave" not in spec:
            self.error(
                (*path, "wait", "leave_key"),
                "a caller who leaves the queue goes on at `on_leave`: add it (a callback offer)",
            )
        targets = {
            key: self.ref(spec.get(key), (*path, key))
            for key in ("on_no_answer", "on_busy", "on_failed", "on_leave", "after")
        }
        return Transfer(
            to=self.template((*path, "to"), spec["to"], spoken=False),
            queue=spec.get("queue"),
            queued=self.template((*path, "queue"), spec["queue"], spoken=False)
            if is_template(spec.get("queue") or "")
            else None,
            say=self.prompt((*path, "say"), spec["say"]) if "say" in spec else None,
            caller_id=spec.get("caller_id"),
            timeout=spec.get("timeout"),
            attributes=tuple(
                (k, self.template((*path, "attributes", k), v, spoken=False))
                for k, v in spec.get("attributes", {}).items()
            ),
            whisper=self.prompt((*path, "whisper"), spec["whisper"]) if "whisper" in spec else None,
            wait=self.wait((*path, "wait"), wait) if wait is not None else None,
            **targets,
        )

    def wait(self, path: Path, spec: dict[str, Any]) -> Wait:
        key = spec.get("leave_key")
        offer = spec.get("leave_prompt")
        if key and offer is None:
            offer = phrases.phrase("queue_leave", self.language).format(key=key)
        return Wait(
            music=spec.get("music"),
            announce=bool(spec.get("announce", True)),
            leave_key=key,
            leave_prompt=self.prompt((*path, "leave_prompt"), offer) if key else None,
        )

    def c_callback(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> Callback:
        self.known.add("callback_number")
        confirm = spec.get("confirm", True)
        if confirm is True:
            confirm = phrases.phrase("callback_confirm", self.language)
        booked = spec.get("say", phrases.phrase("callback_booked", self.language))
        ask = spec.get("ask_number", phrases.phrase("callback_number", self.language))
        return Callback(
            number=self.template((*path, "number"), spec.get("number", "{{ caller }}"), False),
            confirm=self.prompt((*path, "confirm"), confirm) if confirm else None,
            ask_number=self.prompt((*path, "ask_number"), ask),
            window=self.template((*path, "window"), spec["window"], False)
            if "window" in spec
            else None,
            queue=spec.get("queue"),
            url=self.url((*path, "url"), spec["url"]) if "url" in spec else None,
            say=self.prompt((*path, "say"), booked) if booked else None,
            listening=self.listening(path, spec),
        )

    def c_record(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> Record:
        self.known.add(spec["save_as"])
        callback = spec.get("callback")
        if callback is not None:  # on the caller's number, asked for only when withheld
            wanted = {} if callback is True else callback
            callback = self.c_callback((*path, "callback"), {**wanted, "confirm": False}, raw)
        return Record(
            self.prompt((*path, "prompt"), spec["prompt"]),
            spec.get("max_seconds", 60),
            spec.get("finish_on", "#"),
            spec["save_as"],
            callback,
        )

    def c_end(self, path: Path, spec: dict[str, Any] | None, raw: dict[str, Any]) -> End:
        spec = spec or {}
        say = self.prompt((*path, "say"), spec["say"]) if "say" in spec else None
        outcome = spec.get("outcome", "contained")
        # a subflow's failed end fails the call: it must not return as if all went well
        return End(say, outcome, self.returns_to if outcome == "contained" else None)

    def c_message(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> Message:
        to = spec.get("to", "{{ caller }}")
        for key, text in (("text", spec["text"]), ("to", to)):
            used = names_used(text) if is_template(text) and not check_syntax(text) else set()
            self.sends.append((self.doc, (*path, key), frozenset(used)))
        go_on = spec.get("continue") or {}
        return Message(
            text=self.template((*path, "text"), spec["text"], spoken=False),
            channel=spec.get("channel", "sms"),
            to=self.template((*path, "to"), to, spoken=False),
            go_on=self.ref(go_on.get("at"), (*path, "continue", "at")),
            window=self.duration((*path, "continue", "window"), go_on.get("window", 3600)),
            verified_for=self.duration((*path, "continue", "verified"), go_on["verified"])
            if "verified" in go_on
            else None,
        )

    def c_subflow(self, path: Path, spec: dict[str, Any], raw: dict[str, Any]) -> None:
        return None  # inlined by nodes()


_KINDS: Mapping[str, Callable[..., Any]] = {
    "say": _Compiler.c_say,
    "menu": _Compiler.c_menu,
    "ask": _Compiler.c_ask,
    "http": _Compiler.c_http,
    "set": _Compiler.c_set,
    "branch": _Compiler.c_branch,
    "transfer": _Compiler.c_transfer,
    "record": _Compiler.c_record,
    "callback": _Compiler.c_callback,
    "message": _Compiler.c_message,
    "subflow": _Compiler.c_subflow,
    "end": _Compiler.c_end,
}


def _check_graph(
    doc: Document,
    start: str,
    nodes: dict[str, Node],
    c: _Compiler,
    fallback: str | None = None,
    voicemail: str | None = None,
) -> list[Problem]:
    """Targets exist; every node is reachable (warning: from the start, or as the
    fallback) and can reach an ending (error); templates use known variables (warning);
    sensitive values are not spoken (warning)."""
    if not nodes:
        return []
    problems: list[Problem] = []
    own = {n.name: n for n in nodes.values() if n.file == doc.file and "." not in n.name}
    if start not in nodes:
        problems.append(doc.problem(("start",), _missing(start, nodes)))
    flagged: set[tuple[str, Path]] = set()
    for udoc, path, target in c.refs:  # located where the flow names the target
        if target not in nodes and (udoc.file, path) not in flagged:
            flagged.add((udoc.file, path))
            problems.append(udoc.problem(path, _missing(target, nodes)))
    located = {target for _, _, target in c.refs}
    for node in nodes.values():
        for label, target in node.edges():
            if target not in nodes and target not in located:
                problems.append(
                    Problem(
                        node.file,
                        node.line,
                        1,
                        f"nodes.{node.name}",
                        f"{label}: {_missing(target, nodes)}",
                    )
                )
    seen = _reach(start, nodes, forward=True)
    if fallback is not None:
        seen |= _reach(fallback, nodes, forward=True)
    if voicemail is not None:
        seen |= _reach(voicemail, nodes, forward=True)
    for name in own:
        if name not in seen:
            problems.append(
                doc.problem(
                    ("nodes", name),
                    "unreachable: no path from start leads here",
                    "warning",
                    key=True,
                )
            )
    problems += _loops(nodes)
    ends = [n.name for n in nodes.values() if _terminal(n)]
    rescued = _reach_back(ends, nodes)
    for node in nodes.values():
        if node.name not in rescued and node.name in seen:
            problems.append(
                Problem(
                    node.file,
                    node.line,
                    1,
                    f"nodes.{node.name}",
                    "no end, transfer or record can be reached from here: a caller would be stuck",
                )
            )
    for udoc, path, names, spoken in c.uses:
        unknown = sorted(names - c.known - {"value", "option", "phrase", "number", "reason"})
        if unknown:
            problems.append(
                udoc.problem(path, f"uses {', '.join(unknown)}, which no node sets", "warning")
            )
        secret = sorted(names & c.sensitive) if spoken else []
        if secret:
            problems.append(
                udoc.problem(path, f"speaks sensitive {', '.join(secret)} aloud", "warning")
            )
    c.uses.clear()
    if any(p.severity == "error" for p in (*problems, *c.problems)):
        return problems  # the text channels' walk of a broken graph would say nothing new
    docs = [doc, *(d for d, _, _ in c.refs)]  # subflows' too: text problems are located there
    return problems + text_problems(docs, start, nodes, _terminal, _passes)


LATER = ("on_text", "continue")  # ways out of a node that no turn takes at once


def _loops(nodes: Mapping[str, Node]) -> list[Problem]:
    """Cycles of nodes that never wait for the caller, whatever their conditions say: at
    run time one would step until the engine gives up. One error per cycle, at its first
    node (strongly connected components, Tarjan's algorithm)."""
    passing = {n.name: n for n in nodes.values() if _passes(n)}
    # (`on_text` is taken instead of a node on text: text_paths checks it; a message's
    # `continue` is taken by a later text message, not in the same turn)
    ways = {
        name: [t for label, t in n.edges() if t in passing and label not in LATER]
        for name, n in passing.items()
    }
    problems = []
    for cycle in strongly_connected(ways):
        members = sorted((nodes[n] for n in cycle), key=lambda n: (n.file, n.line))
        first = members[0]
        loop = " -> ".join([*(n.name for n in members), first.name])
        problems.append(
            Problem(
                first.file,
                first.line,
                1,
                f"nodes.{first.name}",
                f"these nodes loop without ever waiting for the caller ({loop}): put a menu "
                "or ask in the loop; to try a backend again, give its http node `retries`",
            )
        )
    return problems


def _passes(node: Node) -> bool:
    """Whether the engine goes through this node without waiting for anything."""
    if isinstance(node.spec, End):
        return node.spec.returns_to is not None
    return node.kind in PASSING


def _terminal(node: Node) -> bool:
    s = node.spec
    if isinstance(s, End):
        return s.returns_to is None
    if isinstance(s, Menu | Ask) and None in (s.listening.on_no_input, s.listening.on_no_match):
        return True  # running out of retries ends the call
    if node.kind == "http" and node.on_error is None:
        return True
    return node.kind in ("transfer", "record", "callback")


def _missing(target: str, nodes: Mapping[str, Node]) -> str:
    close = difflib.get_close_matches(target, list(nodes), 1)
    return f"'{target}' is not a node" + (f" (did you mean '{close[0]}'?)" if close else "")


def _reach(start: str, nodes: Mapping[str, Node], forward: bool) -> set[str]:
    seen, todo = {start}, deque([start])
    while todo:
        node = nodes.get(todo.popleft())
        for _, target in node.edges() if node else ():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _reach_back(ends: list[str], nodes: Mapping[str, Node]) -> set[str]:
    into: dict[str, list[str]] = {}
    for node in nodes.values():
        for _, target in node.edges():
            into.setdefault(target, []).append(node.name)
    seen, todo = set(ends), deque(ends)
    while todo:
        for source in into.get(todo.popleft(), ()):
            if source not in seen:
                seen.add(source)
                todo.append(source)
    return seen
