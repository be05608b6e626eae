"""What a template may cost (ivr.flow.limits): each attack that once froze every call is
refused at compile time when its operands are constants, else at run time before its
work is done; the call fails the flow's way, and ordinary templates are untouched."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted
from ivr.flow.limits import MAX_ITERATIONS, MAX_SIZE, TemplateCost
from ivr.flow.templates import check_syntax, compile_expression, compile_template
from tests.unit.flow.test_compiler import compile_text, errors

# each of these ran for seconds to minutes in the sandbox (issue 14)
CONSTANT_ATTACKS = [
    ("{{ 10**100000000 }}", "10 ** 100000000 is too big a number"),
    ("{{ 'a' * 10**9 }}", "a value of 1000000000 characters or items"),
    ("{{ 'a' | center(10**9) }}", "a value of 1000000000 characters or items"),
    ("{{ 'a' | indent(10**9) }}", "a value of 1000000000 characters or items"),
    ("{{ 'a'.ljust(10**9) }}", "a value of 1000000001 characters or items"),
    ("{{ '%0999999999d' % 1 }}", "a % format width of 999999999"),
    ("{{ '{:>999999999}'.format(1) }}", "a format width of 999999999"),
    ("{% for i in range(10**8) %}{% endfor %}", "range of 100000000 numbers"),
]

# values the template cannot know until the call: refused when they arrive
RUNTIME_ATTACKS: list[tuple[str, dict[str, Any]]] = [
    ("{{ x * n }}", {"x": "a", "n": 10**9}),
    ("{{ [x] * n }}", {"x": 1, "n": 10**9}),
    ("{{ b ** e }}", {"b": 10, "e": 10**8}),
    ("{{ x | center(n) }}", {"x": "a", "n": 10**9}),
    ("{{ x | indent(n) }}", {"x": "a", "n": 10**9}),
    ("{{ x.rjust(n) }}", {"x": "a", "n": 10**9}),
    ("{{ x['zfill'](n) }}", {"x": "a", "n": 10**9}),
    ("{{ x.expandtabs(n) }}", {"x": "a\tb", "n": 10**8}),
    ("{{ x | replace('a', y) | replace('a', y) }}", {"x": "aa", "y": "a" * 60_000}),
    ("{{ x.replace('a', y) }}", {"x": "a" * 100, "y": "b" * 1000}),
    ("{{ [1] | batch(n, 0) | list }}", {"n": 10**9}),
    ("{{ [1] | slice(n) | list }}", {"n": 10**9}),
    ("{{ f % 1 }}", {"f": "%0999999999d"}),
    ("{{ f | format(1) }}", {"f": "%0999999999d"}),
    ("{{ f.format(1) }}", {"f": "{:>999999999}"}),
    ("{% for i in range(n) %}{% endfor %}", {"n": 10**8}),
    # nested loops multiply: 1000 x 1000 steps
    ("{% for i in range(n) %}{% for j in range(n) %}.{% endfor %}{% endfor %}", {"n": 1000}),
    ("{% for i in xs %}{% for j in xs %}{% endfor %}{% endfor %}", {"xs": list(range(500))}),
    # doubling through a chain of sets
    ("{% set b = a ~ a %}{% set c = b ~ b %}{{ c }}", {"a": "a" * 20_000}),
    ("{% set b = a + a %}{% set c = b + b %}{{ c }}", {"a": "a" * 20_000}),
    # a render's output
    ("{% for x in xs %}{{ y }}{% endfor %}", {"xs": list(range(100)), "y": "a" * 1000}),
]


@pytest.mark.parametrize(("source", "why"), CONSTANT_ATTACKS)
def test_a_constant_over_a_limit_is_a_compile_error(source: str, why: str) -> None:
    found = check_syntax(source)
    assert found is not None and found.startswith(f"too costly: {why}")


def test_ivr_validate_locates_it() -> None:
    text = 'flow: t\nstart: a\nnodes:\n  a: {say: "{{ 9 ** 99999999 }}", next: b}\n  b: {end: {}}\n'
    assert errors(text) == [
        "f.yaml:4:12: nodes.a.say: template error: too costly: 9 ** 99999999 is too big a number"
    ]


@pytest.mark.parametrize(("source", "ctx"), RUNTIME_ATTACKS)
def test_a_value_over_a_limit_is_refused_at_run_time(source: str, ctx: dict[str, Any]) -> None:
    assert check_syntax(source) is None  # nothing to see before the values come
    with pytest.raises(TemplateCost):
        compile_template(source)(ctx)


@pytest.mark.parametrize(
    "source",
    ["{{ x * n }}", "{{ b ** e }}", "x * n == ''", "(x | center(n)) == ''"],
)
def test_conditions_are_bounded_too(source: str) -> None:
    ctx = {"x": "a", "n": 10**9, "b": 7, "e": 10**9}
    render = compile_expression(source.strip("{} ")) if "{{" in source else None
    with pytest.raises(TemplateCost):
        (render or compile_expression(source))(ctx)


def test_the_engines_that_grow_values_are_gone() -> None:
    for name in ("lipsum", "namespace", "cycler", "joiner"):
        with pytest.raises(Exception, match="undefined"):
            compile_template(f"{{{{ {name}() }}}}")({})


@pytest.mark.parametrize(
    ("source", "ctx", "out"),
    [
        ("Hello {{ name }}, {{ 2 * 3 }} {{ 'ab' ~ 'c' }}", {"name": "Bo"}, "Hello Bo, 6 abc"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", {}, "012"),
        ("{{ '%.2f' % x }} {{ '{:>5}'.format(1) }}", {"x": 3.14159}, "3.14     1"),
        ("{{ x | center(9) }}|{{ '-' * 3 }}|{{ 2 ** 10 }}", {"x": "mid"}, "   mid   |---|1024"),
        ("{{ tries + 1 }} {{ 'a' + 'b' }}", {"tries": 1}, "2 ab"),
        ("{{ ('a' * (limit - 1)) | length }}", {"limit": MAX_SIZE}, str(MAX_SIZE - 1)),
    ],
)
def test_ordinary_templates_are_untouched(source: str, ctx: dict[str, Any], out: str) -> None:
    assert compile_template(source)(ctx) == out


def test_the_loop_budget_is_per_render() -> None:
    loop = compile_template("{% for i in range(n) %}.{% endfor %}")
    for _ in range(3):  # each render its own MAX_ITERATIONS
        assert loop({"n": 1000}) == "." * 1000
    nested = compile_template(
        "{% for i in range(100) %}{% for j in range(n) %}{% endfor %}{% endfor %}"
    )
    nested({"n": MAX_ITERATIONS // 100 - 1})
    with pytest.raises(TemplateCost, match="loop steps"):
        nested({"n": MAX_ITERATIONS // 100})


def test_a_call_whose_template_goes_over_fails_the_flows_way() -> None:
    flow, _ = compile_text(
        "flow: t\nstart: a\ndefaults: {apology: Sorry.}\nvars: {n: 1000000000}\n"
        "nodes:\n  a: {say: \"{{ 'a' * n }}\", next: b}\n  b: {end: {}}\n"
    )
    session, actions = step(flow, new_session(flow, "CA1"), CallStarted("+1", "+2", at=1.0))
    assert session.outcome == "failed"
    assert [a for a in actions if isinstance(a, act.Prompt)][-1].parts[0].text == "Sorry."  # type: ignore[union-attr]
