"""Fuzzing the flow loader and compiler (issue 14): mutated example flows and random
values where the flow language expects others never end in a traceback, nor in the
catch-all that keeps a compiler bug to its file: always a located error or a flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.flow import check_flow

FLOWS = sorted((Path(__file__).parents[3] / "flows").glob("*.yaml"))
TEXTS = [p.read_text() for p in FLOWS]
BUG = "please report this as a bug"
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["{{ x }}", "{% for %}", "${IVR_FLOW_X}", "main", "+15550100", "0", "*"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def checked(tmp: Path, text: str) -> None:
    path = tmp / "f.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    flow, problems = check_flow(path, env={})
    assert not any(BUG in p.message for p in problems), problems
    assert flow is not None or problems
    for p in problems:
        assert p.line >= 1 and p.col >= 1, p


def _paths(data: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a YAML document's data, as keys and indexes from the top."""
    found = [here]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*here, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*here, i))
    return found


def _replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: _replaced(data[head], rest, value)}
    return [_replaced(v, rest, value) if i == head else v for i, v in enumerate(data)]


@SETTINGS
@given(st.data())
def test_a_value_replaced_anywhere(tmp_path: Path, data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(TEXTS))
    doc = yaml.safe_load(text)
    where = data.draw(st.sampled_from(_paths(doc)))
    mutated = _replaced(doc, where, data.draw(values))
    checked(tmp_path, yaml.safe_dump(mutated, allow_unicode=True))


@SETTINGS
@given(st.data())
def test_text_cut_and_spliced(tmp_path: Path, data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(TEXTS))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 20))
        insert = data.draw(
            st.sampled_from(
                [
                    "",
                    ":",
                    "- ",
                    "{",
                    "}",
                    "[",
                    "\n",
                    "  ",
                    "&a",
                    "*a",
                    "!!python/object:os.system",
                    "{{",
                    "'",
                    '"',
                    "\t",
                    "\x00",
                    "#",
                ]
            )
        )
        text = text[:at] + insert + text[at + cut :]
    checked(tmp_path, text)


@SETTINGS
@given(st.text(max_size=300))
def test_any_text(tmp_path: Path, text: str) -> None:
    checked(tmp_path, text)
