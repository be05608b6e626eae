"""Conversation tests with a text `channel`: the whole test is a text conversation, its
`say`/`press` steps messages, `said` checking the messages sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.conversation import ConversationError, run_file, run_suite

FLOW = """\
flow: tiny
numbers: ["+15550123"]
start: hello
nodes:
  hello: {say: "Hello.", next: menu}
  menu:
    menu:
      prompt: "Press 1 for news, or 2 to leave us a note."
      options:
        news: {dtmf: "1", speech: [news], goto: read}
        note: {dtmf: "2", speech: [note], goto: note}
  read: {say: "Today: rain.", next: bye}
  note:
    record: {prompt: "Leave a message after the tone.", save_as: note}
    next: bye
  bye: {end: {say: "Bye."}}
"""


def run(tmp_path: Path, tests: str) -> list[str]:
    (tmp_path / "tiny.yaml").write_text(FLOW)
    path = tmp_path / "tiny_test.yaml"
    path.write_text("flow: tiny.yaml\ntests:\n" + tests)
    return [f for r in run_file(path) for f in r.failures]


def test_a_first_message_that_answers_the_menu_skips_its_question(tmp_path: Path) -> None:
    tests = """\
  - name: news by SMS
    channel: sms
    steps:
      - say: "news please"
      - expect: {said: [Hello., "Today: rain.", Bye.], not_said: Reply, outcome: contained}
"""
    assert run(tmp_path, tests) == []


def test_a_conversation_looked_at_before_any_message_shows_the_choices(tmp_path: Path) -> None:
    tests = """\
  - name: the menu as one message, then a note written for the recording
    channel: whatsapp
    steps:
      - expect: {said: [Hello., "Reply 1 for news, 2 for note. Or tell me what you need."]}
      - press: "2"
      - expect: {said: Please write your message in one reply., not_said: tone}
      - say: "Call me about the delivery."
      - expect: {said: Bye., var: {note: "Call me about the delivery."}, outcome: contained}
"""
    assert run(tmp_path, tests) == []


def test_a_wrong_message_fails_with_the_messages_sent(tmp_path: Path) -> None:
    tests = """\
  - name: chat
    channel: chat
    steps:
      - say: "1"
      - expect: {said: "Today: snow."}
"""
    [failure] = run(tmp_path, tests)
    assert "expected a message saying 'Today: snow.'" in failure
    assert "heard: Hello. | Today: rain. | Bye." in failure


def test_said_needs_a_text_channel(tmp_path: Path) -> None:
    tests = """\
  - name: voice
    steps:
      - expect: {said: Hello.}
      - hangup: true
"""
    [failure] = run(tmp_path, tests)
    assert "said and not_said check text messages: give the test a text `channel`" in failure


def test_an_unknown_channel_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(ConversationError) as e:
        run(tmp_path, "  - name: fax\n    channel: fax\n    steps:\n      - hangup: true\n")
    assert [str(p) for p in e.value.problems] == [
        f"{tmp_path / 'tiny_test.yaml'}:4:14: tests[0].channel: channel is one of: "
        "voice, sms, whatsapp, chat"
    ]


def test_a_node_passed_by_for_its_on_text_counts_as_covered(tmp_path: Path) -> None:
    """Coverage: the ways into a node off the channel and out by its `on_text` are taken
    when a text conversation was sent past it, though it never entered it."""
    (tmp_path / "pin.yaml").write_text(
        """\
flow: pin
start: pin
nodes:
  pin:
    ask: {prompt: "Your PIN?", input: digits, digits: {min: 4, max: 4}, save_as: pin,
          sensitive: true}
    on_text: link
    next: bye
  link: {end: {say: "Sign in at example.com."}}
  bye: {end: {say: "Bye."}}
"""
    )
    path = tmp_path / "pin_test.yaml"
    path.write_text(
        """\
flow: pin.yaml
tests:
  - name: by voice
    steps:
      - press: "1234"
      - expect: {outcome: contained, node: bye}
  - name: by SMS, sent to the link
    channel: sms
    steps:
      - say: "hi"
      - expect: {said: "Sign in at example.com.", not_said: PIN, outcome: contained}
"""
    )
    suite = run_suite(path)
    assert [f for r in suite.results for f in r.failures] == []
    assert suite.results[1].detours == [("", "pin")]  # at the start: from no node
    assert (suite.unvisited, suite.untaken) == ([], [])
