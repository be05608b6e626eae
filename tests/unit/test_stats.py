"""The statistics of experiments against reference values: published Wilson intervals,
Fisher's tea-tasting table, a two-proportion z-test and a sample size worked by hand
(with the standard library's normal distribution, not scipy's); and properties that
hold for any counts."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.stats import fisher_exact, sample_size, two_proportion_z, verdict, wilson

NORMAL = NormalDist()


@pytest.mark.parametrize(
    "successes, trials, low, high",
    [  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson, no CC)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_intervals_match_the_published_ones(successes, trials, low, high):
    got = wilson(successes, trials)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_by_hand_at_90_percent():
    z = NORMAL.inv_cdf(0.95)
    p, n = 0.3, 50
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson(15, 50, confidence=0.90) == pytest.approx((centre - half, centre + half))


def test_wilson_without_trials_says_nothing_is_known():
    assert wilson(0, 0) == (0.0, 1.0)


def test_fisher_on_the_lady_tasting_tea():
    """Fisher's table: 3 of 4 milk-first cups named right. The tables with those margins
    have probabilities 1, 16, 36, 16, 1 in 70; two-sided, the ones no likelier than the
    observed one sum to 34/70 (one-sided it is 17/70)."""
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(34 / 70)
    assert fisher_exact(4, 4, 0, 4) == pytest.approx(2 / 70)


def test_two_proportion_z_by_hand():
    """45/100 against 30/100: pooled p = 0.375, se = sqrt(0.375 * 0.625 * 2/100),
    z = 2.1909, two-sided p = 0.0285."""
    se = math.sqrt(0.375 * 0.625 * (1 / 100 + 1 / 100))
    expected = 2 * (1 - NORMAL.cdf(0.15 / se))
    assert two_proportion_z(45, 100, 30, 100) == pytest.approx(expected)
    assert expected == pytest.approx(0.0285, abs=5e-5)


def test_two_proportion_z_when_it_cannot_tell():
    assert two_proportion_z(0, 0, 5, 10) == 1.0
    assert two_proportion_z(10, 10, 7, 7) == 1.0  # every call a success: no spread


def test_sample_size_by_hand():
    """15% against 25%, alpha 0.05 two-sided, power 0.8:
    (1.95996 * sqrt(2 * 0.2 * 0.8) + 0.84162 * sqrt(0.15 * 0.85 + 0.25 * 0.75))^2 / 0.1^2
    = 249.98, so 250 per group."""
    assert sample_size(0.15, 0.25) == 250
    assert sample_size(0.25, 0.15) == 250
    assert sample_size(0.3, 0.3) is None


def test_a_significant_difference():
    found = verdict({"telebanking": (45, 100), "telebanking_voice": (30, 100)}, what="containment")
    assert (found.test, found.significant, found.more_calls) == ("z", True, 0)
    assert found.p_value == pytest.approx(two_proportion_z(45, 100, 30, 100))
    assert found.sentence == (
        "Significant (p = 0.0285, two-proportion z-test): containment 45.0% on telebanking "
        "against 30.0% on telebanking_voice."
    )


def test_not_yet_says_how_many_more_calls():
    found = verdict({"telebanking": (40, 100), "telebanking_voice": (45, 100)}, what="containment")
    needed = sample_size(0.40, 0.45)
    assert (found.test, found.significant, found.more_calls) == ("z", False, needed - 100)
    assert found.sentence == (
        "Not yet (p = 0.474, two-proportion z-test): containment 40.0% on telebanking against "
        f"45.0% on telebanking_voice; at this difference, about {needed - 100:,} more calls per "
        "variant would show it with 80% power."
    )


def test_small_counts_use_the_exact_test():
    found = verdict({"a": (3, 4), "b": (1, 4)})
    assert (found.test, found.significant) == ("fisher", False)
    assert found.p_value == pytest.approx(34 / 70)
    assert found.sentence.startswith("Not yet (p = 0.486, Fisher's exact test):")
    # plenty of calls, but rare successes: an expected count below 5 still means exact
    assert verdict({"a": (2, 400), "b": (6, 400)}).test == "fisher"
    assert verdict({"a": (20, 400), "b": (30, 400)}).test == "z"


def test_no_difference_and_no_calls_yet():
    same = verdict({"a": (30, 100), "b": (30, 100)})
    assert (same.significant, same.more_calls) == (False, None)
    assert "no difference so far" in same.sentence
    empty = verdict({"a": (3, 10), "b": (0, 0)})
    assert (empty.significant, empty.more_calls, empty.sentence) == (
        False,
        None,
        "Not yet: no calls on b so far.",
    )


def test_a_verdict_compares_two_variants():
    with pytest.raises(ValueError, match="two variants"):
        verdict({"a": (1, 2), "b": (1, 2), "c": (1, 2)})
    with pytest.raises(ValueError, match="within 0..trials"):
        verdict({"a": (3, 2), "b": (1, 2)})


counts = st.integers(0, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_contains_the_rate_and_stays_in_0_1(count, confidence):
    successes, trials = count
    low, high = wilson(successes, trials, confidence)
    assert 0.0 <= low <= high <= 1.0
    if trials:
        assert low <= successes / trials <= high


@given(counts, counts)
def test_p_values_are_probabilities_and_symmetric(one, two):
    for test in (two_proportion_z, fisher_exact):
        p = test(*one, *two)
        assert 0.0 <= p <= 1.0 + 1e-9
        assert p == pytest.approx(test(*two, *one))
    found = verdict({"a": one, "b": two})
    assert found.significant == (found.p_value < 0.05)
    assert found.more_calls is None or found.more_calls >= 0
