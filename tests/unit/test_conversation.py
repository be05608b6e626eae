"""Conversation tests: the example flows' scripted calls, and the runner on small flows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ivr.conversation import ConversationError, main, run_file, run_suite

ROOT = Path(__file__).resolve().parents[2]
TEST_FILES = sorted((ROOT / "flows" / "tests").glob("*.yaml"))

TINY_FLOW = """\
flow: tiny
start: hello
nodes:
  hello: {say: "Hello.", next: menu}
  menu:
    menu:
      prompt: "Press 1 for news."
      options:
        news: {dtmf: "1", goto: fetch}
  fetch:
    http: {url: "${IVR_FLOW_API:-http://127.0.0.1:9}/news", timeout: 0.3, save_as: news}
    next: read
    on_error: sorry
  read: {say: "Today: {{ news.headline }}.", next: bye}
  sorry: {say: "No news today.", next: bye}
  bye: {end: {say: "Bye."}}
"""

HEADER = """\
flow: tiny.yaml
env: {IVR_FLOW_API: "{backend}"}
backend:
  "GET /news": {json: {headline: rain}}
tests:
"""


def write(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY_FLOW)
    path = tmp_path / "tiny_test.yaml"
    path.write_text(HEADER + tests)
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


@pytest.mark.parametrize("path", TEST_FILES, ids=[p.stem for p in TEST_FILES])
def test_example_flow_conversations_pass_and_cover_every_node(path: Path) -> None:
    suite = run_suite(path)
    assert suite.results
    failures = [f for r in suite.results for f in r.failures]
    assert not failures, "\n".join(failures)
    assert suite.unvisited == [], f"nodes no test visits: {suite.unvisited}"
    assert suite.untaken == [], f"ways no test takes: {suite.untaken}"


def test_every_example_flow_has_conversation_tests() -> None:
    flows = {p.stem for p in (ROOT / "flows").glob("*.yaml")}
    assert flows <= {p.stem for p in TEST_FILES}


def test_a_passing_test(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: news
    steps:
      - expect: {heard: [hello, press 1], node: menu, listening: true}
      - press: "1"
      - expect: {heard: "Today: rain.", fetched: "GET /news", var: {news.headline: rain}}
      - expect: {outcome: contained, tasks: [], fetched: ["GET /news"]}
""",
    )
    [result] = run_file(path)
    assert result.passed, result.failures
    assert (result.name, result.steps, result.outcome) == ("news", 4, "contained")
    assert result.visited == ["hello", "menu", "fetch", "read", "bye"]


def test_an_experiment_never_splits_a_conversation_test(tmp_path: Path) -> None:
    """A test runs the flow file it names: the split is the server's routing, which `ivr
    test` does not do (here the other variant does not even exist)."""
    path = write(tmp_path, "  - name: news\n    steps:\n      - press: '1'\n")
    split = "experiment: {name: x, split: {tiny: 1, tiny_voice: 1000}}\nstart:"
    (tmp_path / "tiny.yaml").write_text(TINY_FLOW.replace("start:", split))
    suites = [run_suite(path) for _ in range(3)]
    assert [s.flow.id for s in suites] == ["tiny"] * 3 and suites[0].flow.experiment
    assert all(s.passed and s.results[0].visited[:2] == ["hello", "menu"] for s in suites)


def test_a_failing_expectation_names_test_step_line_and_what_was_heard(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: wrong headline
    steps:
      - press: "1"
      - expect: {heard: sunshine, node: read}
      - hangup: true
""",
    )
    [result] = run_file(path)
    assert not result.passed
    assert result.steps == 2  # the run stops at the first failing step
    [failure] = result.failures
    line = line_of(path, "heard: sunshine")
    assert failure.startswith(f"{path}:{line}: wrong headline: step 2 (expect): ")
    assert "expected to hear 'sunshine'\n    expected node read, but the call is at bye" in failure
    assert "heard: Today: rain. | Bye." in failure


def test_a_call_left_open_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: open call
    steps:
      - expect: {node: menu}
""",
    )
    [result] = run_file(path)
    assert not result.passed
    assert "the call did not end: add steps or hangup" in result.failures[0]
    assert f":{line_of(path, 'name: open call')}: open call: end:" in result.failures[0]


def test_a_caller_step_after_the_end_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: too many steps
    steps:
      - press: "1"
      - press: "2"
""",
    )
    [result] = run_file(path)
    assert "step 2 (press): the call has already ended" in result.failures[0]
    assert "ended at node bye, outcome contained" in result.failures[0]


def test_a_slow_backend_takes_the_on_error_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: slow news
    backend:
      "GET /news": {delay: 5, json: {headline: late}}
    steps:
      - press: "1"
      - expect: {heard: No news today, not_heard: late, fetched: "GET /news", outcome: contained}
""",
    )
    started = time.monotonic()
    [result] = run_file(path)
    assert result.passed, result.failures
    assert "sorry" in result.visited
    assert time.monotonic() - started < 3  # the server's slow answer does not hold up the run


def test_a_caller_hears_the_hold_prompt_while_a_slow_backend_works(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: slow news, with a hold prompt
    backend:
      "GET /news": {delay: 0.5, json: {headline: late}}
    steps:
      - press: "1"
      - expect: {heard: [One moment, "Today: late."], outcome: contained}
""",
    )
    flow = (tmp_path / "tiny.yaml").read_text()
    flow = flow.replace("start: hello", "start: hello\ndefaults: {hold_after: 0.1}")
    flow = flow.replace(
        "timeout: 0.3, save_as: news}", 'timeout: 2, save_as: news, hold: "One moment."}'
    )
    (tmp_path / "tiny.yaml").write_text(flow)
    [result] = run_file(path)
    assert result.passed, result.failures


def test_per_test_backend_overrides_and_coverage(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: no answer configured is a 404
    backend: {"GET /news": null}
    steps:
      - press: "1"
      - expect: {heard: No news today, outcome: contained}
  - name: the file's answers are back
    steps:
      - hangup: true
      - expect: {outcome: abandoned}
""",
    )
    suite = run_suite(path)
    assert suite.passed, [r.failures for r in suite.results]
    assert suite.unvisited == ["read"]
    assert "nodes visited 5/6" in suite.report()
    assert "not visited by any test: read" in suite.report()
    assert suite.untaken == ["fetch -(next)-> read", "read -(next)-> bye"]


def test_clock_and_transfer_expectations(tmp_path: Path) -> None:
    (tmp_path / "hours.yaml").write_text(
        """\
flow: hours
start: check
hours:
  desk: {tz: Europe/London, mon-fri: "09:00-17:00"}
nodes:
  check:
    branch:
      - {if: "open('desk')", goto: agent}
      - {else: closed}
  agent: {transfer: {to: "+15550100", queue: desk, attributes: {caller: "{{ caller }}"}}}
  closed: {end: {say: "We are closed."}}
"""
    )
    path = tmp_path / "hours_test.yaml"
    path.write_text(
        """\
flow: hours.yaml
tests:
  - name: open
    clock: 2026-11-23T09:00:00+00:00
    caller: "+15559990000"
    steps:
      - expect: {transfer: {to: "+15550100", queue: desk, reason: "node:check",
                            attributes: {caller: "+15559990000"}}, outcome: transferred}
  - name: closed
    clock: "2026-11-23T17:00:00Z"
    steps:
      - expect: {heard: we are closed, outcome: contained}
  - name: wrong transfer
    clock: "2026-11-23T10:00:00+00:00"
    steps:
      - expect: {transfer: {queue: sales}}
"""
    )
    open_, closed, wrong = run_file(path)
    assert open_.passed and closed.passed, open_.failures + closed.failures
    assert "expected transfer queue 'sales', got 'desk'" in wrong.failures[0]


def test_a_malformed_test_file_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: typos
    clock: "2026-11-23T10:00:00"
    steps:
      - pres: "1"
      - expect: {herd: hello}
      - silence: 0
      - say: {txt: hello}
""",
    )
    with pytest.raises(ConversationError) as info:
        run_file(path)
    text = str(info.value)
    assert f"{path}:{line_of(path, 'clock:')}:" in text and "no UTC offset" in text
    assert f"{path}:{line_of(path, 'pres:')}:" in text and "a step is one of" in text
    assert f"{path}:{line_of(path, 'herd:')}:" in text and "unknown key 'herd'" in text
    assert f"{path}:{line_of(path, 'silence: 0')}:" in text and "silence takes true" in text
    assert f"{path}:{line_of(path, 'txt:')}:" in text and "say takes words" in text


def test_main_prints_reports_and_fails_on_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "  - name: open call\n    steps:\n      - expect: {node: menu}\n")
    assert main([path]) == 1
    out = capsys.readouterr().out
    assert "0 passed, 1 failed" in out and "FAIL open call" in out


def test_a_closed_key_with_a_bad_shape_is_a_located_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """  - name: closed
    closed: [support]
    steps: [{hangup: true}]
  - name: closed again
    closed: {support: {say: x, untill: "2026-11-25T17:30:00+05:00"}}
    steps: [{hangup: true}]
""",
    )
    with pytest.raises(ConversationError) as info:
        run_file(path)
    assert [(p.line, p.message) for p in info.value.problems] == [
        (
            line_of(path, "closed: [support]"),
            "closed: maps hours names to what ops said, e.g. {support: Closed today.}",
        ),
        (line_of(path, "untill"), "closed.support: unknown key 'untill' (say, until)"),
    ]


def test_closing_hours_the_flow_has_not_fails_the_test(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """  - name: closed
    closed: {support: Closed.}
    steps: [{hangup: true}]
""",
    )
    (result,) = run_file(path)
    assert not result.passed
    assert result.failures == [
        f"{path}:{line_of(path, 'closed: {support')}: closed: closed: the flow has no hours "
        "named support (it has: none)"
    ]


TEXTING_FLOW = """\
flow: texting
start: send
nodes:
  send:
    message: {text: "Your code is 4321", to: "{{ caller }}"}
    next: sent
    on_error: unsent
  sent: {end: {say: "Sent."}}
  unsent: {end: {say: "Not sent."}}
"""


def texting(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "texting.yaml").write_text(TEXTING_FLOW)
    path = tmp_path / "texting_test.yaml"
    path.write_text("flow: texting.yaml\ntests:\n" + tests)
    return path


def test_messages_are_expected_and_can_be_made_to_fail(tmp_path: Path) -> None:
    path = texting(
        tmp_path,
        """\
  - name: sent
    caller: "+15557654321"
    steps:
      - expect: {message: {text: code is 4321, to: "+15557654321", channel: sms}, heard: Sent.}
  - name: refused
    messaging: fail
    steps:
      - expect: {heard: Not sent., message: {text: code}}
  - name: wrong expectations
    caller: "+15557654321"
    steps:
      - expect: {message: {text: code is 9999}}
""",
    )
    sent, refused, wrong = run_file(path)
    assert sent.passed, sent.failures
    assert (
        not refused.passed
        and "expected a message {'text': 'code'}, got none" in (refused.failures[0])
    )
    assert not wrong.passed
    assert (
        "expected a message {'text': 'code is 9999'}, got [('Your code is 4321'"
        in (wrong.failures[0])
    )


def test_bad_message_keys_are_located(tmp_path: Path) -> None:
    path = texting(
        tmp_path,
        """\
  - name: typos
    messaging: broken
    steps:
      - expect: {message: {txt: code}}
""",
    )
    with pytest.raises(ConversationError) as info:
        run_file(path)
    assert [(p.line, p.message) for p in info.value.problems] == [
        (line_of(path, "messaging:"), "messaging: ok (messages are sent, the default) or fail"),
        (
            line_of(path, "txt:"),
            "unknown key 'txt' (expected one of: channel, text, to)",
        ),
    ]
