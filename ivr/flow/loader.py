"""Stage 1: read flow YAML into plain data plus the line and column of every key and value.

YAML 1.2 booleans only (`yes`, `no`, `on`, `off` stay words, menus say them),
duplicate keys are errors, and aliases are expanded under a budget so a
"billion laughs" file fails with a message instead of eating the machine.
`${NAME}` reads only `IVR_FLOW_*` variables and those listed in `IVR_FLOW_ENV`,
never the server's own settings: a flow file must not be a way to read its secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from ivr.errors import FlowError, Problem

Path = tuple[str | int, ...]

MAX_NODES = 200_000  # nodes after alias expansion; real flows have a few thousand
MAX_DEPTH = 64
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
FLOW_ENV_PREFIX = "IVR_FLOW_"  # what flows may read: secrets they need, never the server's
FLOW_ENV_LIST = "IVR_FLOW_ENV"  # more names the operator lets flows read, comma-separated
SERVER_ENV_PREFIXES = ("TWILIO_", "IVR_")  # the server's own settings and secrets
_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Resolver12(Resolver):
    """PyYAML's resolver with YAML 1.2 booleans (only true/false) and no timestamps: a
    date stays the text it is (YAML 1.2 has no timestamp type), so `2026-02-29` is a
    located error of the hours it belongs to, not a constructor's traceback."""


_Resolver12.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_Resolver12.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

try:  # libyaml: parsing in C (8x faster), construction here
    import yaml.cyaml

    _CParser: Any = yaml.cyaml.CParser  # type: ignore[attr-defined]
except (ImportError, AttributeError):  # pragma: no cover - PyYAML built without libyaml
    _CParser = None


class _PyLoader(Reader, Scanner, Parser, Composer, SafeConstructor, _Resolver12):
    """The loader in pure Python: PyYAML built without libyaml."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        _Resolver12.__init__(self)


_Loader: Any = _PyLoader
if _CParser is not None:

    class _CLoader(_CParser, SafeConstructor, _Resolver12):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            _CParser.__init__(self, text)
            SafeConstructor.__init__(self)
            _Resolver12.__init__(self)

    _Loader = _CLoader


def _flatten_mapping(loader: Any, node: yaml.MappingNode) -> None:
    """PyYAML's `<<` merge, keeping one pair per merged key (the winning one): a key
    written here overrides a merged one without being a duplicate, and merges of
    merges do not double their pairs at every level (a merge-key alias bomb)."""
    own = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
    SafeConstructor.flatten_mapping(loader, node)  # calls back here for merged mappings
    mine = [(k, v) for k, v in node.value if id(k) in own]
    written = {_key(k) for k, _ in mine}
    merged = {_key(k): (k, v) for k, v in node.value if id(k) not in own}
    node.value = [kv for name, kv in merged.items() if name not in written] + mine


def _key(node: yaml.Node) -> object:
    return node.value if isinstance(node, yaml.ScalarNode) else id(node)


_PyLoader.flatten_mapping = _flatten_mapping  # type: ignore[method-assign,assignment]
if _CParser is not None:
    _CLoader.flatten_mapping = _flatten_mapping  # type: ignore[method-assign,assignment]


@dataclass
class Document:
    """A flow file's data with source marks: `marks[path]` is the (line, col) of a value,
    `key_marks[path]` of the key that names it (both 1-based)."""

    file: str
    data: Any
    text: str = ""
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def mark(self, path: Path, key: bool = False) -> tuple[int, int]:
        """The nearest known position of `path` (walking up to its parents)."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if key and p in self.marks:
                return self.marks[p]
            p = p[:-1]
        return self.marks.get((), (1, 1))

    def problem(
        self, path: Path, message: str, severity: str = "error", key: bool = False
    ) -> Problem:
        line, col = self.mark(path, key)
        return Problem(self.file, line, col, dotted(path), message, severity)


def listed_env(env: Mapping[str, str]) -> frozenset[str]:
    """The names the operator listed in IVR_FLOW_ENV (in `env`) for flows to read too."""
    return frozenset(n.strip() for n in env.get(FLOW_ENV_LIST, "").split(",") if n.strip())


def env_refusal(name: str, listed: frozenset[str]) -> str | None:
    """Why a flow may not read the environment variable `name`; None when it may."""
    if name.startswith(FLOW_ENV_PREFIX):
        return None
    if name.startswith(SERVER_ENV_PREFIXES):
        return (
            f"environment variable {name} is the server's own setting: no flow may read it, "
            f"even when listed in {FLOW_ENV_LIST}; put what the flow needs in a variable "
            f"named {FLOW_ENV_PREFIX}..."
        )
    if name in listed:
        return None
    return (
        f"flows may read only environment variables named {FLOW_ENV_PREFIX}...: rename "
        f"{name} to {FLOW_ENV_PREFIX}{name}, or list {name} in {FLOW_ENV_LIST} "
        "(comma-separated names)"
    )


def dotted(path: Path) -> str:
    """`('nodes', 'main', 'menu')` -> `nodes.main.menu`; list indexes as `[0]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_flow_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Document:
    """Read a flow file from disk; the only stage that touches the file system."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise FlowError([Problem(name, 1, 1, "", f"cannot read file: {e.strerror}")]) from None
    return parse_flow(raw, name, env)


def parse_flow(
    raw: bytes | str, file: str = "<flow>", env: Mapping[str, str] | None = None
) -> Document:
    """Parse flow YAML text into a Document; raises FlowError listing every problem found."""
    text = _decode(raw, file) if isinstance(raw, bytes) else raw
    text = text.removeprefix("\ufeff")
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise FlowError(
            [Problem(file, 1, 1, "", "the file is empty (expected a flow: flow, start, nodes)")]
        )
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        if "maximum nesting depth" not in (e.problem or ""):
            raise FlowError([_yaml_problem(file, e, text)]) from None
        # libyaml refuses 1,000 levels with its own words, and before the builder sees any
        mark = e.problem_mark
        told = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise FlowError([_too_deep(file, text, told)]) from None
    except RecursionError:  # PyYAML without libyaml composes recursively
        told = getattr(loader, "line", 0) + 1, getattr(loader, "column", 0) + 1
        raise FlowError([_too_deep(file, text, told)]) from None
    except yaml.YAMLError as e:
        raise FlowError([Problem(file, 1, 1, "", f"not valid YAML: {e}")]) from None
    finally:
        loader.dispose()
    if root is None:
        raise FlowError(
            [Problem(file, 1, 1, "", "the file is empty (expected a flow: flow, start, nodes)")]
        )
    doc = Document(file, None, text)
    builder = _Builder(doc, loader, os.environ if env is None else env)
    doc.data = builder.build(root, (), 0)
    if builder.problems:
        raise FlowError(builder.problems)
    return doc


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        col = e.start - (before.rfind(b"\n") + 1) + 1
        raise FlowError(
            [
                Problem(
                    file,
                    line,
                    col,
                    "",
                    f"not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8",
                )
            ]
        ) from None


def _yaml_problem(file: str, e: yaml.MarkedYAMLError, text: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    what = e.problem or "not valid YAML"
    lines = text.splitlines()
    if 0 < line <= len(lines) and "\t" in lines[line - 1][: col + 1]:
        what = "a tab character; YAML indents with spaces only"
    elif e.context:
        what = f"{what} ({e.context})"
    return Problem(file, line, col, "", f"YAML syntax: {what}")


def _too_deep(file: str, text: str, told: tuple[int, int]) -> Problem:
    """The builder's error for a file PyYAML itself refused as too deep, placed where the
    nesting passes MAX_DEPTH; where the events cannot tell, at the place PyYAML told."""
    found = _first_too_deep(text)
    line, col, path = found if found is not None else (*told, ())
    return Problem(file, line, col, dotted(path), f"nested more than {MAX_DEPTH} levels deep")


@dataclass
class _Open:
    """A collection still open while reading events: where it is and what comes next in it."""

    path: Path
    mapping: bool
    index: int = 0
    key: str | None = None  # a mapping's key waiting for its value


def _first_too_deep(text: str) -> tuple[int, int, Path] | None:
    """The first value nested deeper than MAX_DEPTH, as the builder would find it. Read from
    the pure-Python parser's events: they come one by one, with no recursion and no depth
    limit, so the place is found however deep the file goes on."""
    open_: list[_Open] = []  # outermost first
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionEndEvent):
                open_.pop()
            elif isinstance(event, yaml.NodeEvent):
                path = _event_path(open_, event)
                mark = event.start_mark
                if path is not None and len(open_) > MAX_DEPTH and mark is not None:
                    return mark.line + 1, mark.column + 1, path
                if isinstance(event, yaml.CollectionStartEvent):
                    mapping = isinstance(event, yaml.MappingStartEvent)
                    open_.append(_Open(() if path is None else path, mapping))
    except yaml.YAMLError:
        return None
    return None


def _event_path(open_: list[_Open], event: yaml.NodeEvent) -> Path | None:
    """The path of the value `event` starts; None when it starts a mapping's key."""
    if not open_:
        return ()
    top = open_[-1]
    if not top.mapping:
        top.index += 1
        return (*top.path, top.index - 1)
    if top.key is None:
        top.key = str(event.value) if isinstance(event, yaml.ScalarEvent) else "?"
        return None
    key, top.key = top.key, None
    return (*top.path, key)


class _Builder:
    """Turns the composed YAML node tree into dicts/lists/scalars, recording marks."""

    def __init__(self, doc: Document, loader: SafeConstructor, env: Mapping[str, str]) -> None:
        self.doc, self.loader, self.env = doc, loader, env
        self.readable = listed_env(env)
        self.problems: list[Problem] = []
        self.count = 0

    def fail(self, node: yaml.Node, path: Path, message: str) -> None:
        m = node.start_mark
        self.problems.append(
            Problem(self.doc.file, m.line + 1, m.column + 1, dotted(path), message)
        )

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self.fail(
                    node,
                    path,
                    f"more than {MAX_NODES} values after expanding aliases "
                    "(an alias bomb?); write the flow without nested aliases",
                )
            return None
        if depth > MAX_DEPTH:
            self.fail(node, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        self.doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.CollectionNode) and node.tag not in _COLLECTION_TAGS:
            self.fail(node, path, f"cannot read this value: unknown tag {node.tag}")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            value = self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as e:  # e.g. an explicit bad !!float
            self.fail(node, path, f"cannot read this value: {getattr(e, 'problem', e)}")
            return None
        return self._env(node, path, value) if isinstance(value, str) else value

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        try:
            self.loader.flatten_mapping(node)  # merges `<<: *anchor` keys
        except yaml.YAMLError as e:
            self.fail(node, path, f"cannot merge: {getattr(e, 'problem', e)}")
            return out
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, path, "keys must be plain words, not lists or mappings")
                continue
            key = str(key_node.value)
            here = (*path, key)
            if key in seen:
                self.fail(
                    key_node, here, f"duplicate key '{key}' (first defined on line {seen[key]})"
                )
                continue
            seen[key] = key_node.start_mark.line + 1
            self.doc.key_marks[here] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = self.build(value_node, here, depth + 1)
        return out

    def _env(self, node: yaml.Node, path: Path, value: str) -> str:
        if "${" not in value:
            return value

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            refused = env_refusal(name, self.readable)
            if refused:
                self.fail(node, path, refused)
                return m.group(0)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.fail(
                node,
                path,
                f"environment variable {name} is not set (set it, or write ${{{name}:-default}})",
            )
            return m.group(0)

        return _ENV.sub(sub, value)
