"""Values spoken in the flow's language: the filters of ivr.flow.spoken, through templates."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from babel import Locale
from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.parser import Parser

from ivr.errors import FlowError
from ivr.flow import parse_and_compile
from ivr.flow.compiler import compile_flow
from ivr.flow.expressions import compile_fast
from ivr.flow.loader import parse_flow
from ivr.flow.spoken import default_currency, money, spoken_filters
from ivr.flow.templates import compile_template, environment

NOON = datetime.datetime(2026, 11, 30, 15, 30, tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize(
    ("language", "source", "ctx", "said"),
    [
        # en-US as ever: the conversation tests of the example flows depend on it
        ("en-US", "{{ x | currency }}", {"x": 1234.5}, "$1,234.50"),
        ("en-US", "{{ x | currency }}", {"x": -45.9}, "minus $45.90"),
        ("en-US", "{{ x | currency }}", {"x": "12"}, "$12.00"),
        ("en-US", "{{ x | currency('€') }}", {"x": 12.5}, "€12.50"),
        ("en-US", "{{ x | currency('KRW') }}", {"x": 12345}, "₩12,345"),
        ("en-US", "{{ x | currency }}", {"x": "n/a"}, "n/a"),
        ("en-US", "{{ x | currency }}", {"x": "nan"}, "nan"),
        ("en-US", "{{ x | currency }}", {"x": True}, "True"),
        # ko-KR: won after the number, as espeak-ng -v ko reads it (not "₩12,345")
        ("ko-KR", "{{ x | currency }}", {"x": 12345}, "12,345원"),
        ("ko-KR", "{{ x | currency }}", {"x": 1234567}, "1,234,567원"),
        ("ko-KR", "{{ x | currency }}", {"x": 12345.5}, "12,346원"),  # won has no decimals
        ("ko-KR", "{{ x | currency }}", {"x": -5000}, "마이너스 5,000원"),
        ("ko-KR", "{{ x | currency }}", {"x": -0.2}, "0원"),  # rounds to zero: no minus
        ("ko-KR", "{{ x | currency('USD') }}", {"x": 12.5}, "12.50달러"),
        ("ko-KR", "잔액은 {{ x | currency }}입니다.", {"x": 12345}, "잔액은 12,345원입니다."),
        ("ko", "{{ x | currency }}", {"x": 100}, "100원"),  # a bare language: its country's
        ("de-DE", "{{ x | currency }}", {"x": 1234.5}, "1.234,50\xa0€"),
        # numbers
        ("en-US", "{{ x | number }}", {"x": 1234567.891}, "1,234,567.891"),
        ("en-US", "{{ x | number(2) }}", {"x": 3}, "3.00"),
        ("en-US", "{{ x | number }}", {"x": -3}, "minus 3"),
        ("ko-KR", "{{ x | number }}", {"x": -1234}, "마이너스 1,234"),
        ("de-DE", "{{ x | number }}", {"x": 1234.5}, "1.234,5"),
        # dates and times: ISO text, dates, Unix times (UTC unless a zone is named)
        ("en-US", "{{ x | date }}", {"x": "2026-11-30"}, "November 30, 2026"),
        ("ko-KR", "{{ x | date }}", {"x": "2026-11-30"}, "2026년 11월 30일"),
        (
            "ko-KR",
            "{{ x | date('full') }}",
            {"x": datetime.date(2026, 11, 30)},
            "2026년 11월 30일 월요일",
        ),
        ("en-US", "{{ x | date }}", {"x": "someday"}, "someday"),
        ("en-US", "{{ x | time }}", {"x": NOON}, "3:30\u202fPM"),
        ("ko-KR", "{{ x | time }}", {"x": NOON}, "오후 3:30"),
        ("ko-KR", "{{ x | time('short', 'Asia/Seoul') }}", {"x": NOON}, "오전 12:30"),
        ("ko-KR", "{{ x | date('long', 'Asia/Seoul') }}", {"x": NOON}, "2026년 12월 1일"),
        # digits one by one, Korean zero as read in phone numbers
        ("en-US", "{{ x | digits }}", {"x": "010-1234"}, "0 1 0 1 2 3 4"),
        ("ko-KR", "{{ x | digits }}", {"x": "010-1234"}, "공 1 공 1 2 3 4"),
        ("en-US", "{{ x | digits(4) }}", {"x": 12345678}, "1 2 3 4, 5 6 7 8"),
        ("en-US", "{{ x | digits }}", {"x": "none"}, ""),
        ("en-US", "{{ x | spell }}", {"x": "1234"}, "1 2 3 4"),
    ],
)
def test_values_are_spoken_in_the_language(
    language: str, source: str, ctx: dict[str, Any], said: str
) -> None:
    assert compile_template(source, language)(ctx) == said


@pytest.mark.parametrize("name", ["currency", "number", "date", "time", "digits"])
def test_spoken_filters_stay_on_the_fast_path(name: str) -> None:
    """Bound to the flow's language, they take no context: closures, not Jinja's renders."""
    env = environment("ko-KR")
    tree = Parser(env, f"x | {name}", state="variable").parse_expression()
    assert compile_fast(tree, env) is not None


@pytest.mark.parametrize(
    ("source", "ctx"),
    [
        ("{{ x | currency }} {{ y | date }}", {"x": 12345, "y": "2026-11-30"}),
        ("{% if x %}{{ x | currency }}{% endif %}", {"x": -5}),  # Jinja's own path
        ("{{ 1234 | currency }}", {}),  # folded while compiling: with the flow's filters
    ],
)
def test_fast_and_jinja_paths_agree_in_korean(source: str, ctx: dict[str, Any]) -> None:
    assert compile_template(source, "ko-KR")(ctx) == environment("ko-KR").from_string(
        source
    ).render(ctx)


FLOW = """
flow: k
language: {language}
{extra}
start: a
nodes:
  a:
    say: "잔액은 {{{{ b | currency }}}}입니다."
    next: e
  e: {{end: {{}}}}
"""


def said(language: str, extra: str = "") -> str:
    flow = parse_and_compile(FLOW.format(language=language, extra=extra))
    (part,) = flow.nodes["a"].spec.render({"b": 12345})
    return str(part.text)


def test_a_flow_speaks_amounts_in_its_language_and_currency() -> None:
    assert said("ko-KR") == "잔액은 12,345원입니다."
    assert said("en-US") == "잔액은 $12,345.00입니다."
    assert said("en-US", "currency: KRW") == "잔액은 ₩12,345입니다."  # the flow's override
    assert said("ko-KR", "currency: USD") == "잔액은 12,345.00달러입니다."


def test_an_unknown_currency_is_a_located_error() -> None:
    with pytest.raises(FlowError) as e:
        said("ko-KR", "currency: ABC")
    assert "<flow>:4:" in str(e.value) and "unknown currency 'ABC'" in str(e.value)


def test_a_language_without_locale_data_warns_and_speaks_as_en_us() -> None:
    doc = parse_flow(FLOW.format(language="xx-YY", extra=""), "f.yaml")
    flow, problems = compile_flow(doc)
    (problem,) = [p for p in problems if p.where == "language"]
    assert problem.severity == "warning" and "no locale data for 'xx-YY'" in problem.message
    assert flow.nodes["a"].spec.render({"b": 1})[0].text == "잔액은 $1.00입니다."


@pytest.mark.parametrize(
    ("language", "currency"), [("ko-KR", "KRW"), ("en-US", "USD"), ("ko", "KRW"), ("de-AT", "EUR")]
)
def test_default_currency_is_the_countrys(language: str, currency: str) -> None:
    assert default_currency(language) == currency


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="no locale data"):
        spoken_filters("xx-YY")


LOCALES = ("en_US", "ko_KR", "de_DE", "fr_FR", "ja_JP", "es_ES", "pt_BR", "ar_EG", "hi_IN", "de_CH")
CURRENCIES = ("USD", "KRW", "EUR", "JPY", "BHD", "CHF", "INR")


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(
    language=st.sampled_from(LOCALES),
    code=st.sampled_from(CURRENCIES),
    pattern=st.sampled_from((None, "#,##0.00")),
    amount=st.one_of(
        st.decimals(min_value=0, max_value=10**15, places=4, allow_nan=False),
        st.floats(min_value=0, max_value=1e12).map(lambda f: Decimal(str(f))),
        st.sampled_from([Decimal("0.005"), Decimal("0.015"), Decimal("2.5"), Decimal("1E+3")]),
    ),
)
def test_amounts_are_written_as_babel_writes_them(
    language: str, code: str, pattern: str | None, amount: Decimal
) -> None:
    """`money`'s shortcut (Python's format()) against Babel's format_currency."""
    locale = Locale.parse(language)
    expected = format_currency(amount, code, format=pattern, locale=locale)
    assert money(locale, code, pattern)(amount) == expected
