"""The stream driver's pure helpers: what the softphone's transcript is told."""

from __future__ import annotations

import pytest

from ivr.engine import actions as act
from ivr.engine.session import Session
from ivr.telephony.stream import _ending, _new_lines

A = [0.1, "main", "prompt"]
B = [1.0, "main", "dtmf", "match", "3"]
C = [1.0, "hours", "say"]
D = [2.0, "end", "hangup"]


@pytest.mark.parametrize(
    ("before", "after", "new"),
    [
        ([], [A, B], [A, B]),
        ([A], [A, B, C], [B, C]),
        ([A, B], [A, B], []),
        ([A, B, C], [B, C, D], [D]),  # the engine kept the last lines only: A left
        ([A, B], [C, D], [C, D]),  # all of them left
        ([A, A], [A, A, A], [A]),  # the same line twice is still two lines
    ],
)
def test_new_lines_of_a_transcript(before, after, new):
    assert _new_lines(before, after) == new


def test_how_a_call_ended():
    session = Session("CA1", "telebanking_ko", "v1", outcome="transferred", reason="global:agent")
    transfer = act.Transfer("+15550199", "support", "global")
    assert _ending(session, [transfer]) == {
        "outcome": "transferred",
        "reason": "global:agent",
        "to": "+15550199",
        "queue": "support",
    }
    session.outcome, session.reason = "contained", None
    assert _ending(session, [act.Hangup("contained")]) == {"outcome": "contained", "reason": None}
