"""A caller's history pretended where no records are: a conversation test's `history:`
and `ivr call --history JSON`; bad ones are located errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.conversation import ConversationError, run_file

FLOW = """\
flow: card
start: hello
nodes:
  hello:
    branch:
      - {if: "history.last_task == 'card_blocked' and history.calls_today > 0", goto: again}
      - {else: bye}
  again:
    transfer:
      {to: "+15550199", queue: "{{ history.last_queue or 'cards' }}", say: "About your card."}
  bye: {end: {say: "Hello, how can I help?"}}
"""


def write(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "card.yaml").write_text(FLOW)
    path = tmp_path / "card_test.yaml"
    path.write_text("flow: card.yaml\ntests:\n" + tests)
    return path


def test_a_conversation_test_pretends_the_history(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: returning
    history: {last_task: card_blocked, last_queue: support, calls_today: 1}
    steps:
      - expect: {heard: About your card, transfer: {queue: support}, var: {history.last_at: null}}
  - name: first time
    steps:
      - expect: {heard: how can I help, var: {history.calls_today: 0}, outcome: contained}
""",
    )
    results = run_file(path)
    assert [r.passed for r in results] == [True, True], [r.failures for r in results]


def test_a_bad_history_is_a_located_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: typo
    history: {last_tsk: card_blocked}
    steps: [{hangup: true}]
  - name: count
    history: {calls_today: many}
    steps: [{hangup: true}]
  - name: list
    history: [card_blocked]
    steps: [{hangup: true}]
""",
    )
    with pytest.raises(ConversationError) as info:
        run_file(path)
    found = [(p.line, p.message) for p in info.value.problems]
    assert found[0][0] == 4 and "unknown key 'last_tsk'" in found[0][1]
    assert "last_queue" in found[0][1]  # says what would be right
    assert found[1] == (7, "calls_today: a whole number")
    assert found[2] == (10, "expected a mapping")


@pytest.mark.parametrize(
    ("history", "heard"),
    [
        (None, "Hello, how can I help?"),
        ('{"last_task": "card_blocked", "calls_today": 1}', "About your card."),
    ],
)
def test_ivr_call_pretends_a_history(
    tmp_path: Path,
    history: str | None,
    heard: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "card.yaml").write_text(FLOW)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    flags = ["--history", history] if history else []
    assert main(["call", str(tmp_path / "card.yaml"), *flags]) == 0
    out = capsys.readouterr().out
    assert f"ivr> {heard}\n" in out
    if history:
        assert "queue cards" in out


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{last_task", "argument --history: not JSON"),
        ("[1]", "argument --history: expected a JSON object"),
        ('{"task": "x"}', "argument --history: unknown field 'task' (expected: last_task,"),
    ],
)
def test_ivr_call_refuses_a_bad_history(
    tmp_path: Path, given: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "card.yaml").write_text(FLOW)
    with pytest.raises(SystemExit) as info:
        main(["call", str(tmp_path / "card.yaml"), "--history", given])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
