"""Compiling one prompt: text, parts, `{say, text, audio}`, a map by language; inline SSML.

The grammar (docs/flow-language.md, "Prompts"):
- `"text"`: spoken text, Jinja2 templating and inline SSML allowed;
- `[part, ...]`: parts said in order, each text, `{say: text}` or `{audio: file.wav}`;
- a part may add `text:`, what a text channel shows instead of what is spoken;
- `{en-US: prompt, ru-RU: prompt}`: the prompt in each of the flow's `languages`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from ivr.flow.loader import Path
from ivr.flow.model import Audio, PromptTemplate, Render, Text
from ivr.flow.spoken import locale_of
from ivr.flow.ssml import Markup, SsmlError, Tag, has_markup, parse, plain
from ivr.flow.templates import check_syntax, is_template, names_used

PART_KEYS = frozenset({"say", "audio", "text"})


class Compiling(Protocol):
    """What of the flow compiler a prompt needs (`ivr.flow.compiler._Compiler`)."""

    language: str  # the language templates speak values in, now
    languages: tuple[str, ...]  # the flow's, its own first

    def template(self, path: Path, source: str, spoken: bool = True) -> Render: ...

    def written(self, source: str) -> Render:
        """`source` (checked already by `template`) rendered for a text channel."""

    def error(self, path: Path, message: str, severity: str = "error") -> None: ...


def is_language_map(spec: Any) -> bool:
    return isinstance(spec, dict) and bool(spec) and not spec.keys() & PART_KEYS


def compile_prompt(c: Compiling, path: Path, spec: Any) -> PromptTemplate:
    """The prompt `spec` written at `path`; problems are reported to `c`."""
    if is_language_map(spec):
        return _by_language(c, path, spec)
    return _one(c, path, spec)


def _by_language(c: Compiling, path: Path, spec: Mapping[str, Any]) -> PromptTemplate:
    own = c.languages[0]
    for tag in spec:
        if tag not in c.languages:
            c.error(
                (*path, tag),
                f"{tag!r} is not one of the flow's languages ({', '.join(c.languages)}): "
                "add it to `languages`, or fix the tag",
            )
    if own not in spec:
        c.error(path, f"no {own} version: every prompt is needed in the flow's own language")
    for tag in c.languages:
        if tag not in spec and own in spec:
            c.error(path, f"no {tag} version: {tag} callers hear it in {own}", "warning")
    saved, variants = c.language, []
    for tag, item in spec.items():
        if is_language_map(item):
            c.error((*path, tag), "a language's prompt cannot be another map by language")
            continue
        c.language = tag if has_locale(tag) else saved  # its values spoken the language's way
        try:
            variants.append((tag, _one(c, (*path, tag), item)))
        finally:
            c.language = saved
    found = dict(variants)
    main = found.get(own) or (variants[0][1] if variants else PromptTemplate(()))
    others = tuple((tag, p) for tag, p in variants if tag != own and tag in c.languages)
    return replace(main, languages=others)


def has_locale(tag: str) -> bool:
    """Whether Babel knows `tag` (its values can be spoken its way)."""
    try:
        locale_of(tag)
    except ValueError:
        return False
    return True


_SPELLS = re.compile(r"\|\s*(spell|digits)\b")  # filters that read a value out, digit by digit


def _one(c: Compiling, path: Path, spec: Any) -> PromptTemplate:
    items = spec if isinstance(spec, list) else [spec]
    pieces: list[Audio | Render] = []
    static: list[Text | Audio] = []
    # what a text channel shows, part by part: a part's `text:`, else its spoken words
    shown: list[tuple[Render, Text, bool]] = []  # (piece, as written, templated)
    has_shown, dynamic, speaks = False, False, set[str]()
    for i, item in enumerate(items):
        here = (*path, i) if isinstance(spec, list) else path
        if isinstance(item, dict) and "text" in item:
            has_shown, written = True, item["text"]
            text_piece = c.template((*here, "text"), written)  # no SSML: shown as it is
            shown.append((text_piece, Text(written), is_template(written)))
        if isinstance(item, dict) and "audio" in item:
            pieces.append(Audio(item["audio"]))
            static.append(Audio(item["audio"]))
            continue
        text = item["say"] if isinstance(item, dict) else item
        if is_template(text):
            dynamic = True
            speaks |= names_used(text) if not check_syntax(text) else set()
        if has_markup(text):
            piece, part = _markup(c, here, text)
        else:
            piece, part = c.template(here, text), Text(text)
        pieces.append(piece)
        static.append(part)
        if not (isinstance(item, dict) and "text" in item):
            if _SPELLS.search(text) and not has_markup(text):  # digits read one by one
                has_shown, piece = True, c.written(text)
            shown.append((piece, part, is_template(text)))
    source = tuple(static)
    return PromptTemplate(
        None if dynamic else source,
        tuple(pieces),
        frozenset(speaks),
        source,
        shown=_shown(shown) if has_shown else None,
    )


def _shown(shown: list[tuple[Render, Text, bool]]) -> PromptTemplate:
    """The text-channel version: static when no part of it is templated."""
    written = tuple(part for _, part, _ in shown)
    dynamic = any(templated for _, _, templated in shown)
    return PromptTemplate(
        None if dynamic else written, tuple(p for p, _, _ in shown), source=written
    )


def _markup(c: Compiling, path: Path, text: str) -> tuple[Render, Text]:
    """Text with inline SSML: its tree is checked now; its templates fill text leaves only."""
    try:
        tree = parse(text)
    except SsmlError as e:
        c.error(path, f"SSML: {e}")
        tree = (text,)
    render = _compiled(tree, lambda leaf: c.template(path, leaf))
    if not any(is_template(leaf) for leaf in _leaves(tree)):
        part = Text(plain(tree), tree)
        return (lambda ctx: part), part
    return render, Text(plain(tree), tree)


def _leaves(tree: tuple[Markup, ...]) -> list[str]:
    out: list[str] = []
    for item in tree:
        out.extend([item] if isinstance(item, str) else _leaves(item.children))
    return out


Fill = Callable[[Mapping[str, Any]], tuple[Markup, ...]]


def _compiled(tree: tuple[Markup, ...], leaf: Callable[[str], Render]) -> Render:
    whole = _fill(tree, leaf)

    def render(ctx: Mapping[str, Any]) -> Text:
        filled = whole(ctx)
        return Text(plain(filled), filled)

    return render


def _fill(tree: tuple[Markup, ...], leaf: Callable[[str], Render]) -> Fill:
    """A function giving `tree` with its templates rendered: each value is text, whatever
    it holds (`<`, `&`), so the tags stay the ones written."""
    makers: list[Callable[[Mapping[str, Any]], Markup]] = []
    for item in tree:
        if isinstance(item, Tag):
            makers.append(_tag(item, _fill(item.children, leaf)))
        elif is_template(item):
            makers.append(_value(leaf(item)))
        else:
            makers.append(_constant(item))
    return lambda ctx: tuple(make(ctx) for make in makers)


def _tag(tag: Tag, children: Fill) -> Callable[[Mapping[str, Any]], Markup]:
    return lambda ctx: Tag(tag.name, tag.attrs, children(ctx))


def _value(render: Render) -> Callable[[Mapping[str, Any]], Markup]:
    return lambda ctx: str(render(ctx))


def _constant(text: str) -> Callable[[Mapping[str, Any]], Markup]:
    return lambda ctx: text
