"""Conversation tests with a text `channel`: the whole test is a text conversation, its
`say`/`press` steps messages, `said` checking the messages sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.conversation import ConversationError, run_file

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
