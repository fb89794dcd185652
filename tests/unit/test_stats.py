"""llmbench.stats: vectorised bootstraps give the numbers the per-resample loops gave (RECORDED below)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_permutation import exact_permutation_p

import llmbench.stats.bootstrap as bootstrap
import llmbench.stats.resampling as resampling
from llmbench.stats import (
    Quantile,
    Summary,
    bootstrap_ci,
    bootstrap_sums,
    paired_bootstrap,
    paired_bootstrap_sums,
    resample_counts,
    resampled_sums,
    resampled_values,
    smallest_unpaired_p,
    sorted_quantile,
    unpaired_bootstrap,
)
from llmbench.stats.significance import _STATISTICS, latency_delta

# inputs (do not edit: RECORDED depends on them)
LAT_A = [0.05 * (1 + 0.3 * math.sin(1.3 * i) + 0.1 * (i % 4)) for i in range(25)]
LAT_B = [0.06 * (1 + 0.25 * math.cos(0.7 * i) + 0.05 * (i % 5)) for i in range(31)]
LAT_TIES = [round(v, 2) for v in LAT_B]

# Values of the per-resample implementation (llmbench.stats before vectorisation) on the inputs above.
# PairedDelta fields: baseline, candidate, delta, ci_low, ci_high, p_value, n.
RECORDED = {
    'unpaired_mean': [0.05714488823348698, 0.06647039492770432, 0.00932550669421734,
        0.003054639880262382, 0.01482203656176808, 2 / math.comb(56, 25), 25],
    'unpaired_ties_mean': [0.06612903225806452, 0.05714488823348698, -0.00898414402457754,
        -0.014840706400627518, -0.0029526915631336477, 0.002, 25],
    'unpaired_p50': [0.05520090057173704, 0.06530060793056798, 0.010099707358830944,
        -0.0010071672903751033, 0.018627333175818342, 0.125, 25],
    'unpaired_ties_p50': [0.07, 0.05520090057173704, -0.01479909942826297,
        -0.019977425459957218, 0.0014383767571940417, 0.092, 25],
    'unpaired_p90': [0.07236444900157253, 0.08098091950865254, 0.008616470507080004,
        0.0009169019542059759, 0.015537757840589597, 0.025, 25],
    'unpaired_ties_p90': [0.08, 0.07236444900157253, -0.0076355509984274705,
        -0.013787716249143364, 0.004083098045794015, 0.084, 25],
    'unpaired_p99': [0.07864395643607916, 0.08609597131678037, 0.007452014880701213,
        0.0017893197302637253, 0.016309495881540084, 0.01, 25],
    'unpaired_ties_p99': [0.087, 0.07864395643607916, -0.008356043563920834,
        -0.017213524564759705, -0.00019842053588080277, 0.006, 25],
    'unpaired_default': [0.05520090057173704, 0.06530060793056798, 0.010099707358830944,
        -0.0006743782725067966, 0.019789125197026927, 0.098, 25],
    'unpaired_tiny': [0.05, 0.07447263280926732, 0.024472632809267314,
        0.018549507143503605, 0.024999999999999994, 0.5, 1],  # p: the floor 2 / C(1 + 3, 1)
    'ci_mean': [0.05242132741605584, 0.061696080888110065],
    'ci_median': [0.05804360591842869, 0.07380092872563644],
    'summary': [0.06647039492770432, 0.06530060793056798, 0.08098091950865254,
        0.08609597131678037, 0.0626676623121921, 0.07028928748221835, 31],
    'paired_mean': [0.0573882111781854, 0.06734139137909854, 0.009953180200913146,
        0.0013207563981426649, 0.018983123453914147, 0.013333333333333334, 20],
    'paired_median': [0.05645515371677881, 0.06729729005039244, 0.010842136333613625,
        -0.0017029128150230653, 0.023277958810944552, 0.1, 20],
    'latency_mean': [0.05714488823348698, 0.06647039492770432, 0.00932550669421734,
        0.0038721617455264694, 0.01576154509901482, 2 / math.comb(56, 25), 25],
    'latency_p50': [0.05520090057173704, 0.06530060793056798, 0.010099707358830944,
        -0.0003902891221953161, 0.019692229030657926, 0.088, 25],
    'latency_p90': [0.07236444900157253, 0.08098091950865254, 0.008616470507080004,
        0.0027612804269345897, 0.01707896380150038, 0.008, 25],
    'latency_p99': [0.07864395643607916, 0.08609597131678037, 0.007452014880701213,
        0.0032059817517798854, 0.01541217183030877, 0.016, 25],
    'latency_tpot': [0.05, 0.04, -0.010000000000000002, -0.010000000000000002, -0.009999999999999995,
                     2 / math.comb(56, 25), 25],
}


def _fields(d) -> list:
    return [d.baseline, d.candidate, d.delta, d.ci_low, d.ci_high, d.p_value, d.n]


def assert_recorded(got, expected, tol=1e-9):
    """Values and CIs as recorded; a delta's p-value (index 5) is not: it was the bootstrap's and is now a
    randomization test's (llmbench.stats.permutation; tests/unit/test_permutation.py checks it), n exactly."""
    got, expected = list(got), list(expected)
    if len(expected) == 7:
        assert got[6] == expected[6]
        got, expected = got[:5], expected[:5]
    assert np.allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), rtol=tol, atol=tol)


# ---------------------------------------------------------------- same numbers as before


@pytest.mark.parametrize("name", ["mean", "p50", "p90", "p99"])
def test_unpaired_bootstrap_unchanged(name):
    d = unpaired_bootstrap(LAT_A, LAT_B, statistic=_STATISTICS[name], seed=7, resamples=400)
    assert_recorded(_fields(d), RECORDED[f"unpaired_{name}"])
    d = unpaired_bootstrap(LAT_TIES, LAT_A, statistic=_STATISTICS[name])
    assert_recorded(_fields(d), RECORDED[f"unpaired_ties_{name}"])


def test_unpaired_bootstrap_defaults_and_tiny_sides_unchanged():
    assert_recorded(_fields(unpaired_bootstrap(LAT_A, LAT_B)), RECORDED["unpaired_default"])
    assert_recorded(_fields(unpaired_bootstrap(LAT_A[:1], LAT_B[:3], seed=2, resamples=200)),
                    RECORDED["unpaired_tiny"])


def test_bootstrap_ci_summary_and_paired_unchanged():
    assert_recorded(bootstrap_ci(LAT_A, seed=4), RECORDED["ci_mean"])
    assert_recorded(bootstrap_ci(np.asarray(LAT_A)[:, None], seed=4), RECORDED["ci_mean"])
    assert_recorded(bootstrap_ci(LAT_B, statistic=np.median, resamples=300, seed=1), RECORDED["ci_median"])
    assert_recorded(list(Summary.from_values(LAT_B).to_dict().values()), RECORDED["summary"])
    assert_recorded(_fields(paired_bootstrap(LAT_A[:20], LAT_B[:20], seed=9, resamples=300)),
                    RECORDED["paired_mean"])
    assert_recorded(_fields(paired_bootstrap(LAT_A[:20], LAT_B[:20], statistic=np.median, seed=9, resamples=300)),
                    RECORDED["paired_median"])


def test_latency_delta_unchanged():
    a = {i: {"ttft_s": v, "e2e_s": v + 0.5, "new_tokens": 11} for i, v in enumerate(LAT_A)}
    b = {i: {"ttft_s": v, "e2e_s": v + 0.4, "new_tokens": 11} for i, v in enumerate(LAT_B)}
    for name in ("mean", "p50", "p90", "p99"):
        assert_recorded(_fields(latency_delta("ttft_s", a, b, statistic=name, seed=3, resamples=250)),
                        RECORDED[f"latency_{name}"])
    assert_recorded(_fields(latency_delta("tpot_s", a, b, seed=3, resamples=250)), RECORDED["latency_tpot"])


# ---------------------------------------------------------------- the vectorised pieces


def test_resample_counts_give_resampled_sums():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 50, size=(17, 3)).astype(float)
    idx = rng.integers(0, 17, size=(40, 17))
    counts = resample_counts(idx, 17)
    assert counts.shape == (40, 17)
    assert np.array_equal(counts, np.stack([np.bincount(row, minlength=17) for row in idx]))
    assert np.array_equal(counts @ values, values[idx].sum(axis=1))
    assert np.array_equal(resampled_sums(values, 40, 5), values[resampling.resample_indices(17, 40, 5)].sum(axis=1))


def test_large_inputs_take_the_blocked_path(monkeypatch):
    rng = np.random.default_rng(1)
    values = rng.integers(0, 9, size=(23, 4)).astype(float)
    small = resampled_sums(values, 100, 3)
    a, b = rng.lognormal(size=40), rng.lognormal(size=35)
    expected = {name: unpaired_bootstrap(a, b, statistic=f, resamples=100, seed=3) for name, f in _STATISTICS.items()}
    # nothing cached, everything evaluated a few rows at a time
    monkeypatch.setattr(resampling, "_BLOCK", 50)
    monkeypatch.setattr(resampling, "_CACHE", 10)
    calls = []
    original = resampling.resample_counts
    monkeypatch.setattr(resampling, "resample_counts", lambda idx, n: calls.append(len(idx)) or original(idx, n))
    assert np.array_equal(resampled_sums(values, 100, 3), small)
    assert calls == [2] * 50  # 50 // 23 rows a block
    for name, f in _STATISTICS.items():
        assert unpaired_bootstrap(a, b, statistic=f, resamples=100, seed=3) == expected[name]


@pytest.mark.parametrize("percent", [None, 0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100])
def test_quantile_equals_numpy_exactly(percent):
    q = Quantile(percent)
    rng = np.random.default_rng(3)
    for n in range(1, 45):
        for rows in (rng.lognormal(0, 0.3, (30, n)), np.round(rng.normal(size=(30, n)), 1)):
            expected = np.median(rows, axis=1) if percent is None else np.percentile(rows, percent, axis=1)
            assert np.array_equal(q(rows, axis=1), expected)
            assert q(rows[0]) == (np.median(rows[0]) if percent is None else np.percentile(rows[0], percent))
    rows = rng.normal(size=(5, 8))
    rows[2, 3] = np.nan
    expected = np.median(rows, axis=1) if percent is None else np.percentile(rows, percent, axis=1)
    assert np.array_equal(q(rows, axis=1), expected, equal_nan=True)


def test_interval_equals_numpy_quantile():
    rng = np.random.default_rng(4)
    for size in (1, 2, 3, 7, 40, 999, 1000, 1001, 5000):
        for confidence in (0.95, 0.9, 0.99, 0.5):
            dist = rng.normal(size=size)
            alpha = (1 - confidence) / 2
            assert bootstrap._interval(dist, confidence) == tuple(np.quantile(dist, [alpha, 1 - alpha]))
    assert np.array_equal(sorted_quantile(np.arange(5.0), 0.3), np.quantile(np.arange(5.0), 0.3))


def test_statistic_without_axis_and_baseline_reuse():
    def p90(values):  # no axis argument: evaluated once per resample
        return float(np.percentile(values, 90))

    fast = unpaired_bootstrap(LAT_A, LAT_B, statistic=Quantile(90), seed=5, resamples=300)
    assert unpaired_bootstrap(LAT_A, LAT_B, statistic=p90, seed=5, resamples=300) == fast
    # the baseline's resamples are the generator's first draw whatever the candidate: reused safely
    for na, nb in ((5, 7), (25, 31), (1, 3), (30, 2)):
        assert np.array_equal(resampling.unpaired_indices(na, nb, 100, 4)[0], resampling.resample_indices(na, 100, 4))
    other = unpaired_bootstrap(LAT_A, LAT_TIES, statistic=Quantile(90), seed=5, resamples=300)
    resampling._baseline_side.cache_clear()
    assert unpaired_bootstrap(LAT_A, LAT_TIES, statistic=Quantile(90), seed=5, resamples=300) == other
    assert unpaired_bootstrap(LAT_A, LAT_B, statistic=Quantile(90), seed=5, resamples=300) == fast


def test_sums_paths_equal_row_paths():
    rng = np.random.default_rng(6)
    a, b = rng.random((20, 2)), rng.random((20, 2))

    def ratio(rows):
        s = np.asarray(rows).sum(axis=0)
        return float(s[0] / s[1])

    def ratio_many(summed, n):
        return summed[:, 0] / summed[:, 1]

    assert np.allclose(bootstrap_sums(a, ratio_many, resamples=300, seed=2),
                       bootstrap_ci(a, statistic=ratio, resamples=300, seed=2), rtol=1e-12)
    fast = paired_bootstrap_sums(a, b, ratio_many, resamples=300, seed=2)
    loop = paired_bootstrap(a, b, statistic=ratio, resamples=300, seed=2)
    assert np.allclose(_fields(fast)[:5], _fields(loop)[:5], rtol=1e-12)
    assert (fast.p_value, fast.n) == (loop.p_value, loop.n)
    rows = resampling.resample_indices(20, 300, 2)
    assert np.allclose(resampled_values(a, ratio_many, 300, 2), [ratio(a[i]) for i in rows])
    assert bootstrap_sums(a[:1], ratio_many) == (ratio(a[:1]), ratio(a[:1]))


def test_errors_unchanged():
    assert bootstrap_ci([]) == (None, None)
    assert bootstrap_sums(np.zeros((0, 2)), lambda s, n: s[:, 0]) == (None, None)
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])
    with pytest.raises(ValueError):
        paired_bootstrap_sums([[1.0]], [[1.0], [2.0]], lambda s, n: s[:, 0])
    with pytest.raises(ValueError):
        unpaired_bootstrap([], [1.0])


# ---------------------------------------------------------------- too few samples to be significant


@pytest.mark.parametrize("n", [1, 2, 5])
def test_few_pairs_all_moving_one_way_are_not_significant(n):
    # every resample moves the same way (p = 0 by counting), but an exact sign-flip test can't go below 2/2**n
    d = paired_bootstrap([0.0] * n, [100.0] * n)
    assert d.ci_low == d.ci_high == 100.0
    assert d.p_value == pytest.approx(min(1.0, 2 / 2 ** n)) and not d.significant


def test_six_pairs_all_moving_one_way_are_significant():
    d = paired_bootstrap([0.0] * 6, [100.0] * 6)
    assert d.p_value == pytest.approx(2 / 64) and d.significant


def test_corpus_level_paired_test_has_the_same_floor():
    rows = np.array([[1.0, 2.0]] * 3)
    d = paired_bootstrap_sums(rows, rows * 2, lambda sums, n: sums[:, 0] / sums[:, 1] * 0 + sums[:, 0])
    assert d.p_value == pytest.approx(2 / 8) and not d.significant


def test_unpaired_floor_is_the_exact_permutation_bound():
    assert smallest_unpaired_p(1, 1) == 1.0
    assert smallest_unpaired_p(3, 3) == pytest.approx(2 / 20)
    assert smallest_unpaired_p(4, 4) == pytest.approx(2 / 70)
    # a large group does not lift the floor set by a tiny one: 1 value against 1000 is at best 2/1001
    assert smallest_unpaired_p(1, 1000) == pytest.approx(2 / 1001)
    assert smallest_unpaired_p(600, 600) == 0.0  # 2 / C(1200, 600) is below the smallest float
    lone = unpaired_bootstrap([0.05], [0.5] * 1000)
    assert lone.p_value == pytest.approx(2 / 1001) and lone.p_value > 0
    one = unpaired_bootstrap([0.05], [0.5])
    assert one.p_value == 1.0 and not one.significant
    four_a, four_b = [0.05, 0.051, 0.049, 0.05], [0.5, 0.51, 0.49, 0.5]
    four = unpaired_bootstrap(four_a, four_b, statistic=np.mean)
    assert four.p_value == pytest.approx(2 / 70) and four.significant
    # the median ties: 4 of the 70 splits are as extreme as the observed one, so p = 4/70 (exact)
    median = unpaired_bootstrap(four_a, four_b)
    assert median.p_value == pytest.approx(exact_permutation_p(four_a, four_b, np.median)) == pytest.approx(4 / 70)
    assert not median.significant


# ---------------------------------------------------------------- batches: values measured together


def test_cluster_ci_counts_a_batch_once():
    """Four answers of one batch share one TTFT: the CI is that of one value per batch, not of 4x as many."""
    per_batch = [0.10, 0.14, 0.09, 0.13, 0.11, 0.16, 0.12, 0.10]
    repeated = [v for v in per_batch for _ in range(4)]
    groups = [i // 4 for i in range(len(repeated))]
    assert bootstrap.cluster_bootstrap_mean_ci(repeated, groups) == bootstrap_ci(per_batch)
    naive_low, naive_high = bootstrap_ci(repeated)
    low, high = bootstrap.cluster_bootstrap_mean_ci(repeated, groups)
    assert high - low > 1.5 * (naive_high - naive_low)  # the copies made the naive interval far too narrow
    summary = Summary.from_values(repeated, groups=groups)
    assert (summary.ci_low, summary.ci_high) == (low, high) and summary.n == 32
    assert summary.mean == pytest.approx(np.mean(per_batch))


def test_cluster_ci_with_one_value_per_group_is_the_plain_bootstrap():
    values = [0.3, 0.1, 0.2, 0.5, 0.4]
    assert bootstrap.cluster_bootstrap_mean_ci(values, [7, 3, 9, 1, 5]) == bootstrap_ci(values)
    assert Summary.from_values(values, groups=list(range(5))) == Summary.from_values(values)
    one_batch = float(np.mean([0.2, 0.2, 0.2]))
    assert bootstrap.cluster_bootstrap_mean_ci([0.2, 0.2, 0.2], [0, 0, 0]) == (one_batch, one_batch)
    # None values are dropped together with their group label
    assert Summary.from_values([None, 0.3, 0.1], groups=[0, 1, 2]) == Summary.from_values([0.3, 0.1])


def test_latency_test_takes_one_value_per_batch():
    from llmbench.stats.significance import latency_values

    def samples(ttfts, batch_size):
        return {i: {"ttft_s": t, "batch": i // batch_size} for i, t in enumerate(ttfts)}

    base, cand = [0.050, 0.052, 0.049, 0.051], [0.060, 0.058, 0.061, 0.059]
    rep = 8  # each batch of 8 answers shares its TTFT
    base_rows, cand_rows = samples([t for t in base for _ in range(rep)], rep), samples(
        [t for t in cand for _ in range(rep)], rep)
    assert latency_values(base_rows, "ttft_s") == base
    batched = latency_delta("ttft_s", base_rows, cand_rows)
    per_batch = latency_delta("ttft_s", {i: {"ttft_s": t} for i, t in enumerate(base)},
                              {i: {"ttft_s": t} for i, t in enumerate(cand)})
    # 4 batches a side, not 32 rows: the exact permutation p over the 70 splits of 4 + 4 values
    assert batched == per_batch and batched.p_value == pytest.approx(exact_permutation_p(base, cand, np.median))
    assert batched.p_value >= 2 / 70
