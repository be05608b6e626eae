"""Stage 1, the loader: YAML text -> data with marks, and every way a file can be wrong."""

from __future__ import annotations

import pytest

from ivr.errors import FlowError, Problem
from ivr.flow import loader
from ivr.flow.loader import MAX_DEPTH, MAX_NODES, parse_flow, read_flow_file


def problems(raw: bytes | str, env: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(FlowError) as e:
        parse_flow(raw, "f.yaml", env or {})
    return e.value.problems


def only(raw: bytes | str, env: dict[str, str] | None = None) -> str:
    """The one problem found, as `file:line:col: where: message`."""
    found = problems(raw, env)
    assert len(found) == 1, found
    return str(found[0])


def test_data_and_marks():
    doc = parse_flow("flow: t\nnodes:\n  a:\n    say: hi\n", "f.yaml", {})
    assert doc.data == {"flow": "t", "nodes": {"a": {"say": "hi"}}}
    assert doc.marks[("nodes", "a", "say")] == (4, 10)
    assert doc.key_marks[("nodes", "a", "say")] == (4, 5)
    assert doc.mark(("nodes", "a", "say", "missing", 3)) == (4, 10)


def test_duplicate_key():
    assert only("flow: a\nstart: b\nflow: c\n") == (
        "f.yaml:3:1: flow: duplicate key 'flow' (first defined on line 1)"
    )


def test_duplicate_key_nested():
    text = "nodes:\n  a:\n    say: hi\n    next: b\n    say: ho\n"
    assert only(text) == ("f.yaml:5:5: nodes.a.say: duplicate key 'say' (first defined on line 3)")


def test_tab_indent():
    assert only("flow: a\nnodes:\n\tx: 1\n") == (
        "f.yaml:3:1: YAML syntax: a tab character; YAML indents with spaces only"
    )


@pytest.mark.parametrize("text", ["", "   \n\n", "\ufeff"])
def test_empty_file(text):
    assert only(text) == "f.yaml:1:1: the file is empty (expected a flow: flow, start, nodes)"


def test_comment_only_file():
    text = "# yaml-language-server: $schema=../ivr/flow/schema.json\n  # nothing yet\n\n"
    assert only(text) == "f.yaml:1:1: the file is empty (expected a flow: flow, start, nodes)"


def test_not_utf8():
    assert only(b"flow: a\nstart: caf\xe9\n") == (
        "f.yaml:2:11: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )


# the wording is PyYAML's or libyaml's (whichever parses); the place and the gist are ours


def test_yaml_syntax_error():
    message = only("flow: a\nstart: b: c\n")
    assert message.startswith("f.yaml:2:9: YAML syntax: ")
    assert "mapping values are not allowed" in message


def test_yaml_syntax_error_unclosed_list():
    message = only("flow: a\nstart: [b\nnodes: {}\n")
    assert message.startswith("f.yaml:3:6: YAML syntax: ")
    assert "expected ',' or ']'" in message


def test_two_documents():
    assert only("--- a\n--- b\n").startswith("f.yaml:2:1: YAML syntax: ")


def test_undefined_alias():
    assert only("flow: a\nstart: *x\n").startswith("f.yaml:2:8: YAML syntax: found undefined alias")


def test_billion_laughs():
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    (problem,) = problems("\n".join(lines) + "\n")
    assert f"more than {MAX_NODES} values after expanding aliases (an alias bomb?)" in (
        problem.message
    )
    assert str(problem).startswith("f.yaml:1:48: f[0][6][8][8][8][8]: ")  # 200_001st value


def test_merge_key_bomb_stays_small():
    lines = ["l0: &l0 {k: 1, j: 2}"]
    for i in range(1, 12):
        lines.append(f"l{i}: &l{i} {{<<: [" + ", ".join([f"*l{i - 1}"] * 10) + "]}")
    doc = parse_flow("\n".join(lines) + "\n", "f.yaml", {})
    assert doc.data["l11"] == {"k": 1, "j": 2}


def test_merge_key_override_is_not_a_duplicate():
    doc = parse_flow("base: &b {x: 1, y: 2}\nother: {<<: *b, x: 3}\n", "f.yaml", {})
    assert doc.data["other"] == {"x": 3, "y": 2}


def test_merge_of_a_scalar():
    assert only("a: {<<: 1}\n") == (
        "f.yaml:1:4: a: cannot merge: expected a mapping or list of mappings for merging, "
        "but found scalar"
    )


def test_deep_nesting():
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    (problem,) = problems(text)
    assert problem.message == f"nested more than {MAX_DEPTH} levels deep"
    assert (problem.line, problem.col) == (1, 4 + MAX_DEPTH)  # the first "[" too deep


def test_recursive_alias_is_deep_nesting():
    (problem,) = problems("a: &x [*x]\n")
    assert problem.message == f"nested more than {MAX_DEPTH} levels deep"


def test_nesting_too_deep_for_the_yaml_parser():
    (problem,) = problems("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problem.message == f"nested more than {MAX_DEPTH} levels deep"
    assert problem.line == 1


NESTED = {  # a file nested `depth` levels, in each of YAML's ways to nest
    "flow sequences": lambda depth: "a: " + "[" * depth + "]" * depth + "\n",
    "flow mappings": lambda depth: "a: " + "{k: " * depth + "x" + "}" * depth + "\n",
    "block sequences": lambda depth: "a:\n" + "".join("  " * i + "-\n" for i in range(1, depth)),
}


@pytest.mark.parametrize("nested", NESTED.values(), ids=NESTED.keys())
def test_far_too_deep_is_placed_like_just_too_deep(nested):
    """Past libyaml's own limit (1,000 levels): the builder's error, place and path."""
    assert only(nested(5000)) == only(nested(MAX_DEPTH + 5))


@pytest.mark.parametrize("nested", NESTED.values(), ids=NESTED.keys())
def test_far_too_deep_without_libyaml(nested, monkeypatch):
    """PyYAML built without libyaml composes recursively and runs out of stack instead."""
    monkeypatch.setattr(loader, "_Loader", loader._PyLoader)
    assert only(nested(5000)) == only(nested(MAX_DEPTH + 5))


def test_missing_env_var_is_named():
    assert only('flow: a\nurl: "${IVR_FLOW_BANK_API}/x"\n') == (
        "f.yaml:2:6: url: environment variable IVR_FLOW_BANK_API is not set "
        "(set it, or write ${IVR_FLOW_BANK_API:-default})"
    )


def test_env_var_set():
    env = {"IVR_FLOW_BANK_API": "https://bank"}
    doc = parse_flow('url: "${IVR_FLOW_BANK_API}/x"\n', "f.yaml", env)
    assert doc.data == {"url": "https://bank/x"}


def test_env_var_default():
    text = 'url: "${IVR_FLOW_BANK_API:-http://127.0.0.1:8099}/x"\n'
    assert parse_flow(text, "f.yaml", {}).data == {"url": "http://127.0.0.1:8099/x"}
    doc = parse_flow(text, "f.yaml", {"IVR_FLOW_BANK_API": "h"})
    assert doc.data == {"url": "h/x"}


def test_env_var_empty_default():
    assert parse_flow('x: "a${IVR_FLOW_NOPE:-}b"\n', "f.yaml", {}).data == {"x": "ab"}


@pytest.mark.parametrize("text", ['url: "${BANK_API}/x"', 'url: "${BANK_API:-http://h}/x"'])
def test_env_var_outside_ivr_flow_is_refused(text):
    """Set or not, with a default or not: a flow reads only what the operator gave it."""
    assert only(f"flow: a\n{text}\n", {"BANK_API": "https://bank"}) == (
        "f.yaml:2:6: url: flows may read only environment variables named IVR_FLOW_...: "
        "rename BANK_API to IVR_FLOW_BANK_API, or list BANK_API in IVR_FLOW_ENV "
        "(comma-separated names)"
    )


def test_env_var_listed_in_ivr_flow_env():
    env = {"IVR_FLOW_ENV": "OTHER, BANK_API", "BANK_API": "https://bank", "OTHER": "o"}
    doc = parse_flow('url: "${BANK_API}/${OTHER}"\n', "f.yaml", env)
    assert doc.data == {"url": "https://bank/o"}


@pytest.mark.parametrize("name", ["TWILIO_AUTH_TOKEN", "IVR_CALLER_SALT", "IVR_HTTP_ALLOW"])
def test_server_settings_are_refused_even_when_listed(name):
    env = {"IVR_FLOW_ENV": name, name: "secret"}
    assert only(f'flow: a\nx: "${{{name}:-none}}"\n', env) == (
        f"f.yaml:2:4: x: environment variable {name} is the server's own setting: no flow "
        "may read it, even when listed in IVR_FLOW_ENV; put what the flow needs in a "
        "variable named IVR_FLOW_..."
    )


def test_yes_no_on_off_stay_words():
    text = "a: yes\nb: no\nc: on\nd: off\ne: y\nf: n\ng: Yes\nh: NO\n"
    data = parse_flow(text, "f.yaml", {}).data
    assert data == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": "off",
        "e": "y",
        "f": "n",
        "g": "Yes",
        "h": "NO",
    }


def test_true_false_are_booleans():
    data = parse_flow("a: true\nb: false\nc: True\nd: FALSE\n", "f.yaml", {}).data
    assert data == {"a": True, "b": False, "c": True, "d": False}
    assert all(type(v) is bool for v in data.values())


def test_yes_as_a_key_stays_a_word():
    data = parse_flow("options:\n  yes: 1\n  no: 2\n", "f.yaml", {}).data
    assert data == {"options": {"yes": 1, "no": 2}}


def test_bom_accepted():
    assert parse_flow("\ufeffflow: a\n", "f.yaml", {}).data == {"flow": "a"}
    assert parse_flow("\ufeffflow: a\n".encode(), "f.yaml", {}).data == {"flow": "a"}


@pytest.mark.parametrize(
    "text",
    [
        "flow: !!python/object:os.system {}\n",
        "flow: !!python/object/apply:os.system [echo hi]\n",
        "flow: !!python/name:os.system\n",
        "flow: !custom x\n",
    ],
)
def test_unknown_tag_rejected(text):
    message = only(text)
    assert message.startswith("f.yaml:1:7: flow: cannot read this value: ")
    assert "tag" in message


def test_non_scalar_key():
    assert only("? [a]\n: 1\n") == "f.yaml:1:3: keys must be plain words, not lists or mappings"


def test_several_problems_reported_together():
    found = problems('a: "${IVR_FLOW_X}"\nb: 1\na: 2\nc: "${IVR_FLOW_Y}"\n')
    assert [(p.line, p.message.split(" (")[0]) for p in found] == [
        (1, "environment variable IVR_FLOW_X is not set"),
        (3, "duplicate key 'a'"),
        (4, "environment variable IVR_FLOW_Y is not set"),
    ]


def test_read_flow_file(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes(b"flow: a\n")
    assert read_flow_file(path, {}).data == {"flow": "a"}
    assert read_flow_file(path, {}).file == str(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(FlowError) as e:
        read_flow_file(tmp_path / "nope.yaml", {})
    (problem,) = e.value.problems
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message.startswith("cannot read file: ")
