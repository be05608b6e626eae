"""The compiler's checks of how a flow reads on text channels (SMS, WhatsApp, web chat).

On each text channel the flow is walked as a text conversation walks it: a node that does
not run there (`channels`, a sensitive ask) is replaced by its `on_text`, or by the
built-in end ("please call us", outcome transferred); a transfer ends the conversation
(agents take calls). Every node reached so must still reach an end (error), and what
reads badly in text is warned about, located where the flow says it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from ivr.errors import Problem
from ivr.flow.loader import Document, Path
from ivr.flow.model import Ask, Menu, Message, Node, PromptTemplate, Text

TEXT_CHANNELS = ("sms", "whatsapp", "chat")
CALL_US = "\0call us"  # the built-in end a node without `on_text` becomes on text
LOOP = "\0loop"  # where an `on_text` chain that goes round leads
# a sentence of a menu prompt that offers a choice (the listing shows those already), in
# the languages ivr speaks: en, ru, kk, ko
_OFFERS = re.compile(
    r"\b(press|say|dial|key|enter)\b|нажми|скажи|басыңыз|айтыңыз|누르|말씀", re.IGNORECASE
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def text_problems(
    docs: Iterable[Document],
    start: str,
    nodes: Mapping[str, Node],
    ends: Callable[[Node], bool],
    passes: Callable[[Node], bool],
) -> list[Problem]:
    """Errors and warnings about the text channels, for a flow whose graph has no error on
    voice; `docs`: the documents the nodes come from (for locations), `ends` and `passes`:
    whether a node may end a call, and goes on without waiting (the compiler's)."""
    if start not in nodes:
        return []
    place = _Places({d.file: d for d in docs})
    ended: dict[str, list[str]] = {}  # node -> the channels a conversation is told to call at
    stuck: dict[str, list[str]] = {}
    loops: dict[str, list[str]] = {}
    cycles: dict[tuple[str, ...], list[str]] = {}  # never waiting, made by `on_text`s
    reached: set[str] = set()
    out_of = {name: _ways(node) for name, node in nodes.items()}
    # channels whose flows are the same (the same nodes off them: most often all three)
    # are walked once
    alike: dict[frozenset[str], list[str]] = {}
    for channel in TEXT_CHANNELS:
        off = frozenset(n for n, node in nodes.items() if not node.runs_on(channel))
        alike.setdefault(off, []).append(channel)
    for group in alike.values():
        walk = _Walk(nodes, group[0], out_of)
        seen = walk.reach(start)
        for leg in (m.spec.go_on for m in nodes.values() if _goes_on(m, group)):
            seen |= walk.reach(str(leg))  # a call's caller may go on by text there
        reached |= seen
        for name in walk.called:  # (a sensitive ask's refusal is the default: not warned)
            if nodes[name].channels:
                ended.setdefault(name, []).extend(group)
        for name in walk.looped:
            loops.setdefault(name, []).extend(group)
        ways = {n: [walk.resolve(t) for t in out_of[n]] for n in seen}
        going = {n for n in seen if passes(nodes[n])}
        looping: set[str] = set()
        for cycle in strongly_connected({n: [t for t in ways[n] if t in going] for n in going}):
            members = tuple(sorted(cycle, key=lambda n: (nodes[n].file, nodes[n].line)))
            cycles.setdefault(members, []).extend(group)
            looping |= set(cycle)
        for name in sorted(seen - _rescued(nodes, ways, ends) - looping):  # (said: a loop)
            stuck.setdefault(name, []).extend(group)
    out = [place.at(nodes[n], (), f"{_on(c)}: {STUCK}", "error", True) for n, c in stuck.items()]
    for name, channels in loops.items():
        out.append(place.at(nodes[name], ("on_text",), f"{_on(channels)}: {LOOPS}", "error"))
    for members, channels in cycles.items():
        loop = " -> ".join((*members, members[0]))
        message = f"{_on(channels)}: these nodes loop without ever waiting ({loop}): {CYCLE}"
        out.append(place.at(nodes[members[0]], (), message, "error", True))
    out += [
        place.at(nodes[n], (), _called(nodes[n], c), "warning", key=True) for n, c in ended.items()
    ]
    for node in nodes.values():
        out += _warnings(node, node.name in reached, place)
        leg = nodes.get(node.spec.go_on or "") if isinstance(node.spec, Message) else None
        if leg is not None and not leg.runs_on(node.spec.channel) and not leg.on_text:
            said = f"the {node.spec.channel} leg starts at {leg.name}, which does not run on "
            said += f"{node.spec.channel}: the customer would be told to call at once"
            out.append(place.at(node, ("message", "continue", "at"), said, "warning"))
    return out


def _goes_on(node: Node, channels: list[str]) -> bool:
    """Whether `node` is a message whose answer on one of `channels` goes on by text."""
    return (
        isinstance(node.spec, Message) and bool(node.spec.go_on) and (node.spec.channel in channels)
    )


STUCK = "no end, transfer or record can be reached from here: a text conversation would be stuck"
LOOPS = (
    "these nodes' `on_text` lead round to one another: a text conversation would loop; "
    "send one of them to a node that runs on text"
)


CYCLE = "their `on_text` lead back into the loop; send one of them on to a node that waits"


def _on(channels: list[str]) -> str:
    if len(channels) == len(TEXT_CHANNELS):
        return "on text"
    return "on " + " and ".join(sorted(channels, key=TEXT_CHANNELS.index))


def _called(node: Node, channels: list[str]) -> str:
    why = f"it runs on {', '.join(sorted(node.channels))} only"
    return (
        f"{why}, and has no `on_text`: a conversation {_on(channels)} ends here (the customer "
        "is told to call; outcome transferred, reason channel); give it `on_text` to go on"
    )


def _warnings(node: Node, reached: bool, place: _Places) -> list[Problem]:
    out = []
    everywhere = all(node.runs_on(c) for c in ("voice", *TEXT_CHANNELS))
    if node.on_text and everywhere:
        message = "`on_text` is never taken: this node runs on every channel (see `channels`)"
        out.append(place.at(node, ("on_text",), message, "warning"))
    sensitive = isinstance(node.spec, Ask) and node.spec.sensitive
    if sensitive and node.channels & set(TEXT_CHANNELS):
        message = (
            "a sensitive ask on a text channel: carriers keep the messages, answers included "
            "(allowed; a secure link or a call is safer)"
        )
        out.append(place.at(node, ("channels",), message, "warning"))
    if reached and isinstance(node.spec, Menu) and not _has_text(node.spec.prompt):
        why = _more_than_choices(node.spec)
        if node.spec.prompt.shown is not None:  # (it reads a value out: `spell`, `digits`)
            message = (
                "this menu's prompt has no `text:`: text channels show its spoken words "
                '("press 1 ..."), values written: add a `text:` to say it in a message'
            )
            out.append(place.at(node, ("menu", "prompt"), message, "warning"))
            why = None
        if why:
            message = (
                f"this menu's prompt {why}; text channels show only its choices "
                '("Reply 1 for ..."): add a `text:` to say it in a message'
            )
            out.append(place.at(node, ("menu", "prompt"), message, "warning"))
    return out


def _has_text(prompt: PromptTemplate) -> bool:
    """Whether a `text:` is written (a prompt that only reads a value out gets a text
    version of its spoken words, values written)."""
    return prompt.shown is not None and prompt.shown.source != prompt.source


def _more_than_choices(menu: Menu) -> str | None:
    """Why the menu's spoken prompt says more than the listing of its choices, if it does."""
    prompts = [menu.prompt, *(p for _, p in menu.prompt.languages)]
    if any(p.static is None for p in prompts):
        return "is templated"
    names = {p.casefold() for o in menu.options for p in (*o.phrases, o.name)}
    for prompt in prompts:
        words = " ".join(p.text for p in prompt.source if isinstance(p, Text))
        for sentence in _SENTENCES.split(words.strip()):
            said = sentence.casefold()
            if _informs(sentence) and not any(n in said for n in names):
                return f"says more than its choices ({sentence!r})"
    return None


def _informs(sentence: str) -> bool:
    """Whether a sentence tells something (a statement of a few words that offers no
    choice): a greeting ("hi") or a question ("anything else?") leaves nothing out."""
    return len(sentence.split()) > 2 and not sentence.endswith("?") and not _OFFERS.search(sentence)


class _Walk:
    """A flow as a conversation on one text channel walks it."""

    def __init__(
        self, nodes: Mapping[str, Node], channel: str, out_of: Mapping[str, list[str]]
    ) -> None:
        self.nodes, self.channel, self.out_of = nodes, channel, out_of
        self.called: list[str] = []  # off this channel, no on_text: the customer told to call
        self.looped: list[str] = []  # an on_text chain that goes round starts here

    def resolve(self, name: str) -> str:
        """Where a conversation that goes to `name` goes on this channel."""
        chain: list[str] = []
        while name not in (CALL_US, LOOP):
            node = self.nodes.get(name)
            if node is None or node.runs_on(self.channel):
                return name
            if name in chain:
                if not set(chain) & set(self.looped):
                    self.looped.append(min(chain[chain.index(name) :], key=self.order))
                return LOOP
            chain.append(name)
            if node.on_text is None:
                if name not in self.called:
                    self.called.append(name)
                return CALL_US
            name = node.on_text
        return name

    def order(self, name: str) -> tuple[str, int]:
        node = self.nodes[name]
        return node.file, node.line

    def reach(self, start: str) -> set[str]:
        """The nodes a conversation on this channel may enter."""
        first = self.resolve(start)
        seen = {first} if first in self.nodes else set()
        todo = deque(seen)
        while todo:
            for target in self.out_of[todo.popleft()]:
                found = self.resolve(target)
                if found in self.nodes and found not in seen:
                    seen.add(found)
                    todo.append(found)
        return seen


def strongly_connected(ways: Mapping[str, list[str]]) -> list[list[str]]:
    """The groups of nodes that lead round to one another (strongly connected components,
    Tarjan's algorithm; flows are far shallower than the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in ways[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = stack[stack.index(name) :]
            del stack[stack.index(name) :]
            if len(component) > 1 or name in ways[name]:
                out.append(component)

    for name in ways:
        if name not in index:
            visit(name)
    return out


def _ways(node: Node) -> list[str]:
    """Where `node` may lead on text: nowhere from a transfer (the conversation ends
    there), and not by `on_text` (taken instead of the node, not after it)."""
    if node.kind == "transfer":
        return []
    return [t for label, t in node.edges() if label != "on_text"]


def _rescued(
    nodes: Mapping[str, Node], ways: Mapping[str, list[str]], ends: Callable[[Node], bool]
) -> set[str]:
    """The nodes of `ways` from which an end can be reached."""
    into: dict[str, list[str]] = {}
    for source, targets in ways.items():
        for target in targets:
            into.setdefault(target, []).append(source)
    done = {n for n in ways if ends(nodes[n]) or nodes[n].kind == "transfer"} | {CALL_US}
    todo = deque(done)
    while todo:
        for source in into.get(todo.popleft(), ()):
            if source not in done:
                done.add(source)
                todo.append(source)
    return done


class _Places:
    """Where a node's keys are written: in its own document (a subflow's for its nodes)."""

    def __init__(self, docs: Mapping[str, Document]) -> None:
        self.docs = docs

    def at(self, node: Node, keys: Path, message: str, severity: str, key: bool = False) -> Problem:
        doc = self.docs.get(node.file)
        local = node.name.rsplit(".", 1)[-1]  # a subflow's node, by its name in its file
        if doc is None:
            return Problem(node.file, node.line, 1, f"nodes.{local}", message, severity)
        return doc.problem(("nodes", local, *keys), message, severity, key=key)
