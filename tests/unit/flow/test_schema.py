"""Stage 2, the schema: kinds agree with the code, every property is documented, and a
schema violation reads as one located sentence that says what would be right."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.engine.engine import _ENTER
from ivr.errors import Problem
from ivr.flow.compiler import _KINDS
from ivr.flow.loader import parse_flow
from ivr.flow.schema import NODE_KINDS, check_schema, flow_schema

COMMON = {"next", "on_error", "resolves", "description", "channels", "on_text"}  # any node


def check(text: str) -> list[Problem]:
    return check_schema(parse_flow(text, "f.yaml", {}))


def messages(text: str) -> list[str]:
    return [str(p) for p in check(text)]


def test_node_kinds_agree_everywhere():
    node = flow_schema()["$defs"]["node"]
    by_properties = set(node["properties"]) - COMMON
    by_one_of = {name for branch in node["oneOf"] for name in branch["required"]}
    assert by_properties == by_one_of == set(NODE_KINDS)
    assert set(_ENTER) == set(NODE_KINDS)
    assert set(_KINDS) == set(NODE_KINDS)
    assert len(NODE_KINDS) == len(set(NODE_KINDS))


def _resolve(schema: dict[str, Any], sub: Any) -> Any:
    """Follow `$ref`s until a schema with its own description (editors show the target's)."""
    for _ in range(10):
        if not isinstance(sub, dict) or "description" in sub or "$ref" not in sub:
            return sub
        target: Any = schema
        for part in sub["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        sub = target
    raise AssertionError(f"$ref loop at {sub}")


def _undocumented(schema: dict[str, Any], node: Any, where: str) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key in ("properties", "patternProperties"):
            for name, sub in node.get(key, {}).items():
                target = _resolve(schema, sub)
                if not (isinstance(target, dict) and target.get("description")):
                    out.append(f"{where}/{key}/{name}")
        for key, value in node.items():
            out += _undocumented(schema, value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _undocumented(schema, value, f"{where}/{i}")
    return out


def test_every_property_has_a_description():
    schema = flow_schema()
    assert schema["description"]
    assert _undocumented(schema, schema, "#") == []


def test_schema_is_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(flow_schema())


HEAD = "flow: t\nstart: a\n"


def test_valid_flow_has_no_problems():
    assert check(HEAD + "nodes:\n  a:\n    say: hi\n    next: b\n  b:\n    end:\n") == []


def test_unknown_top_level_key_with_did_you_mean():
    assert messages(HEAD + "nodez: {}\nnodes:\n  a: {end: }\n") == [
        "f.yaml:3:1: nodez: unknown key 'nodez' (did you mean 'nodes'?)"
    ]


def test_unknown_nested_key_with_did_you_mean():
    text = HEAD + (
        "nodes:\n"
        "  a:\n"
        "    menu:\n"
        "      prompt: hi\n"
        "      options:\n"
        "        x: {dtmf: '1', goto: a, speach: [x]}\n"
    )
    assert messages(text) == [
        "f.yaml:8:33: nodes.a.menu.options.x.speach: unknown key 'speach' (did you mean 'speech'?)"
    ]


def test_unknown_key_without_a_close_match_lists_the_allowed():
    (message,) = messages(HEAD + "nodes:\n  a:\n    end: {zzz: 1}\n")
    assert (
        message == "f.yaml:5:11: nodes.a.end.zzz: unknown key 'zzz' (expected one of: outcome, say)"
    )


def test_missing_required_key():
    text = HEAD + "nodes:\n  a:\n    ask:\n      prompt: hi\n    next: a\n"
    assert messages(text) == ["f.yaml:5:5: nodes.a.ask: missing 'save_as'"]


def test_missing_next():
    assert messages(HEAD + "nodes:\n  a:\n    say: hi\n") == ["f.yaml:4:3: nodes.a: missing 'next'"]


def test_missing_top_level_key():
    assert messages("flow: t\nnodes:\n  a: {end: }\n") == ["f.yaml:1:1: missing 'start'"]


def test_number_where_text_is_wanted_suggests_quotes():
    text = HEAD + "nodes:\n  a:\n    menu:\n      prompt: hi\n      options:\n"
    text += "        x: {dtmf: 1, goto: a}\n"
    assert messages(text) == [
        'f.yaml:8:19: nodes.a.menu.options.x.dtmf: expected text, got 1 (write it in quotes: "1")'
    ]


def test_number_as_a_prompt_suggests_quotes():
    assert messages(HEAD + "nodes:\n  a:\n    say: 5\n    next: a\n") == [
        "f.yaml:5:10: nodes.a.say: expected text or a list or a mapping, got 5 "
        '(write it in quotes: "5")'
    ]


def test_boolean_where_text_is_wanted():
    assert messages(HEAD + "nodes:\n  a:\n    say: true\n    next: a\n") == [
        "f.yaml:5:10: nodes.a.say: expected text or a list or a mapping, got true "
        "(write it in quotes)"
    ]


def test_bad_enum():
    text = HEAD + "nodes:\n  a:\n    ask:\n      prompt: hi\n      input: words\n"
    text += "      save_as: x\n    next: a\n"
    assert messages(text) == [
        "f.yaml:7:14: nodes.a.ask.input: 'words' is not allowed (use one of: digits, speech, any)"
    ]


def test_bad_pattern_explains_itself():
    text = HEAD + "hours:\n  s: {tz: UTC, mon-fri: '9-5'}\nnodes:\n  a: {end: }\n"
    assert messages(text) == [
        "f.yaml:4:25: hours.s.mon-fri: '9-5' is not valid here (Opening span, HH:MM-HH:MM.)"
    ]


def test_node_with_no_kind():
    assert messages(HEAD + "nodes:\n  a:\n    next: a\n") == [
        "f.yaml:5:5: nodes.a: a node needs one kind: "
        "say, menu, ask, http, set, branch, transfer, record, callback, message, subflow, end"
    ]


def test_node_with_a_misspelt_kind():
    found = messages(HEAD + "nodes:\n  a:\n    sey: hi\n    next: a\n")
    assert "f.yaml:5:5: nodes.a.sey: unknown key 'sey' (did you mean 'set'?)" in found
    assert any(m.startswith("f.yaml:5:5: nodes.a: a node needs one kind: ") for m in found)


def test_node_with_two_kinds():
    assert messages(HEAD + "nodes:\n  a:\n    say: hi\n    end: {}\n    next: a\n") == [
        "f.yaml:5:5: nodes.a: a node has exactly one kind, found say and end "
        "(split it into two nodes linked by next)"
    ]


def test_option_with_goto_and_repeat():
    text = HEAD + "nodes:\n  a:\n    menu:\n      prompt: hi\n      options:\n"
    text += "        x: {dtmf: '1', goto: a, repeat: true}\n"
    assert messages(text) == [
        "f.yaml:8:12: nodes.a.menu.options.x: an option has either goto or repeat, not both"
    ]


def test_global_option_with_goto_and_repeat():
    text = HEAD + "global:\n  x: {dtmf: '1', goto: a, repeat: true}\nnodes:\n  a: {end: }\n"
    assert messages(text) == ["f.yaml:4:6: global.x: an option has either goto or repeat, not both"]


def test_option_with_neither_goto_nor_repeat():
    text = HEAD + "nodes:\n  a:\n    menu:\n      prompt: hi\n      options:\n"
    text += "        x: {dtmf: '1'}\n"
    assert messages(text) == [
        "f.yaml:8:9: nodes.a.menu.options.x: an option needs 'goto: NODE' (or 'repeat: true')"
    ]


def test_option_with_no_key_or_phrase():
    text = HEAD + "nodes:\n  a:\n    menu:\n      prompt: hi\n      options:\n"
    text += "        x: {goto: a}\n"
    assert messages(text) == [
        "f.yaml:8:9: nodes.a.menu.options.x: an option needs a key ('dtmf: \"1\"') "
        "or phrases ('speech: [...]')"
    ]


def test_empty_nodes():
    assert messages(HEAD + "nodes: {}\n") == ["f.yaml:3:8: nodes: must not be empty"]


def test_end_may_be_empty():
    assert check(HEAD + "nodes:\n  a:\n    end:\n") == []


def test_several_errors_all_reported_in_file_order():
    text = HEAD + (
        "nodes:\n"
        "  a:\n"
        "    say: hi\n"
        "    next: b\n"
        "  b:\n"
        "    ask:\n"
        "      prompt: p\n"
        "      save_as: v\n"
        "      input: nope\n"
        "    next: a\n"
        "  c:\n"
        "    end: {outcome: great}\n"
        "  d:\n"
        "    menu:\n"
        "      prompt: hi\n"
        "      options:\n"
        "        x: {dtmf: 1, goto: a}\n"
    )
    assert messages(text) == [
        "f.yaml:11:14: nodes.b.ask.input: 'nope' is not allowed (use one of: digits, speech, any)",
        "f.yaml:14:20: nodes.c.end.outcome: 'great' is not allowed (use one of: contained, failed)",
        'f.yaml:19:19: nodes.d.menu.options.x.dtmf: expected text, got 1 (write it in quotes: "1")',
    ]


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_each_kind_has_a_schema_definition(kind):
    node = flow_schema()["$defs"]["node"]
    assert kind in node["properties"]
    assert {"required": [kind]} in node["oneOf"]
