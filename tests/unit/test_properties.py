"""Properties of every example flow under random callers (hypothesis).

Whatever a caller or a backend does, `step` never raises; after each step the call has
either ended with one outcome (and said so with a Hangup or Transfer) or waits for exactly
one thing the transport can deliver; and a caller who only presses 0 or stays silent
reaches an ending within a bounded number of events.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.engine import OUTCOMES, Session, new_session, step
from ivr.engine import actions as act
from ivr.engine.events import (
    CallStarted,
    Digits,
    Event,
    FetchResult,
    HangUp,
    MessageSent,
    NoInput,
    Recorded,
    RecordingStatus,
    Speech,
    TransferEnded,
)
from ivr.flow import load_flow
from ivr.flow.model import Flow, Menu
from ivr.flow.templates import luhn
from ivr.speech.intent import NO, YES

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"
FLOW_FILES = sorted(FLOWS_DIR.glob("*.yaml"))
MAX_EVENTS = 60
WAITS = (act.Listen, act.Fetch, act.Message, act.Record, act.Transfer)
WAITING_FOR = {
    act.Listen: ("listen", "confirm"),
    act.Fetch: ("fetch",),
    act.Message: ("message",),
    act.Record: ("record",),
    act.Transfer: ("transfer",),
}

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_there_are_flows_to_check():
    assert FLOW_FILES, f"no flows in {FLOWS_DIR}"


@functools.cache
def compiled(name: str) -> Flow:
    return load_flow(FLOWS_DIR / f"{name}.yaml", env={})


NAMES = [p.stem for p in FLOW_FILES]


def phrases(flow: Flow) -> list[str]:
    """Everything any menu of the flow listens for, and the confirmation answers."""
    out = {
        p
        for node in flow.nodes.values()
        if isinstance(node.spec, Menu)
        for p in node.spec.matcher.phrases
    }
    return sorted(out | set(YES) | set(NO))


WORDS = ["um", "hello", "my", "the", "please", "card", "one", "two", "seven", "for", "pizza"]
TIMES = st.integers(1_600_000_000, 2_000_000_000).map(float)  # 2020..2033
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
FIELDS = {
    "balance": st.one_of(st.floats(-1e7, 1e7, allow_nan=False), st.integers(), st.text(max_size=8)),
    "transactions": st.one_of(
        st.lists(
            st.fixed_dictionaries({}, optional={"amount": SCALARS, "merchant": SCALARS}),
            max_size=4,
        ),
        SCALARS,
    ),
    "card_last4": st.text("0123456789", max_size=4),
    "tier": st.sampled_from(["gold", "silver", ""]),
    "status": st.sampled_from(["shipped", "delivered", "processing", "lost", ""]),
    "carrier": SCALARS,
    "eta": SCALARS,
    "delivered_on": SCALARS,
    "error": st.text(max_size=12),
}
BODY = st.one_of(  # every field (what a backend usually sends), or any few of them
    st.fixed_dictionaries(FIELDS), st.fixed_dictionaries({}, optional=FIELDS)
)


NOW = st.just(0.0)  # each event's time is set when it is sent
FETCH_RESULTS = st.one_of(
    st.builds(FetchResult, st.sampled_from([200, 200, 200, 404, 500]), BODY, at=NOW),
    st.builds(FetchResult, st.just(0), st.none(), st.sampled_from(["timeout", "refused"]), at=NOW),
)
SENT = st.one_of(  # a message node's message: sent, or not
    st.builds(MessageSent, st.just(True), st.just("SM1"), at=NOW),
    st.builds(MessageSent, st.just(False), error=st.sampled_from(["21610", "timed out"]), at=NOW),
)
RECORDINGS = st.builds(Recorded, st.text(max_size=10), st.floats(0, 120), at=NOW)
TRANSFER_RESULTS = st.builds(
    TransferEnded,
    st.sampled_from(["completed", "busy", "no-answer", "failed", "leave", "hangup", "other"]),
    at=NOW,
)
STORED = st.builds(
    RecordingStatus,
    st.sampled_from(["completed", "failed", "absent"]),
    st.text(max_size=10),
    at=NOW,
)


@functools.cache  # strategies are built once: building them is what costs in hypothesis
def events(name: str) -> st.SearchStrategy[Event]:
    """Any event at all, with speech made of the flow's phrases and other words."""
    flow = compiled(name)
    said = st.lists(
        st.one_of(st.sampled_from(phrases(flow)), st.sampled_from(WORDS), st.text(max_size=8)),
        max_size=4,
    ).map(" ".join)
    return st.one_of(
        st.builds(Digits, st.text("0123456789*#", max_size=10), at=NOW),
        st.builds(Speech, said, st.floats(0, 1), at=NOW),
        st.builds(NoInput, at=NOW),
        FETCH_RESULTS,
        SENT,
        RECORDINGS,
        TRANSFER_RESULTS,
        STORED,
        st.builds(HangUp, at=NOW),
    )


def answers(wait: act.Action) -> st.SearchStrategy[Event]:
    """Events that fit what the call waits for, so random calls get deep into the flow."""
    if isinstance(wait, act.Fetch):
        return FETCH_RESULTS
    if isinstance(wait, act.Message):
        return SENT
    if isinstance(wait, act.Record):
        return RECORDINGS
    if isinstance(wait, act.Transfer):
        return TRANSFER_RESULTS
    assert isinstance(wait, act.Listen)
    return _answers(wait)


@functools.cache
def _answers(wait: act.Listen) -> st.SearchStrategy[Event]:
    if wait.keys:  # a menu (or a yes/no confirmation)
        keys = st.sampled_from(wait.keys).map(lambda keys: Digits(keys, at=0.0))
        said = st.builds(Speech, st.sampled_from(wait.phrases or ("hm",)), st.floats(0, 1), at=NOW)
        return st.one_of(keys, said, st.builds(NoInput, at=NOW))
    digits = st.one_of(
        st.integers(max(wait.min_digits - 1, 0), wait.max_digits + 1).flatmap(
            lambda n: st.text("0123456789", min_size=n, max_size=n)
        ),
        # account and card numbers are often validated with `luhn`
        st.text("0123456789", min_size=wait.min_digits - 1, max_size=wait.max_digits - 1).map(
            with_check_digit
        ),
    )
    keyed = st.tuples(digits, st.sampled_from(["", wait.finish_on])).map(
        lambda t: Digits("".join(t), at=0.0)
    )
    words = digits.map(lambda d: Speech(" ".join(SPOKEN[int(c)] for c in d), at=0.0))
    return st.one_of(keyed, words, st.builds(NoInput, at=NOW))


def with_check_digit(digits: str) -> str:
    """`digits` plus the Luhn check digit that makes the whole pass `value | luhn`."""
    return next(digits + d for d in "0123456789" if luhn(digits + d))


SPOKEN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def check_step(before: Session, event: Event, after: Session, actions: list[act.Action]) -> None:
    """What must hold after every step."""
    if before.ended:
        assert actions == [] and after == before
        return
    if before.outcome is not None:  # over, but its recording is awaited: nothing is said
        assert actions == [] and after.outcome == before.outcome
        assert after.ended == isinstance(event, RecordingStatus)
        return
    if after.outcome is not None:
        assert after.outcome in OUTCOMES
        ends = [a for a in actions if isinstance(a, act.Hangup) or (isinstance(a, act.Transfer))]
        if isinstance(event, HangUp):
            assert ends == []
            assert after.outcome == ("transferred" if after.transfer else "abandoned")
        else:
            end = ends[-1]
            if isinstance(end, act.Transfer):
                assert after.outcome == "transferred"
            else:
                assert end.outcome == after.outcome
        if after.transfer is not None or after.callback is not None:  # an agent was tried
            assert after.outcome == "transferred"
        if ends:  # nothing to wait for after the call ended
            assert not any(isinstance(a, WAITS) for a in actions[actions.index(ends[-1]) + 1 :])
        assert after.waiting is None
        return
    assert not any(isinstance(a, act.Hangup) for a in actions)
    if after.waiting != "transfer":
        assert not any(isinstance(a, act.Transfer) for a in actions)
    if not actions:  # the event did not fit what the call waits for: keep waiting
        assert (after.node, after.waiting) == (before.node, before.waiting)
        assert after.vars == before.vars
        return
    waits = [a for a in actions if isinstance(a, WAITS)]
    assert len(waits) == 1 and actions[-1] is waits[0], actions
    assert after.waiting in WAITING_FOR[type(waits[0])]
    assert after.node is not None and after.node in after.path


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_random_callers_never_break_a_call(name, data):
    flow = compiled(name)
    at = data.draw(TIMES, label="at")
    session = new_session(flow, "prop")
    # an outbound call may be answered by a machine: the flow's voicemail, or a hang-up
    answered_by = data.draw(st.sampled_from(["", "human", "machine_end_beep", "fax"]))
    started = CallStarted("+15550001", "+15550100", answered_by=answered_by, at=at)
    session, actions = step(flow, session, started)
    assert not session.ended or session.outcome in OUTCOMES
    ended_by = [a for a in actions if isinstance(a, act.Hangup)]
    wait = actions[-1] if actions else None
    for _ in range(data.draw(st.integers(0, 40), label="events")):
        fits = isinstance(wait, WAITS) and not session.ended and data.draw(st.integers(0, 9)) < 8
        if session.outcome is not None and not session.ended:
            event = data.draw(STORED)  # the call is over: its recording's status is awaited
        else:
            event = data.draw(answers(wait) if fits else events(name))  # type: ignore[arg-type]
        at += data.draw(st.integers(0, 900))  # the clock moves on: hours may open or close
        event = dataclasses.replace(event, at=at)
        passed, before = session, copy.deepcopy(session)
        session, actions = step(flow, passed, event)
        assert passed == before  # step works on a copy
        check_step(before, event, session, actions)
        ended_by += [a for a in actions if isinstance(a, act.Hangup)]
        wait = actions[-1] if actions else wait
        assert Session.from_json(session.to_json()) == session
    assert len(ended_by) <= 1  # hung up once at most (transfers the flow goes on after: many)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_pressing_zero_or_staying_silent_ends_the_call(name, data):
    flow = compiled(name)
    at = data.draw(TIMES, label="at")
    session = new_session(flow, "zero")
    session, actions = step(flow, session, CallStarted("+15550001", "+15550100", at=at))
    for _ in range(MAX_EVENTS):
        if session.ended:
            break
        wait = actions[-1] if actions else None
        event: Event
        if session.outcome is not None:  # its recording's status is awaited
            event = data.draw(STORED)
        elif isinstance(wait, act.Transfer):
            event = data.draw(TRANSFER_RESULTS)
        elif isinstance(wait, act.Listen):
            event = data.draw(st.sampled_from([Digits("0", at=0.0), NoInput(at=0.0)]))
        elif isinstance(wait, act.Fetch):
            event = data.draw(FETCH_RESULTS)
        elif isinstance(wait, act.Message):
            event = data.draw(SENT)
        else:
            assert isinstance(wait, act.Record)
            event = Recorded(data.draw(st.text(max_size=6)), 5.0, at=0.0)
        at += data.draw(st.integers(0, 60))
        event = dataclasses.replace(event, at=at)
        before = copy.deepcopy(session)
        session, actions = step(flow, session, event)
        check_step(before, event, session, actions)
    assert session.ended, f"still at {session.node} after {MAX_EVENTS} events"
    assert session.outcome in OUTCOMES
    assert session.outcome != "abandoned"
