"""Which new calls a process takes: at most so many a minute from one number."""

from __future__ import annotations

from ivr.telephony import admission
from ivr.telephony.admission import WINDOW, Admission


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
