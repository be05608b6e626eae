"""What each status means for a campaign: final or not, retried or not, and where the row
stands in `ivr campaigns show`, for calls and for texts."""

from __future__ import annotations

import pytest

from ivr.notify.attempts import CATEGORIES, Attempt, latest, tally


def attempt(status: str, answered_by: str | None = None, call_sid: str | None = None) -> Attempt:
    return Attempt("cmp", 2, 1, status, "c_ann", call_sid, answered_by, at=1.0, updated_at=1.0)


@pytest.mark.parametrize(
    ("status", "answered_by", "final", "retried", "category"),
    [
        ("dialing", None, False, False, "pending"),
        ("queued", None, False, False, "pending"),
        ("ringing", None, False, False, "pending"),
        ("in-progress", None, False, False, "pending"),
        ("completed", "human", True, False, "reached"),
        ("completed", None, True, False, "reached"),
        ("completed", "machine_end_beep", True, False, "machine"),
        ("completed", "fax", True, False, "machine"),
        ("busy", None, True, True, "busy"),
        ("no-answer", None, True, True, "no-answer"),
        ("failed", None, True, True, "failed"),
        ("canceled", None, True, False, "failed"),
        ("interrupted", None, True, False, "failed"),
        ("opted-out", None, True, False, "opted-out"),
        ("outside-window", None, True, False, "outside-window"),
        ("invalid", None, True, False, "invalid"),
        # texts (--channel sms | whatsapp)
        ("sending", None, False, False, "pending"),
        ("sent", None, True, False, "reached"),
        ("delivered", None, True, False, "reached"),
        ("read", None, True, False, "reached"),
        ("undelivered", None, True, True, "failed"),
    ],
)
def test_statuses(
    status: str, answered_by: str | None, final: bool, retried: bool, category: str
) -> None:
    found = attempt(status, answered_by)
    assert (found.final, found.retryable(), found.category) == (final, retried, category)


def test_a_machine_is_retried_only_when_asked() -> None:
    machine = attempt("completed", "machine_start")
    assert not machine.retryable() and machine.retryable(machine_too=True)
    assert not attempt("completed", "human").retryable(machine_too=True)


def test_moved_keeps_what_it_is_not_told() -> None:
    placed = attempt("queued", call_sid="CA1")
    done = placed.moved("completed", 9.0, answered_by="human")
    assert (done.status, done.call_sid, done.answered_by, done.at, done.updated_at) == (
        "completed",
        "CA1",
        "human",
        1.0,
        9.0,
    )


def test_each_callee_counts_once_by_its_last_attempt() -> None:
    attempts = [
        Attempt("cmp", 2, 1, "busy", "c_ann"),
        Attempt("cmp", 2, 2, "completed", "c_ann", answered_by="human"),
        Attempt("cmp", 3, 1, "no-answer", "c_bob"),
        Attempt("cmp", 4, 0, "invalid"),  # no key: counted by its line
        Attempt("cmp", 5, 0, "invalid"),
    ]
    assert set(latest(attempts)) == {"c_ann", "c_bob", "line:4", "line:5"}
    assert tally(attempts, 6) == {
        **dict.fromkeys(CATEGORIES, 0),
        "reached": 1,
        "no-answer": 1,
        "invalid": 2,
        "pending": 2,
    }
