"""Jinja2 in a sandbox: spoken text templates and conditions, compiled once per flow."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, meta
from jinja2.sandbox import SandboxedEnvironment

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


ENV = SandboxedEnvironment(
    undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=False
)
ENV.filters.update(currency=currency, luhn=luhn, spell=spell, last=last)

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


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Render:
    """A callable rendering `source` with a context; raises jinja2.TemplateSyntaxError."""
    template = ENV.from_string(source)
    return lambda ctx: template.render(ctx)


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Render:
    """A callable evaluating the expression `source`; raises jinja2.TemplateSyntaxError."""
    expr = ENV.compile_expression(source, undefined_to_none=False)

    def evaluate(ctx: Mapping[str, Any]) -> Any:
        value = expr(ctx)
        return None if isinstance(value, ChainableUndefined) else value

    return evaluate


@lru_cache(maxsize=4096)
def names_used(source: str, expression: bool = False) -> frozenset[str]:
    """The variables a template (or expression) reads."""
    text = "{{ (" + source + ") }}" if expression else source
    return frozenset(meta.find_undeclared_variables(ENV.parse(text)))


def constant(value: Any) -> Render:
    """A Render that returns `value` (for non-string values of `set`)."""
    return lambda ctx: value


def check_syntax(source: str, expression: bool = False) -> str | None:
    """None if `source` compiles, else Jinja2's message."""
    try:
        (compile_expression if expression else compile_template)(source)
        return None
    except Exception as e:  # jinja2 raises several types; all mean "does not compile"
        return str(getattr(e, "message", None) or e)
