"""Stage 3, the compiler: names resolved, defaults applied, static checks located,
prompts pre-rendered, subflows inlined, and the result immutable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted, Digits
from ivr.errors import FlowError, Problem
from ivr.flow import check_flow, load_flow, parse_and_compile
from ivr.flow.compiler import compile_flow
from ivr.flow.loader import parse_flow
from ivr.flow.model import Audio, End, Flow, Menu, Text
from ivr.flow.schema import check_schema


def compile_text(text: str) -> tuple[Flow, list[Problem]]:
    doc = parse_flow(text, "f.yaml", {})
    assert check_schema(doc) == []
    return compile_flow(doc)


def errors(text: str) -> list[str]:
    with pytest.raises(FlowError) as e:
        compile_text(text)
    return [str(p) for p in e.value.problems if p.severity == "error"]


def warnings(text: str) -> list[str]:
    _, found = compile_text(text)
    assert all(p.severity == "warning" for p in found)
    return [str(p) for p in found]


def test_missing_goto_target_with_did_you_mean():
    text = """flow: t
start: main
nodes:
  main:
    menu:
      prompt: "Press 1 for your balance."
      options:
        balance: {dtmf: "1", goto: ask_acount}
  ask_account:
    end:
"""
    assert errors(text) == [
        "f.yaml:8:36: nodes.main.menu.options.balance.goto: "
        "'ask_acount' is not a node (did you mean 'ask_account'?)"
    ]


def test_missing_next_branch_and_start_targets():
    text = """flow: t
start: begin
nodes:
  a:
    say: hi
    next: zzz
  b:
    branch:
      - {if: "caller == '1'", goto: a}
      - {else: bb}
  c:
    end:
"""
    assert errors(text) == [
        "f.yaml:2:8: start: 'begin' is not a node",
        "f.yaml:6:11: nodes.a.next: 'zzz' is not a node",
        "f.yaml:10:16: nodes.b.branch[1].else: 'bb' is not a node (did you mean 'b'?)",
    ]


def test_missing_default_on_fail_is_reported_once_at_the_defaults():
    text = """flow: t
start: a
defaults:
  on_fail: agnet
nodes:
  a:
    menu:
      prompt: hi
      options:
        x: {dtmf: "1", goto: b}
  b:
    ask: {prompt: pin, save_as: pin}
    next: agent
  agent:
    transfer: {to: "+15550199"}
"""
    assert errors(text) == [
        "f.yaml:4:12: defaults.on_fail: 'agnet' is not a node (did you mean 'agent'?)"
    ]


def test_unreachable_node_is_a_warning():
    text = """flow: t
start: a
nodes:
  a:
    end:
  lonely:
    end: {say: "Nobody comes here."}
"""
    assert warnings(text) == [
        "f.yaml:6:3: warning: nodes.lonely: unreachable: no path from start leads here"
    ]


def test_stuck_loop_of_say_nodes_is_an_error():
    text = """flow: t
start: a
nodes:
  a:
    say: one
    next: b
  b:
    say: two
    next: a
"""
    stuck = "no end, transfer or record can be reached from here: a caller would be stuck"
    assert errors(text) == [
        f"f.yaml:4:1: nodes.a: {LOOP.format('a -> b -> a')}",
        f"f.yaml:4:1: nodes.a: {stuck}",
        f"f.yaml:7:1: nodes.b: {stuck}",
    ]


LOOP = (
    "these nodes loop without ever waiting for the caller ({}): put a menu or ask in the "
    "loop; to try a backend again, give its http node `retries`"
)


@pytest.mark.parametrize(
    ("nodes", "where", "loop"),
    [
        (  # a retry loop around a backend: what `retries` is for
            """
  lookup:
    http: {url: "http://api/x", save_as: x}
    next: done
    on_error: again
  again:
    set: {tries: "tries + 1"}
    next: check
  check:
    branch:
      - {if: "tries < 3", goto: lookup}
      - {else: done}
  done: {end: {}}""",
            "f.yaml:5:1: nodes.lookup",
            "lookup -> again -> check -> lookup",
        ),
        (  # a branch back to itself, whatever its condition
            """
  lookup:
    branch:
      - {if: "false", goto: lookup}
      - {else: done}
  done: {end: {}}""",
            "f.yaml:5:1: nodes.lookup",
            "lookup -> lookup",
        ),
    ],
)
def test_a_loop_that_never_waits_for_the_caller_is_an_error(nodes, where, loop):
    text = f"flow: t\nstart: first\nnodes:\n  first: {{say: hi, next: lookup}}{nodes}\n"
    assert errors(text) == [f"{where}: {LOOP.format(loop)}"]


def test_a_loop_through_a_menu_is_fine():
    text = """flow: t
start: a
nodes:
  a: {say: hi, next: b}
  b:
    menu:
      prompt: again?
      options:
        again: {dtmf: "1", goto: a}
        done: {dtmf: "2", goto: c}
  c: {end: {}}
"""
    assert warnings(text) == []


def test_menu_looping_on_itself_with_on_fail_is_stuck():
    text = """flow: t
start: a
nodes:
  a:
    menu:
      prompt: hi
      on_fail: a
      options:
        again: {dtmf: "1", goto: a}
"""
    assert len(errors(text)) == 1


def test_menu_without_on_fail_can_end():
    # running out of retries ends the call, so a lone menu is not stuck
    text = """flow: t
start: a
nodes:
  a:
    menu:
      prompt: hi
      options:
        again: {dtmf: "1", goto: a}
"""
    assert warnings(text) == []


MENU_WITH_GLOBALS = """flow: t
start: m
global:
  agent: {dtmf: "0", speech: [agent, operator], goto: bye}
  repeat: {dtmf: "*", speech: [repeat], repeat: true}
nodes:
  m:
    menu:
      prompt: hi
{extra}      options:
        x: {dtmf: "1", speech: [balance], goto: bye}
        y: {dtmf: "1", goto: bye}
        z: {dtmf: "0", speech: [Operator!], goto: bye}
  bye:
    end:
"""


def test_duplicate_dtmf_key_and_clash_with_a_global_option():
    assert errors(MENU_WITH_GLOBALS.replace("{extra}", "")) == [
        "f.yaml:12:19: nodes.m.menu.options.y.dtmf: key 1 is used by option 'x' too",
        "f.yaml:13:19: nodes.m.menu.options.z.dtmf: key 0 is used by the global option "
        "'agent' too (choose another key, or set 'global: false' on this menu)",
        "f.yaml:13:32: nodes.m.menu.options.z.speech: "
        "phrase 'operator' is used by the global option 'agent' too",
    ]


def test_global_false_avoids_the_clash():
    found = errors(MENU_WITH_GLOBALS.replace("{extra}", "      global: false\n"))
    assert found == ["f.yaml:13:19: nodes.m.menu.options.y.dtmf: key 1 is used by option 'x' too"]


def test_same_phrase_in_two_options():
    text = """flow: t
start: m
nodes:
  m:
    menu:
      prompt: hi
      options:
        x: {speech: [Balance, money], goto: bye}
        y: {speech: ["balance!"], goto: bye}
  bye:
    end:
"""
    assert errors(text) == [
        "f.yaml:9:21: nodes.m.menu.options.y.speech: phrase 'balance!' is used by option 'x' too"
    ]


def test_template_with_unknown_variable_is_a_warning():
    text = """flow: t
start: a
vars: {name: Bob}
nodes:
  a:
    say: "Hello {{ name }}, your balance is {{ acct.balance }}, {{ caller }}."
    next: b
  b:
    end:
"""
    assert warnings(text) == ["f.yaml:6:10: warning: nodes.a.say: uses acct, which no node sets"]


def test_sensitive_variable_spoken_is_a_warning():
    text = """flow: t
start: a
nodes:
  a:
    ask: {prompt: "Your PIN?", save_as: pin, sensitive: true}
    next: b
  b:
    say: "Your PIN is {{ pin | spell }}."
    next: c
  c:
    end:
"""
    assert warnings(text) == ["f.yaml:8:10: warning: nodes.b.say: speaks sensitive pin aloud"]


def test_sensitive_variable_in_a_url_is_not_spoken():
    text = """flow: t
start: a
nodes:
  a:
    ask: {prompt: "Your PIN?", save_as: pin, sensitive: true}
    next: b
  b:
    http: {url: "http://bank/check/{{ pin }}"}
    next: c
  c:
    end:
"""
    flow, found = compile_text(text)
    assert found == []
    assert flow.nodes["b"].spec.sensitive is True
    assert flow.sensitive == frozenset({"pin"})


def test_jinja_syntax_error_in_a_prompt_is_located():
    text = """flow: t
start: a
nodes:
  a:
    say: "Hello {{ name "
    next: b
  b:
    end:
"""
    assert errors(text) == [
        "f.yaml:5:10: nodes.a.say: template error: "
        "unexpected end of template, expected 'end of print statement'."
    ]


def test_jinja_syntax_error_in_a_prompt_list_is_located_at_the_item():
    text = """flow: t
start: a
nodes:
  a:
    say:
      - {audio: hello.wav}
      - "{% if x %}unclosed"
    next: b
  b:
    end:
"""
    (found,) = errors(text)
    assert found.startswith("f.yaml:7:9: nodes.a.say[1]: template error: ")


def test_jinja_syntax_error_in_a_condition_is_located():
    text = """flow: t
start: a
nodes:
  a:
    branch:
      - {if: "caller ==", goto: b}
      - {else: b}
  b:
    end:
"""
    assert errors(text) == [
        "f.yaml:6:14: nodes.a.branch[0].if: expression error: unexpected 'end of template'"
    ]


def test_else_must_be_last():
    text = """flow: t
start: a
nodes:
  a:
    branch:
      - {else: b}
      - {if: "caller", goto: b}
  b:
    end:
"""
    assert errors(text) == [
        "f.yaml:6:9: nodes.a.branch[0]: 'else' must be the last case (cases after it never run)"
    ]


def test_digits_min_above_max():
    text = """flow: t
start: a
nodes:
  a:
    ask: {prompt: p, save_as: v, digits: {min: 6, max: 4}}
    next: b
  b:
    end:
"""
    assert errors(text) == ["f.yaml:5:42: nodes.a.ask.digits: min (6) is more than max (4)"]


def test_unknown_time_zone():
    text = """flow: t
start: a
hours:
  support: {tz: Mars/Olympus, mon-fri: "09:00-17:00"}
nodes:
  a:
    end:
"""
    assert errors(text) == [
        "f.yaml:4:17: hours.support.tz: unknown time zone 'Mars/Olympus' "
        "(use an IANA name like Europe/London)"
    ]


def test_static_prompts_are_pre_rendered_and_templated_ones_not():
    text = """flow: t
start: a
vars: {name: Bob}
nodes:
  a:
    say: "Hello."
    next: b
  b:
    say: "Hello {{ name }}."
    next: c
  c:
    say: [{audio: hi.wav}, "Welcome.", {say: "Again."}]
    next: d
  d:
    say: [{audio: hi.wav}, "Hi {{ name }}."]
    next: e
  e:
    end: {say: "Bye."}
"""
    flow, _ = compile_text(text)
    assert flow.nodes["a"].spec.static == (Text("Hello."),)
    assert flow.nodes["b"].spec.static is None
    assert flow.nodes["b"].spec.render({"name": "Ann"}) == (Text("Hello Ann."),)
    assert flow.nodes["b"].spec.speaks == frozenset({"name"})
    assert flow.nodes["c"].spec.static == (Audio("hi.wav"), Text("Welcome."), Text("Again."))
    assert flow.nodes["d"].spec.static is None
    assert flow.nodes["d"].spec.render({"name": "Ann"}) == (Audio("hi.wav"), Text("Hi Ann."))
    assert flow.nodes["e"].spec.say.static == (Text("Bye."),)


def test_defaults_apply_and_nodes_override_them():
    text = """flow: t
start: a
defaults: {timeout: 7, retries: 3, no_match: "Pardon?", on_fail: agent}
nodes:
  a:
    menu:
      prompt: hi
      options:
        x: {dtmf: "1", goto: b}
  b:
    menu:
      prompt: hi
      retries: 0
      timeout: 2.5
      on_fail: bye
      no_input: "Still there?"
      options:
        x: {dtmf: "1", goto: lookup}
  lookup:
    http: {url: "http://bank/x"}
    next: bye
  agent:
    transfer: {to: "+15550199"}
  bye:
    end:
"""
    flow, _ = compile_text(text)
    a, b = flow.nodes["a"].spec.listening, flow.nodes["b"].spec.listening
    assert (a.timeout, a.retries, a.on_fail, a.barge_in) == (7.0, 3, "agent", True)
    assert [m.static for m in a.no_match] == [(Text("Pardon?"),)]
    assert [m.static for m in a.no_input] == [(Text("Sorry, I didn't hear anything."),)]
    assert (a.on_no_input, a.on_no_match) == ("agent", "agent")  # on_fail unless set
    assert (b.timeout, b.retries, b.on_fail) == (2.5, 0, "bye")
    assert [m.static for m in b.no_input] == [(Text("Still there?"),)]
    assert (b.on_no_input, b.on_no_match) == ("bye", "bye")
    assert flow.nodes["lookup"].on_error == "agent"  # http falls back on defaults.on_fail


REPROMPTS = """flow: t
start: a
defaults:
  no_input: ["Sorry, I didn't hear you.", [{audio: sorry.wav}, "Please answer."]]
  on_fail: agent
  on_no_match: bye
nodes:
  a:
    menu:
      prompt: hi
      no_match: [{say: "Pardon?"}, {audio: again.wav}, "Hi {{ caller }}, one more time."]
      options:
        x: {dtmf: "1", goto: b}
  b:
    ask: {prompt: pin, save_as: pin, on_fail: bye, on_no_input: agent}
    next: bye
  agent:
    transfer: {to: "+15550199"}
  bye:
    end:
"""


def test_reprompts_are_lists_of_messages_each_any_prompt_form():
    flow, _ = compile_text(REPROMPTS)
    a, b = flow.nodes["a"].spec.listening, flow.nodes["b"].spec.listening
    assert [m.static for m in a.no_input] == [
        (Text("Sorry, I didn't hear you."),),
        (Audio("sorry.wav"), Text("Please answer.")),  # one message of two parts
    ]
    assert [m.static for m in a.no_match[:2]] == [(Text("Pardon?"),), (Audio("again.wav"),)]
    assert a.no_match[2].render({"caller": "+1555"}) == (Text("Hi +1555, one more time."),)
    assert a.message("no_match", 1) is a.no_match[0]
    assert a.message("no_match", 7) is a.no_match[2]  # the last repeats
    assert a.message("no_input", 2) is a.no_input[1]
    # the node's own settings come before the defaults', the specific before on_fail
    assert (a.on_fail, a.on_no_input, a.on_no_match) == ("agent", "agent", "bye")
    assert (b.on_fail, b.on_no_input, b.on_no_match) == ("bye", "agent", "bye")
    roles = [role for role, _ in flow.nodes["a"].prompts()]
    assert roles == ["prompt", "no_input", "no_input.2", "no_match", "no_match.2", "no_match.3"]
    assert ("on_no_match", "bye") in flow.nodes["a"].edges()
    assert ("on_no_input", "agent") in flow.nodes["b"].edges()


def test_bad_reprompt_targets_are_located():
    text = REPROMPTS.replace("on_no_match: bye", "on_no_match: bey").replace(
        "on_no_input: agent", "on_no_input: agnet"
    )
    assert errors(text) == [
        "f.yaml:6:16: defaults.on_no_match: 'bey' is not a node (did you mean 'bye'?)",
        "f.yaml:15:65: nodes.b.ask.on_no_input: 'agnet' is not a node (did you mean 'agent'?)",
    ]


def test_a_reprompt_list_must_not_be_empty():
    doc = parse_flow(REPROMPTS.replace("no_input: [", "no_input: []\n  x: ["), "f.yaml", {})
    assert check_schema(doc)


def test_without_a_way_out_for_one_kind_the_node_may_end_the_call():
    flow, _ = compile_text(REPROMPTS.replace("  on_fail: agent\n", ""))
    b = flow.nodes["b"].spec.listening
    assert (b.on_fail, b.on_no_input, b.on_no_match) == ("bye", "agent", "bye")
    a = flow.nodes["a"].spec.listening
    assert (a.on_fail, a.on_no_input, a.on_no_match) == (None, None, "bye")


def test_menu_modes_and_key_table():
    text = """flow: t
start: a
global:
  agent: {dtmf: "0", speech: [agent], goto: bye}
nodes:
  a:
    menu:
      prompt: hi
      options:
        x: {dtmf: "1", goto: bye}
  bye:
    end:
"""
    flow, _ = compile_text(text)
    menu = flow.nodes["a"].spec
    assert isinstance(menu, Menu)
    assert menu.modes == frozenset({"dtmf"})  # the menu's own options are keys only
    assert set(menu.by_key) == {"1", "0"}
    assert menu.by_key["0"].is_global
    assert menu.confirm is None  # confirm_below defaults to 0: no confirmation


def test_flow_is_immutable():
    flow, _ = compile_text("flow: t\nstart: a\nnodes:\n  a:\n    end:\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.nodes = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        flow.nodes["b"] = flow.nodes["a"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.nodes["a"].next = "a"  # type: ignore[misc]
    with pytest.raises(TypeError):
        flow.vars["x"] = 1  # type: ignore[index]


def test_version_changes_with_the_text():
    one = parse_and_compile("flow: t\nstart: a\nnodes:\n  a:\n    end: {say: Bye.}\n")
    same = parse_and_compile("flow: t\nstart: a\nnodes:\n  a:\n    end: {say: Bye.}\n")
    other = parse_and_compile("flow: t\nstart: a\nnodes:\n  a:\n    end: {say: Bye!}\n")
    assert one.version == same.version
    assert one.version != other.version
    assert len(one.version) == 12


def test_parse_and_compile_raises_on_schema_problems():
    with pytest.raises(FlowError) as e:
        parse_and_compile("flow: t\nstart: a\nnodes:\n  a:\n    say: hi\n", "x.yaml")
    assert str(e.value) == "x.yaml:4:3: nodes.a: missing 'next'"


# -- subflows ----------------------------------------------------------------------------------

MAIN = """flow: main
start: welcome
nodes:
  welcome:
    say: "Welcome."
    next: auth
  auth:
    subflow: {flow: authenticate, next: main_menu}
  main_menu:
    menu:
      prompt: "Hello {{ caller }}, press 1 to leave."
      options:
        leave: {dtmf: "1", goto: bye}
  bye:
    end: {say: "Bye."}
"""

AUTHENTICATE = """flow: authenticate
start: ask_pin
nodes:
  ask_pin:
    ask: {prompt: "Your PIN?", save_as: pin, digits: {min: 4, max: 4}, sensitive: true}
    next: done
  done:
    end: {say: "Thanks."}
"""


def write(directory: Path, **files: str) -> None:
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)


def test_subflow_is_inlined_and_its_end_returns_to_next(tmp_path):
    write(tmp_path, main=MAIN, authenticate=AUTHENTICATE)
    flow = load_flow(tmp_path / "main.yaml", {})
    assert flow.nodes["auth"].next == "auth.ask_pin"
    assert flow.nodes["auth.ask_pin"].next == "auth.done"
    assert flow.nodes["auth.done"].spec == End(
        flow.nodes["auth.done"].spec.say, "contained", returns_to="main_menu"
    )
    assert flow.sensitive == frozenset({"pin"})
    assert flow.nodes["auth.ask_pin"].file == str(tmp_path / "authenticate.yaml")

    s, out = step(flow, new_session(flow, "c1"), CallStarted(caller="+15550001", at=0.0))
    assert [a.text for a in out if isinstance(a, act.Prompt)] == ["Welcome.", "Your PIN?"]
    s, out = step(flow, s, Digits("1234#", at=0.0))
    assert [a.text for a in out if isinstance(a, act.Prompt)] == [
        "Thanks.",
        "Hello +15550001, press 1 to leave.",
    ]
    assert not s.ended and s.node == "main_menu"
    assert s.vars["pin"] == "1234"
    s, out = step(flow, s, Digits("1", at=0.0))
    assert s.outcome == "contained"
    assert out[-1] == act.Hangup("contained")


def test_subflow_found_by_its_id_in_another_file(tmp_path):
    write(tmp_path, main=MAIN, auth_v2=AUTHENTICATE)
    flow, problems = check_flow(tmp_path / "main.yaml", {})
    assert problems == []
    assert flow is not None and "auth.ask_pin" in flow.nodes


def test_subflow_version_covers_the_subflow_text(tmp_path):
    write(tmp_path, main=MAIN, authenticate=AUTHENTICATE)
    before = load_flow(tmp_path / "main.yaml", {}).version
    write(tmp_path, authenticate=AUTHENTICATE.replace("Thanks.", "Thank you."))
    assert load_flow(tmp_path / "main.yaml", {}).version != before


def test_subflow_that_calls_itself(tmp_path):
    write(tmp_path, main=MAIN.replace("flow: authenticate", "flow: main"))
    flow, problems = check_flow(tmp_path / "main.yaml", {})
    assert flow is None
    assert [str(p) for p in problems if p.severity == "error"] == [
        f"{tmp_path / 'main.yaml'}:8:21: nodes.auth.subflow.flow: "
        "subflow 'main' calls itself (main -> main)"
    ]


def test_subflows_that_call_each_other(tmp_path):
    loop = AUTHENTICATE.replace(
        '  done:\n    end: {say: "Thanks."}\n',
        "  done:\n    subflow: {flow: main, next: bye}\n  bye:\n    end:\n",
    )
    write(tmp_path, main=MAIN, authenticate=loop)
    flow, problems = check_flow(tmp_path / "main.yaml", {})
    assert flow is None
    assert [p.message for p in problems if p.severity == "error"] == [
        "subflow 'main' calls itself (main -> authenticate -> main)"
    ]
    (problem,) = [p for p in problems if p.severity == "error"]
    assert problem.file == str(tmp_path / "authenticate.yaml")
    assert (problem.line, problem.col) == (8, 21)


def test_unknown_subflow(tmp_path):
    write(tmp_path, main=MAIN)
    flow, problems = check_flow(tmp_path / "main.yaml", {})
    assert flow is None
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'main.yaml'}:8:21: nodes.auth.subflow.flow: "
        "no flow 'authenticate' beside this file (a file with 'flow: authenticate')"
    ]


def test_subflow_with_schema_errors_is_not_used(tmp_path):
    write(tmp_path, main=MAIN, authenticate=AUTHENTICATE.replace("save_as: pin, ", ""))
    flow, problems = check_flow(tmp_path / "main.yaml", {})
    assert flow is None
    assert "no flow 'authenticate' beside this file" in problems[0].message


def test_an_impossible_date_is_a_located_error():
    text = """flow: t
start: a
hours:
  h: {tz: UTC, mon-fri: "09:00-18:00", closed_on: [2026-02-29]}
nodes:
  a: {end: {}}
"""
    assert errors(text) == [
        "f.yaml:4:52: hours.h.closed_on[0]: 2026-02-29 is not a date "
        "(day is out of range for month)"
    ]


def test_a_template_nested_too_deeply_is_a_located_error():
    deep = "{{ " + "(" * 150 + "1" + ")" * 150 + " }}"
    text = f'flow: t\nstart: a\nnodes:\n  a: {{say: "{deep}", next: b}}\n  b: {{end: {{}}}}\n'
    assert errors(text) == ["f.yaml:4:12: nodes.a.say: template error: nested too deeply"]


# -- after the IVR hands over: transfers that go on, queues, callbacks, surveys -------------

HANDOVER = """flow: t
start: agent
nodes:
  agent:
    transfer:
      to: "+15550199"
      TRANSFER
  later:
    end:
"""


def test_a_queue_wait_needs_a_queue_and_a_leave_key_a_way_on():
    text = HANDOVER.replace("TRANSFER", 'wait: {leave_key: "1"}')
    assert errors(text) == [
        "f.yaml:7:13: nodes.agent.transfer.wait: a caller waits in a queue: "
        "give the transfer a `queue`",
        "f.yaml:7:25: nodes.agent.transfer.wait.leave_key: a caller who leaves the queue "
        "goes on at `on_leave`: add it (a callback offer)",
    ]
    flow, _ = compile_text(
        HANDOVER.replace(
            "TRANSFER", 'queue: q\n      wait: {leave_key: "1"}\n      on_leave: later'
        )
    )
    wait = flow.nodes["agent"].spec.wait
    assert wait.leave_prompt.static == (Text("To be called back instead of waiting, press 1."),)
    assert ("on_leave", "later") in flow.nodes["agent"].edges()


def test_where_a_transfer_goes_on_is_checked_and_drawn():
    text = HANDOVER.replace("TRANSFER", "on_no_answer: latr\n      after: later")
    assert errors(text) == [
        "f.yaml:7:21: nodes.agent.transfer.on_no_answer: 'latr' is not a node "
        "(did you mean 'later'?)"
    ]
    flow, _ = compile_text(HANDOVER.replace("TRANSFER", "on_busy: later\n      after: later"))
    spec = flow.nodes["agent"].spec
    assert spec.continues and spec.then("busy") == "later" and spec.then("completed") == "later"
    assert spec.then("no-answer") is None  # not named: the call ends there


def test_a_sensitive_answer_cannot_be_a_surveys():
    text = """flow: t
start: pin
nodes:
  pin:
    ask: {prompt: "PIN?", save_as: pin, sensitive: true, survey: csat}
    next: bye
  bye:
    end:
"""
    assert errors(text) == [
        "f.yaml:5:66: nodes.pin.ask.survey: a sensitive answer is never kept: "
        "it cannot be a survey's"
    ]


def test_a_whisper_that_speaks_a_sensitive_value_is_a_warning():
    text = """flow: t
start: pin
nodes:
  pin:
    ask: {prompt: "PIN?", save_as: pin, sensitive: true}
    next: agent
  agent:
    transfer: {to: "+15550199", whisper: "PIN {{ pin }}"}
"""
    assert warnings(text) == [
        "f.yaml:8:42: warning: nodes.agent.transfer.whisper: speaks sensitive pin aloud"
    ]


def test_a_callback_in_the_flows_language():
    text = """flow: t
language: ru-RU
start: cb
nodes:
  cb:
    callback: {queue: support}
"""
    flow, _ = compile_text(text)
    cb = flow.nodes["cb"].spec
    assert cb.confirm.render({"number": "7 7 0 1"})[0].text.startswith(
        "Мы перезвоним вам на номер 7 7 0 1."
    )
    assert cb.say.static == (Text("Спасибо. Оператор вам перезвонит. До свидания."),)
    assert flow.nodes["cb"].number_listen.max_digits == 15
