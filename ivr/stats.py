"""Statistics for comparing variants: intervals, tests and a verdict in plain words.

Pure functions over counts (successes out of trials), for `ivr report --experiment`:
Wilson score intervals, the pooled two-proportion z-test, Fisher's exact test when
counts are small, and the calls per variant a difference needs to be seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.8
MIN_EXPECTED = 5  # below this expected count in any cell, the z-test's normal curve is off


def _z(p: float) -> float:
    """The standard normal quantile of `p`."""
    return NormalDist().inv_cdf(p)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a proportion; (0, 1) when there are no trials. Unlike
    p ± z·se it stays within [0, 1] and keeps its coverage near 0 and 1 and for few calls."""
    _check(successes, trials)
    if trials == 0:
        return 0.0, 1.0
    z = _z(1 - (1 - confidence) / 2)
    p, n = successes / trials, trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at 0 or n successes one end is exactly 0 or 1: keep rounding from moving it
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def two_proportion_z(s1: int, n1: int, s2: int, n2: int) -> float:
    """The two-sided p-value of the pooled two-proportion z-test of s1/n1 against s2/n2;
    1.0 when it cannot tell (a variant without trials, or every trial the same)."""
    _check(s1, n1)
    _check(s2, n2)
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (s1 / n1 - s2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))  # 2 * P(Z > |z|), exact in the far tail


def fisher_exact(s1: int, n1: int, s2: int, n2: int) -> float:
    """The two-sided p-value of Fisher's exact test on the 2x2 table of successes and
    failures: exact for any counts, the test to use when they are small."""
    from scipy import stats as sps  # 2 s to import: only when an exact test runs

    _check(s1, n1)
    _check(s2, n2)
    return float(sps.fisher_exact([[s1, n1 - s1], [s2, n2 - s2]]).pvalue)


def sample_size(p1: float, p2: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Trials per variant for a two-sided test at `alpha` to find p1 != p2 with `power`
    (the usual normal-approximation formula, no continuity correction); None when
    p1 == p2, as no number of calls shows a difference that is not there."""
    if p1 == p2:
        return None
    mean = (p1 + p2) / 2
    a = _z(1 - alpha / 2) * math.sqrt(2 * mean * (1 - mean))
    b = _z(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil((a + b) ** 2 / (p1 - p2) ** 2)


@dataclass(frozen=True)
class Verdict:
    """Whether two variants differ: made by `verdict`, printed by `ivr report`."""

    p_value: float
    test: str  # "fisher" (exact) or "z" (two-proportion, pooled)
    significant: bool
    more_calls: int | None  # per variant, at the observed difference; None: cannot say
    sentence: str


TEST_NAMES = {"fisher": "Fisher's exact test", "z": "two-proportion z-test"}


def verdict(
    counts: Mapping[str, tuple[int, int]],
    alpha: float = ALPHA,
    power: float = POWER,
    what: str = "success",
) -> Verdict:
    """Compare two variants, each `name: (successes, trials)`: the exact test when any
    expected cell count is below 5, else the z-test; significant at `alpha`; if not, the
    more calls each variant needs to reach `power` at the observed rates. `what` names a
    success in the sentence ("containment", "self-service resolution")."""
    if len(counts) != 2:
        raise ValueError(f"a verdict compares two variants, got {len(counts)}")
    (name1, (s1, n1)), (name2, (s2, n2)) = counts.items()
    _check(s1, n1)
    _check(s2, n2)
    test = "fisher" if _small(s1, n1, s2, n2) else "z"
    p = fisher_exact(s1, n1, s2, n2) if test == "fisher" else two_proportion_z(s1, n1, s2, n2)
    significant = p < alpha
    how = f"p = {p:.3g}, {TEST_NAMES[test]}"
    empty = [name for name, (_, n) in counts.items() if n == 0]
    if empty:
        return Verdict(p, test, False, None, f"Not yet: no calls on {empty[0]} so far.")
    r1, r2 = s1 / n1, s2 / n2
    rates = f"{what} {r1:.1%} on {name1} against {r2:.1%} on {name2}"
    if significant:
        return Verdict(p, test, True, 0, f"Significant ({how}): {rates}.")
    needed = sample_size(r1, r2, alpha, power)
    if needed is None:
        sentence = (
            f"Not yet ({how}): {rates}, no difference so far, so no number of calls "
            "can be named that would show one."
        )
        return Verdict(p, test, False, None, sentence)
    more = max(needed - min(n1, n2), 0)
    if more == 0:  # the z-test's power formula and an exact test disagree at the margin
        tail = "the calls so far should have shown a difference this large; keep collecting."
    else:
        tail = (
            f"at this difference, about {more:,} more call{'s' if more != 1 else ''} per "
            f"variant would show it with {power:.0%} power."
        )
    return Verdict(p, test, False, more, f"Not yet ({how}): {rates}; {tail}")


def _small(s1: int, n1: int, s2: int, n2: int) -> bool:
    """Whether any cell of the 2x2 table expects fewer than MIN_EXPECTED counts."""
    total = n1 + n2
    if total == 0:
        return True
    wins = s1 + s2
    return any(
        rows * cols / total < MIN_EXPECTED for rows in (n1, n2) for cols in (wins, total - wins)
    )


def _check(successes: int, trials: int) -> None:
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..trials, got {successes} of {trials}")
