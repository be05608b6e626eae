"""Jinja2 in a sandbox: spoken text templates and conditions, compiled once per flow."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ivr.flow.expressions import compile_fast
from ivr.flow.model import Render


def currency(value: Any, symbol: str = "$") -> str:
    """12345.5 -> "$12,345.50"; text that is not a number is returned as it is."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    sign = "minus " if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.2f}"


def luhn(value: Any) -> bool:
    """Whether a digit string passes the Luhn check (card and account numbers)."""
    digits = str(value)
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def spell(value: Any) -> str:
    """ "1234" -> "1 2 3 4", so text-to-speech reads digits one by one."""
    return " ".join(str(value).replace(" ", ""))


def last(value: Any, n: int = 4) -> str:
    """The last n characters, e.g. the end of a card number."""
    return str(value)[-n:]


# immutable: an expression like `items.append(x)` would change the previous session's
# values and the flow's `vars`, which every call shares
ENV = ImmutableSandboxedEnvironment(
    undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=False
)
ENV.filters.update(currency=currency, luhn=luhn, spell=spell, last=last)
# filters that take just their arguments (no environment or context): safe to call directly
PLAIN_FILTERS = frozenset(
    name
    for name, fn in ENV.filters.items()
    if getattr(fn, "jinja_pass_arg", None) is None
    and not name.startswith(("attr", "map", "select", "reject"))
)

BUILTINS = frozenset(
    {
        "caller",
        "called",
        "call_id",
        "last_option",
        "open",
        "now",
        "flow_id",
        "language",
        "reason",
        "http_error",
        "range",
        "lipsum",
        "dict",
        "cycler",
        "joiner",
        "namespace",
    }
)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


@lru_cache(maxsize=8192)
def _parse(source: str, expression: bool) -> tuple[frozenset[str], str | None]:
    """(variables read, syntax error or None), from one parse and no code generation."""
    try:
        if expression:
            parser = Parser(ENV, source, state="variable")
            tree: nodes.Node = parser.parse_expression()
            if not parser.stream.eos:
                raise TemplateSyntaxError("unexpected text after the expression", 1)
        else:
            tree = ENV.parse(source)
    except TemplateSyntaxError as e:
        return frozenset(), str(e.message or e)
    loads: set[str] = set()
    stores: set[str] = set()
    for name in tree.find_all(nodes.Name):
        (stores if name.ctx in ("store", "param") else loads).add(name.name)
    return frozenset(loads - stores - {"loop"}), None


def names_used(source: str, expression: bool = False) -> frozenset[str]:
    """The variables a template (or expression) reads."""
    return _parse(source, expression)[0]


def check_syntax(source: str, expression: bool = False) -> str | None:
    """None if `source` parses, else Jinja2's message."""
    return _parse(source, expression)[1]


@lru_cache(maxsize=8192)
def compile_template(source: str) -> Render:
    """A callable rendering `source` with a context (compiled on first use)."""
    return _simple_template(source) or _lazy(lambda: _jinja_template(source))


@lru_cache(maxsize=8192)
def compile_expression(source: str) -> Render:
    """A callable evaluating the expression `source` (compiled on first use)."""
    try:
        parser = Parser(ENV, source, state="variable")
        fast = compile_fast(parser.parse_expression(), ENV, PLAIN_FILTERS)
    except TemplateSyntaxError:
        fast = None
    if fast is not None and parser.stream.eos:
        return _defined(fast)
    return _lazy(lambda: _jinja_expression(source))


def _defined(fn: Render) -> Render:
    """Conditions and `set` values see None, not Jinja's Undefined, for a missing value."""

    def evaluate(ctx: Mapping[str, Any]) -> Any:
        value = fn(ctx)
        return None if isinstance(value, Undefined) else value

    return evaluate


def constant(value: Any) -> Render:
    """A Render that returns `value` (for non-string values of `set`)."""
    return lambda ctx: value


def _lazy(build: Callable[[], Render]) -> Render:
    """Jinja's code generation costs ~0.5 ms a template: pay it for templates that run."""
    compiled: list[Render] = []

    def render(ctx: Mapping[str, Any]) -> Any:
        if not compiled:
            compiled.append(build())
        return compiled[0](ctx)

    return render


# Jinja's render() copies its globals into a new dict for every call; templates here
# get a context over one dict (`shared=True`) made of the globals and the variables.


def _jinja_template(source: str) -> Render:
    template = ENV.from_string(source)
    base, root, concat = dict(template.globals), template.root_render_func, ENV.concat

    def render(ctx: Mapping[str, Any]) -> str:
        return str(concat(root(template.new_context({**base, **ctx}, shared=True))))

    return render


def _jinja_expression(source: str) -> Render:
    template = ENV.compile_expression(source, undefined_to_none=False)._template
    base, root = dict(template.globals), template.root_render_func

    def evaluate(ctx: Mapping[str, Any]) -> Any:
        context = template.new_context({**base, **ctx}, shared=True)
        for _ in root(context):
            pass
        value = context.vars["result"]
        return None if isinstance(value, Undefined) else value

    return evaluate


_SIMPLE = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*\}\}")
_PLAIN = (str, int, float, bool, type(None))
_MISSING = object()


def _simple_template(source: str) -> Render | None:
    """Text with only `{{ name }}` / `{{ a.b }}` in it renders without Jinja, the same way:
    a missing value is empty, plain values print as str(); anything else goes to Jinja."""
    pieces = _SIMPLE.split(source)
    texts, paths = pieces[::2], [p.split(".") for p in pieces[1::2]]
    if any("{{" in t or "{%" in t or "{#" in t for t in texts):
        return None
    slow = _lazy(lambda: _jinja_template(source))

    def render(ctx: Mapping[str, Any]) -> str:
        out = [texts[0]]
        for path, text in zip(paths, texts[1:], strict=True):
            value = ctx.get(path[0], _MISSING)
            for attr in path[1:]:
                if type(value) is not dict:
                    break
                value = value.get(attr, _MISSING)
            else:
                if value is _MISSING or isinstance(value, _PLAIN):
                    out.append("" if value is _MISSING else str(value))
                    out.append(text)
                    continue
            if value is _MISSING:  # a missing parent: Jinja's chainable undefined says ""
                out.append("")
                out.append(text)
                continue
            return str(slow(ctx))
        return "".join(out)

    return render
