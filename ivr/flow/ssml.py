"""Inline SSML in prompts: parsed and checked when a flow compiles, kept as a small tree.

A prompt may write `<break>`, `<say-as>`, `<prosody>` and `<emphasis>` in its text. The
markup is parsed here, before any template runs, so its shape is fixed by the flow's
author: a template's value (what a caller said, a backend's "AT&T") only ever fills a
text leaf, and the TwiML writer escapes it, so it can never become a tag. Pure.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# tag -> attribute -> the values it takes (a regex, anchored)
_NUMBER = r"[+-]?\d+(\.\d+)?"
ATTRIBUTES: dict[str, dict[str, str]] = {
    "break": {
        "time": rf"{_NUMBER}(ms|s)",
        "strength": "none|x-weak|weak|medium|strong|x-strong",
    },
    "say-as": {
        "interpret-as": "characters|spell-out|cardinal|number|ordinal|digits|fraction|unit|"
        "date|time|address|expletive|telephone",
        "format": r"[a-z]{1,8}",
    },
    "prosody": {
        "rate": rf"x-slow|slow|medium|fast|x-fast|default|{_NUMBER}%",
        "pitch": rf"x-low|low|medium|high|x-high|default|{_NUMBER}%",
        "volume": rf"silent|x-soft|soft|medium|loud|x-loud|default|{_NUMBER}dB",
    },
    "emphasis": {"level": "strong|moderate|reduced|none"},
}
EMPTY = frozenset({"break"})  # written <break .../>: no content
TEXT_ONLY = frozenset({"say-as"})  # text inside, no other tag
# a template's delimiters: tags are never looked for inside them (`{{ a < b }}`)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_TAG = re.compile(
    r"<(?P<close>/?)(?P<name>[A-Za-z][\w:.-]*)(?P<attrs>(?:\s+[\w:.-]+\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'))*)"
    r"\s*(?P<empty>/?)>"
)
_ATTR = re.compile(r"([\w:.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_TAG_START = re.compile(r"</?[A-Za-z]")


class SsmlError(ValueError):
    """Markup a prompt cannot have: unknown tag or attribute, bad value, unclosed tag."""


@dataclass(frozen=True, slots=True)
class Tag:
    """One SSML element: its name, attributes and content (text and elements)."""

    name: str
    attrs: tuple[tuple[str, str], ...] = ()
    children: tuple[Markup, ...] = ()


Markup = str | Tag


def has_markup(text: str) -> bool:
    """Whether `text` has anything that looks like a tag outside its templates."""
    return _TAG_START.search(_JINJA.sub("", text)) is not None


def parse(text: str) -> tuple[Markup, ...]:
    """`text` as a tree of text (templates left in it, entities decoded) and checked tags;
    SsmlError says what is wrong and how to write it."""
    stack: list[tuple[str, tuple[tuple[str, str], ...], list[Markup]]] = [("", (), [])]
    jinja = [m.span() for m in _JINJA.finditer(text)]
    at = 0
    for start in _starts(text, jinja):
        match = _TAG.match(text, start)
        if match is None:
            raise SsmlError(
                f"malformed tag at {text[start : start + 30]!r}: write e.g. "
                '<break time="500ms"/> or <emphasis>word</emphasis>'
            )
        _text(stack[-1][2], text[at:start])
        at = match.end()
        name = match["name"]
        if match["close"]:
            last = stack[-1][2][-1] if stack[-1][2] else None
            if name in EMPTY and isinstance(last, Tag) and last.name == name:
                continue  # <break ...></break>: the same as <break .../>
            if len(stack) == 1 or stack[-1][0] != name:
                opened = f"<{stack[-1][0]}> is open" if len(stack) > 1 else "nothing is open"
                raise SsmlError(f"</{name}> closes nothing: {opened}")
            _, attrs, children = stack.pop()
            stack[-1][2].append(Tag(name, attrs, tuple(children)))
            continue
        attrs = _attributes(name, match["attrs"])
        if name in TEXT_ONLY and len(stack) > 1 and stack[-1][0] in TEXT_ONLY:
            raise SsmlError(f"<{name}> cannot be inside <{stack[-1][0]}>")
        if match["empty"] or name in EMPTY:
            stack[-1][2].append(Tag(name, attrs))
        else:
            if stack[-1][0] in TEXT_ONLY:
                raise SsmlError(f"<{stack[-1][0]}> holds text only, not <{name}>")
            stack.append((name, attrs, []))
    _text(stack[-1][2], text[at:])
    if len(stack) > 1:
        raise SsmlError(f"<{stack[-1][0]}> is not closed: add </{stack[-1][0]}>")
    return tuple(stack[0][2])


def _starts(text: str, jinja: list[tuple[int, int]]) -> list[int]:
    """Where tags start, outside templates."""
    return [
        m.start()
        for m in _TAG_START.finditer(text)
        if not any(a <= m.start() < b for a, b in jinja)
    ]


def _text(out: list[Markup], text: str) -> None:
    if text:
        out.append(html.unescape(text))  # &amp; as written in SSML; a bare & stays itself


def _attributes(name: str, written: str) -> tuple[tuple[str, str], ...]:
    allowed = ATTRIBUTES.get(name)
    if allowed is None:
        raise SsmlError(
            f"unknown tag <{name}>: prompts may use {', '.join(f'<{t}>' for t in ATTRIBUTES)}"
        )
    attrs = []
    for key, double, single in _ATTR.findall(written):
        value = double if double else single
        if key not in allowed:
            raise SsmlError(f"<{name}> has no attribute {key!r} (it takes {', '.join(allowed)})")
        if "{{" in value or "{%" in value:
            raise SsmlError(f"<{name} {key}>: an attribute cannot be templated")
        if not re.fullmatch(allowed[key], value):
            raise SsmlError(f"<{name} {key}={value!r}>: expected {allowed[key].replace('|', ', ')}")
        attrs.append((key, value))
    return tuple(attrs)


def plain(markup: tuple[Markup, ...]) -> str:
    """The words of `markup` without its tags, single-spaced: what a screen shows and what
    a local TTS reads (espeak-ng would read tags it does not know aloud)."""
    return " ".join(_words(markup).split())


def _words(markup: tuple[Markup, ...]) -> str:
    out = []
    for item in markup:
        if isinstance(item, str):
            out.append(item)
        elif item.name == "break":
            out.append(" ")
        else:
            out.append(_words(item.children))
    return "".join(out)
