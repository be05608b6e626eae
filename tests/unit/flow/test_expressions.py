"""What compile_fast takes on and what it leaves to Jinja2.

That what it takes on means what Jinja means is the differential test's job
(test_templates.py); these tables keep the common conditions on the fast path.
"""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import ChainableUndefined
from jinja2.parser import Parser

from ivr.flow.expressions import compile_fast
from ivr.flow.templates import ENV


def fast(source: str) -> Any:
    return compile_fast(Parser(ENV, source, state="variable").parse_expression(), ENV)


@pytest.mark.parametrize(
    ("source", "ctx", "value"),
    [
        ("last_option == 'block'", {"last_option": "block"}, True),
        ("tries > 2", {"tries": 3}, True),
        ("acct.tier == 'gold' and not vip", {"acct": {"tier": "gold"}, "vip": False}, True),
        ("acct.balance", {"acct": {}}, ChainableUndefined()),  # ENV's undefined
        ("value | luhn", {"value": "79927398713"}, True),
        ("acct.balance | currency", {"acct": {"balance": 12.5}}, "$12.50"),
        ("open('support')", {"open": lambda name: name == "support"}, True),
        ("tries + 1", {"tries": 1}, 2),
        ("-tries ** 2 // 3 % 2", {"tries": 2}, 1),
        ("last_option in ['block', 'balance']", {"last_option": "block"}, True),
        ("1 < tries < 3", {"tries": 2}, True),
        ("items[0]", {"items": ["a"]}, "a"),
        ("(a, -b)", {"a": 1, "b": 2}, (1, -2)),
        ("'nan' == 'na' ~ 'n'", {}, True),  # folded to a constant, as Jinja does
    ],
)
def test_common_conditions_compile_to_closures(
    source: str, ctx: dict[str, Any], value: Any
) -> None:
    fn = fast(source)
    assert fn is not None and fn(ctx) == value


@pytest.mark.parametrize(
    "source",
    [
        "self",  # always the template, whatever the context holds
        "range",  # Jinja's globals show when the context lacks the name
        "range(3)",
        "1e400",  # Jinja writes folded constants into Python source: inf is no name there
        "[x, 1e400]",
        "'inf' | float",
        "x ~ y",
        "x is defined",
        "x if y else z",
        "x[1:]",  # Jinja slices without the sandbox
        "{'a': x}",
        "x | join(',')",  # a filter that takes Jinja's context or environment
        "x | default(boolean=true)",
        "open(name='support')",
    ],
)
def test_the_rest_goes_to_jinja(source: str) -> None:
    assert fast(source) is None
