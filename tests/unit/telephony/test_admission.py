"""Which new calls a process takes: at most so many a minute from one number, and at most
so many in progress at once."""

from __future__ import annotations

from ivr.telephony import admission
from ivr.telephony.admission import WINDOW, Admission, InProgress


def test_a_number_gets_its_calls_a_minute_and_no_more() -> None:
    taken = Admission(per_minute=3)
    assert [taken.admit("+15550001", t) for t in (0.0, 1.0, 2.0, 3.0)] == [True] * 3 + [False]
    assert taken.admit("+15550002", 3.0)  # another number is another count
    assert not taken.admit("+15550001", WINDOW - 0.5)
    assert taken.admit("+15550001", WINDOW + 0.5)  # the first call left the window


def test_withheld_numbers_and_a_limit_of_0_take_every_call() -> None:
    taken, open_ = Admission(per_minute=1), Admission(per_minute=0)
    assert all(taken.admit("anonymous", float(t)) for t in range(10))
    assert all(open_.admit("+15550001", float(t)) for t in range(10))


def test_the_numbers_remembered_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(admission, "REMEMBERED", 100)
    taken = Admission(per_minute=1)
    for n in range(1000):
        taken.admit(f"+1555{n:07d}", 0.0)
    assert len(taken._calls) == 100


def test_a_new_call_is_taken_while_the_calls_in_progress_are_fewer_than_the_cap() -> None:
    capped, open_ = Admission(max_calls=2), Admission(max_calls=0)
    assert [capped.room(n) for n in (0, 1, 2, 3)] == [True, True, False, False]
    assert open_.room(10**6)


def test_a_call_is_in_progress_from_its_start_to_its_end() -> None:
    calls = InProgress(window=100.0)
    calls.started("CA1", 0.0)
    calls.started("CA2", 1.0)
    calls.turned("CA3", 2.0)  # a turn of a call started elsewhere: not counted here
    assert calls.count(2.0) == 2
    calls.ended("CA1")
    calls.ended("CA1")  # a retried status callback: no double count
    calls.ended("CA9")  # a call this process never started
    assert calls.count(3.0) == 1 and calls.calls() == ["CA2"]


def test_a_call_never_ended_here_leaves_a_window_after_its_last_turn() -> None:
    calls = InProgress(window=100.0)
    calls.started("CA1", 0.0)
    calls.started("CA2", 10.0)
    calls.turned("CA1", 50.0)  # a turn keeps it in for another window
    assert calls.count(109.0) == 2
    assert calls.count(110.0) == 1 and calls.calls() == ["CA1"]  # CA2: silent 100 s
    assert calls.count(150.0) == 0
