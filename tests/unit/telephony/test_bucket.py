"""How fast a WebSocket peer may send: a token bucket of `rate` a second, a second's burst."""

from __future__ import annotations

from ivr.telephony.bucket import TokenBucket


def test_a_burst_of_a_seconds_worth_is_taken_and_no_more() -> None:
    bucket = TokenBucket(10, now=0.0)
    assert [bucket.take(0.0) for _ in range(11)] == [True] * 10 + [False]


def test_the_rate_is_taken_for_ever_and_more_is_not() -> None:
    steady, fast = TokenBucket(50, now=0.0), TokenBucket(50, now=0.0)
    assert all(steady.take(n / 50) for n in range(50 * 60))  # Twilio's 50 frames a second
    taken = [fast.take(n / 100) for n in range(100 * 60)]  # twice that, for a minute
    assert not all(taken)
    assert sum(taken) <= 50 * 60 + 50  # a minute at the rate, plus one burst


def test_a_rate_of_0_takes_everything() -> None:
    bucket = TokenBucket(0, now=0.0)
    assert all(bucket.take(0.0) for _ in range(10_000))
