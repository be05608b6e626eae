"""StoreHealth: which stores are unreachable, from the first failure to the next answer."""

from __future__ import annotations

import logging

import pytest

from ivr.store.health import StoreHealth


def test_a_store_is_unreachable_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    health = StoreHealth()
    assert health.problems == {} and health.reachable("sessions")
    with caplog.at_level(logging.WARNING, logger="ivr.store"):
        health.failed("sessions", "ConnectionError: refused")
        health.failed("sessions", "TimeoutError: no answer")  # logged once, the why kept fresh
        health.failed("records", "a write failed")
        assert health.problems == {
            "sessions": "TimeoutError: no answer",
            "records": "a write failed",
        }
        assert not health.reachable("sessions")
        health.answered("sessions")
        health.answered("sessions")
    assert health.problems == {"records": "a write failed"} and health.reachable("sessions")
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "the sessions store is unreachable: ConnectionError: refused",
        "the records store is unreachable: a write failed",
        "the sessions store answers again",
    ]
