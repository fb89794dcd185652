"""llmbench.stats.permutation: the p-values of comparisons, against brute force and the exact tests they equal."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_metrics_vectorised import inputs

from llmbench.metrics import METRIC_NAMES, get_metric
from llmbench.stats import Quantile, paired_bootstrap, paired_bootstrap_sums, permutation, unpaired_bootstrap


def _swap_loop_p(m, sa: np.ndarray, sb: np.ndarray, resamples: int, seed: int) -> float:
    """The paired test written plainly: swap the chosen samples' rows, recompute both corpus values."""
    moving = np.flatnonzero(np.any(sa != sb, axis=1))
    if moving.size == 0:
        return 1.0
    patterns, exact = permutation._swap_patterns(moving.size, resamples, seed)  # the module's own patterns
    observed = m.aggregate(sb) - m.aggregate(sa)
    hits = 0
    for pattern in patterns.astype(bool):
        a2, b2, swap = sa.copy(), sb.copy(), moving[pattern]
        a2[swap], b2[swap] = sb[swap], sa[swap]
        hits += abs(m.aggregate(b2) - m.aggregate(a2)) >= abs(observed) * (1 - 1e-9) - 1e-12
    return hits / len(patterns) if exact else (hits + 1) / (len(patterns) + 1)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_paired_p_equals_the_plain_swap_loop(name):
    m = get_metric(name)
    a, b, refs = inputs(name)
    sa, sb = np.asarray(m.sample_stats(a, refs), float), np.asarray(m.sample_stats(b, refs), float)
    for resamples in (300, 20000):  # 14 samples: random patterns, then every one of the 2^14
        got = permutation.paired_sums_p(sa, sb, m.aggregate_many, resamples, seed=4)
        assert got == pytest.approx(_swap_loop_p(m, sa, sb, resamples, 4), abs=1e-12)
    few = slice(0, 6)  # 6 samples: every one of the 2^k patterns, an exact test
    got = permutation.paired_sums_p(sa[few], sb[few], m.aggregate_many, 1000, seed=0)
    assert got == pytest.approx(_swap_loop_p(m, sa[few], sb[few], 1000, 0), abs=1e-12)


def _em_rows(n: int, worse: int, better: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact-match rows (100 = right) of two systems on n samples: ``worse`` lost by b, ``better`` won."""
    a = np.full((n, 1), 100.0)
    b = a.copy()
    b[:worse] = 0.0
    a[worse:worse + better] = 0.0
    return a, b


@pytest.mark.parametrize("worse, better, exact_p", [
    (4, 0, 2 / 2 ** 4),  # four changed answers out of 100: 0.125, not "significant"
    (5, 0, 2 / 2 ** 5),
    (7, 1, 2 * (1 + 8) / 2 ** 8),  # the two-sided sign test on 8 discordant pairs: 0.0703
    (9, 2, 2 * (1 + 11 + 55) / 2 ** 11),  # 0.0654: 2^11 patterns, still enumerated
])
def test_few_discordant_samples_give_the_exact_sign_test(worse, better, exact_p):
    m = get_metric("exact_match")
    a, b = _em_rows(100, worse, better)
    d = paired_bootstrap_sums(a, b, m.aggregate_many, statistic=m.aggregate)
    assert d.p_value == pytest.approx(exact_p) and not d.significant
    assert paired_bootstrap(a[:, 0], b[:, 0]).p_value == pytest.approx(exact_p)  # the mean's fast path


def test_many_discordant_samples_are_significant_and_identical_ones_never():
    m = get_metric("exact_match")
    a, b = _em_rows(100, 12)
    d = paired_bootstrap_sums(a, b, m.aggregate_many, statistic=m.aggregate)
    assert d.p_value < 0.01 and d.significant  # 2 / 2^12 exact: every one of the 4096 patterns
    same = paired_bootstrap_sums(a, a, m.aggregate_many, statistic=m.aggregate)
    assert same.p_value == 1.0 and not same.significant


def exact_permutation_p(a, b, statistic) -> float:
    """The two-sided permutation p by brute force over every split of the pooled values."""
    pooled, nb = list(a) + list(b), len(b)
    observed = abs(statistic(b) - statistic(a))
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), nb):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        hits += abs(statistic([pooled[i] for i in chosen]) - statistic(rest)) >= observed * (1 - 1e-9) - 1e-12
    return hits / total


@pytest.mark.parametrize("statistic", [np.mean, np.median, Quantile(90)])
def test_unpaired_p_is_the_exact_permutation_test_when_it_can_enumerate(statistic):
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(-3, 0.3, 5), rng.lognormal(-2.8, 0.3, 6)  # C(11, 6) = 462 splits
    exact = exact_permutation_p(a, b, lambda x: float(statistic(np.asarray(x))))
    assert unpaired_bootstrap(a, b, statistic=statistic).p_value == pytest.approx(max(exact, 2 / 462))


def test_high_percentiles_hold_their_level_under_the_null():
    """Both runs drawn from one distribution: a p99 test at 0.05 must not reject much more often than 5%
    (the bootstrap's own p did in 11-14% of such trials with 8-50 timings a side)."""
    rng = np.random.default_rng(11)
    rejections = 0
    trials = 200
    for t in range(trials):
        a, b = rng.lognormal(-3, 0.5, 20), rng.lognormal(-3, 0.5, 20)
        rejections += unpaired_bootstrap(a, b, statistic=Quantile(99), seed=t, resamples=400).p_value < 0.05
    assert rejections / trials <= 0.07
