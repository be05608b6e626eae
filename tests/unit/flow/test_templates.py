"""The fast paths of templates.py against Jinja2 itself: same text, same values, or both raise.

A differential test (hypothesis) renders generated templates and evaluates generated
conditions over generated contexts both ways; example tables pin the cases found so far.
"""

from __future__ import annotations

import datetime
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import pass_context
from jinja2.sandbox import unsafe

from ivr.flow.templates import ENV, compile_expression, compile_template


class Record(dict):  # a dict subclass with an attribute that shadows one of its keys
    balance = "the attribute"


def is_open(name: Any) -> bool:
    return name == "support"


def first_of(items: Iterable[Any]) -> Any:
    return next(iter(items))  # StopIteration on an empty list: Jinja makes it undefined


# -- values and contexts --------------------------------------------------------------------

KEYS = ("a", "b", "balance", "tier", "keys", "items", "get", "values", "pop", "copy", "real")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-9, 9),  # small: `text * n * n * n` must stay small
    st.sampled_from([2**53 + 1, 2**63, -(2**64), 10**20]),
    st.floats(),  # nan, inf, -0.0, subnormals
    st.sampled_from(["", "a", "block", "79927398713", "12.5", "-3", "nan", "1 2"]),
    st.just(datetime.datetime(2026, 11, 30, 9, 30)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=2).map(tuple),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=2).map(Record),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=2).map(OrderedDict),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=2).map(Counter),
    ),
    max_leaves=6,
)
VARIABLES = ("x", "y", "acct", "last_option", "caller", "result")
ODD_NAMES = ("self", "loop", "super", "range", "dict", "lipsum", "cycler", "namespace", "if")
CONTEXTS = st.builds(
    lambda values, functions: {**values, **functions},
    st.dictionaries(st.sampled_from(VARIABLES + ODD_NAMES + ("true", "open")), VALUES, max_size=5),
    st.fixed_dictionaries({}, optional={"open": st.just(is_open), "first_of": st.just(first_of)}),
)

# -- expressions: a small grammar of the fast subset, and one that reaches past its edge -------

# (text * n * n ... must stay small, so no constant is much above 2)
CONSTANTS = ("true", "false", "none", "True", "None", "0", "2", "1.5", "0.0", "-0.0", "1_0")
CONSTANTS += ("0x2", "'block'", "''", '"a"', "'79927398713'", "[]", "()")
ODD_CONSTANTS = ("1e400", "18446744073709551616", "'nan'", "'inf'", "1" * 2200)
ATTRIBUTES = (*KEYS, "upper", "year", "0")
ODD_ATTRIBUTES = ("__class__", "_x", "mro", "if", "true")
FILTERS = ("currency", "currency('€')", "luhn", "spell", "last", "last(2)", "length", "int")
FILTERS += ("float", "string", "upper", "default('z')", "abs", "round", "e", "count")
ODD_FILTERS = ("first", "join(',')", "list", "sum", "tojson", "default(boolean=true)", "nope")
CALLEES = ("open", "first_of", "x.get", "acct.items", "x.upper", "y", "x.pop")
ODD_CALLEES = ("range", "namespace", "dict", "self", "open(name='x') and open")
BINARY = ("+", "-", "*", "/", "//", "%", "and", "or", "==", "!=", "<", "<=", ">", ">=", "in")
BINARY += ("not in",)
COMPARE = st.sampled_from(("==", "!=", "<", "<=", ">", ">=", "in"))


def _subset(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(ATTRIBUTES)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(inner, st.sampled_from(FILTERS)).map(lambda t: f"({t[0]} | {t[1]})"),
        st.tuples(st.sampled_from(CALLEES), st.lists(inner, max_size=2)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(inner, st.sampled_from(BINARY), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, COMPARE, inner, COMPARE, inner).map(lambda t: f"({' '.join(t)})"),
        st.tuples(st.sampled_from(("-", "+", "not ")), inner).map(lambda t: f"({t[0]}{t[1]})"),
        inner.map(lambda e: f"({e} ** -1)"),  # never growing: no 10 ** 10 ** 10
        st.lists(inner, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
        st.lists(inner, max_size=3).map(lambda items: f"({', '.join(items)},)"),
    )


def _past_the_edge(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        _subset(inner),
        st.tuples(inner, st.sampled_from(ODD_ATTRIBUTES)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(inner, st.sampled_from(ODD_FILTERS)).map(lambda t: f"({t[0]} | {t[1]})"),
        st.tuples(st.sampled_from(ODD_CALLEES), st.lists(inner, max_size=2)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        inner.map(lambda e: f"open(name={e})"),
        inner.map(lambda e: f"{e}[1:]"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} ~ {t[1]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        inner.map(lambda e: f"({e} is defined)"),
        st.tuples(inner, inner).map(lambda t: f"{{'k': {t[0]}}}[{t[1]}]"),
    )


SUBSET = st.recursive(st.sampled_from(VARIABLES + CONSTANTS), _subset, max_leaves=6)
PAST_THE_EDGE = st.recursive(
    st.sampled_from(VARIABLES + CONSTANTS + ODD_NAMES + ODD_CONSTANTS),
    _past_the_edge,
    max_leaves=6,
)
EXPRESSIONS = st.one_of(SUBSET, PAST_THE_EDGE)

# -- templates: text pieces and {{ expression }} pieces ----------------------------------------

TEXTS = ("", "Hi ", ".", " ", "\n", "\r\n", "\r", "\n\n", "-")
ODD_TEXTS = ("{", "}", "%", "#", "{# note #}", "{% raw %}{{ x }}{% endraw %}")
ODD_TEXTS += ("{% if x %}a{% endif %}",)
TEMPLATES = st.lists(
    st.one_of(
        st.sampled_from(TEXTS),
        EXPRESSIONS.map(lambda e: "{{ " + e + " }}"),
        EXPRESSIONS.map(lambda e: "{{- " + e + " -}}"),
        st.sampled_from(ODD_TEXTS),
    ),
    max_size=5,
).map("".join)

# -- comparing results ------------------------------------------------------------------------

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def outcome(run: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "value", run()
    except Exception as e:  # both paths must raise alike, not necessarily with one message
        return "raises", type(e)


def same(a: Any, b: Any) -> bool:
    """Equal values of one type, NaN equal to NaN; objects without an equality of their own
    (a method, the template itself) compared by repr without memory addresses, since each
    render makes some afresh (`[1].copy` is a method of a new list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b) or _ADDRESS.sub("", repr(a)) == _ADDRESS.sub("", repr(b))


def assert_same(ours: tuple[str, Any], jinja: tuple[str, Any]) -> None:
    assert ours[0] == jinja[0] and same(ours[1], jinja[1]), f"ours {ours!r}, Jinja {jinja!r}"


def render_both(source: str, ctx: dict[str, Any]) -> None:
    assert_same(
        outcome(lambda: compile_template(source)(ctx)),
        outcome(lambda: ENV.from_string(source).render(ctx)),
    )


def evaluate_both(source: str, ctx: dict[str, Any]) -> None:
    assert_same(
        outcome(lambda: compile_expression(source)(ctx)),
        outcome(lambda: ENV.compile_expression(source)(ctx)),  # Undefined -> None, like ours
    )


# Jinja compiles `true[0]` to Python source that warns about it; so be it
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")

DIFFERENTIAL = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI fails only on a real change
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@DIFFERENTIAL
@given(source=TEMPLATES, ctx=CONTEXTS)
def test_templates_render_as_jinja_does(source: str, ctx: dict[str, Any]) -> None:
    render_both(source, ctx)


@DIFFERENTIAL
@given(source=EXPRESSIONS, ctx=CONTEXTS)
def test_expressions_evaluate_as_jinja_does(source: str, ctx: dict[str, Any]) -> None:
    evaluate_both(source, ctx)


# -- the disagreements found so far -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "ctx"),
    [
        ("{{ d.keys }}", {"d": {"keys": "k"}}),  # Jinja tries attributes before items
        ("{{ d.items }}", {"d": {}}),
        ("{{ d.pop }}", {"d": {"pop": "p"}}),  # unsafe (mutating) method: empty in Jinja
        ("{{ d.a.get }}", {"d": {"a": {"get": 1}}}),
        ("{{ r.balance }}", {"r": Record(balance=1)}),  # a dict subclass's attribute
        ("{{ range }}", {}),  # a Jinja global
        ("{{ dict }}", {}),
        ("{{ lipsum }}", {}),
        ("{{ true }}", {"true": "t"}),  # literals, not names
        ("{{ none }}", {}),
        ("{{ False }}", {"False": "f"}),
        ("{{ self }}", {"self": "s"}),  # always the template
        ("{{ not }}", {"not": "n"}),  # a keyword: a syntax error
        ("{{{ x }}", {"x": 1}),  # `{ x }}` is a dict literal in Jinja: a syntax error
        ("Hello\n", {}),  # Jinja drops one trailing newline
        ("a\r\nb {{ x }}\r", {"x": 1}),  # and writes \r\n and \r as \n
        ("{{ x }}\n\n", {"x": 1}),
        ("{{ x }}", {"x": 10**5000}),  # str() refuses: both raise
    ],
)
def test_fast_template_renders_as_jinja_does(source: str, ctx: dict[str, Any]) -> None:
    render_both(source, ctx)


@pass_context
def with_context(context: Any, name: str) -> str:
    return f"{name} for {context.get('caller')}"


BIG = "1" * 2200  # a product past 4,300 digits, which repr() refuses


@pytest.mark.parametrize(
    ("source", "ctx"),
    [
        ("(1, 2)", {}),  # a tuple, not a list
        ("(x,)", {"x": 1}),
        ("1e400", {}),  # Jinja writes folded constants into Python source: inf is no name there
        ("-1e400", {}),
        ("[1e400]", {}),
        ("'nan' | float", {}),
        ("1e400 > 0", {}),  # folded to True: fine
        (f"{BIG} * {BIG}", {}),
        ("self", {"self": 1}),
        ("range", {}),
        ("-range", {}),
        ("open('x')", {"open": None}),  # TypeError, not UndefinedError
        ("first_of([])", {"first_of": first_of}),  # StopIteration: undefined, so None
        ("open('x')", {"open": with_context}),  # Jinja passes the context
        ("open('x')", {"open": unsafe(lambda name: True)}),  # the sandbox refuses it
        ("x.keys", {"x": {"keys": 1}}),
        ("r.balance", {"r": Record(balance=1)}),
    ],
)
def test_fast_expression_evaluates_as_jinja_does(source: str, ctx: dict[str, Any]) -> None:
    evaluate_both(source, ctx)
