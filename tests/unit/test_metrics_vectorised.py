"""Vectorised bootstrap of the metrics: aggregate_many on resampled column sums == aggregate on resampled rows.

Every metric's corpus value depends only on the column sums of its per-sample statistics (and their
number), so a bootstrap resample is one row of ``counts @ stats``. These tests check that claim metric by
metric on realistic statistics (real sentence pairs, empty predictions, zero-match resamples, hand-made
edge cases against sacrebleu itself), and that summarize / quality_delta give the numbers the row-by-row
implementation gave before (recorded in RECORDED below).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from llmbench.metrics import METRIC_NAMES, get_metric, sample_scores_all
from llmbench.metrics.base import Metric
from llmbench.metrics.text import Bleu, Chrf
from llmbench.stats import bootstrap_ci, paired_bootstrap, resample_counts
from llmbench.stats.significance import _STATS_CACHE, quality_delta, shared_stats

JSON_METRICS = ("json_precision", "json_recall", "json_f1", "json_parse_failure_rate")
TEXT_METRICS = tuple(n for n in METRIC_NAMES if n not in JSON_METRICS)
STORED_SCORE_METRICS = ("rouge1", "rouge2", "rougeL", "exact_match", "f1")

# ---------------------------------------------------------------- inputs (do not edit: RECORDED depends on them)

TEXT_REFS = [
    ["The cat is sitting on the mat.", "A cat sat on the mat."],
    ["Nothing was said."],
    ["L'été dernier, nous sommes allés à la plage à Nice.", "Nous étions à la plage près de Nice cet été."],
    ["The quick brown fox jumps over the lazy dog."],
    ["The cat is on the mat."],
    ["Numbers: 3.14 and 42!", "numbers 3.14, 42"],
    ["Il a mangé une pomme rouge.", "Il mange une pomme."],
    ["The weather is nice today."],
    ["Paris"],
    ["the Eiffel Tower", "Eiffel Tower"],
    [""],
    ["He went to the market to buy bread and milk."],
    ["Seven"],
    ["A small green house stands by the river."],
]
TEXT_A = [
    "The cat sat on the mat.", "", "L'été dernier, nous sommes allés à la plage près de Nice.",
    "A quick brown fox jumps over the lazy dog", "the the the the", "Numbers: 3.14 and 42!",
    "Il a mangé une pomme.", "completely unrelated output text here", "Paris", "Eiffel", "",
    "He went to the market to buy bread.", "7", "zz",
]
TEXT_B = [
    "A cat sat on the mat.", "Nothing.", "Nous sommes allés à la plage à Nice.",
    "The quick brown fox jumps over the lazy dog.", "The cat is on the mat.", "numbers 3.14, 42", "",
    "The weather is nice.", "paris.", "The Eiffel Tower", "something",
    "He went to the market to buy bread and milk.", "Seven", "",
]
JSON_REFS = [
    [json.dumps({"name": "Ada", "city": "London", "year": "1843"})],
    [json.dumps({"name": "Bob", "city": None})],
    [json.dumps({"a": "1", "b": "2"}), json.dumps({"a": "1"})],
    [json.dumps({})],
    [json.dumps({"x": "y"})],
    [json.dumps({"name": "Eve", "role": "admin"})],
    [json.dumps({"k": "v", "l": "w", "m": "z"})],
    [json.dumps({"q": ""})],
]
JSON_A = [
    'Here: {"name": "ada", "city": "London", "year": 1843}', '{"name": "Bob", "city": "Paris"}',
    "no json at all", "{}", '```json\n{"x": "y"}\n```', '{"name": "Eve"}', '{"k": "v", "l": "x"}', "",
]
JSON_B = [
    '{"name": "Ada"}', '{"name": "Bob"}', '{"a": "1", "b": "3"}', '{"extra": "1"}', "broken {",
    '{"name": "Eve", "role": "Admin"}', '{"k": "v", "l": "w", "m": "z"}', '{"q": null}',
]

# word salad like benchmarks/bench_report.py, built without a random generator
WORDS = "the a cat dog runs over under house tree river blue green small large quickly slowly".split()
SALAD_REFS = [[" ".join(WORDS[(7 * i + 3 * j + i * j) % len(WORDS)] for j in range(8))] for i in range(30)]
SALAD_PREDS = [" ".join(w if (i + j) % 3 else "zz" for j, w in enumerate(r[0].split()))
               for i, r in enumerate(SALAD_REFS)]


def inputs(metric: str) -> tuple[list[str], list[str], list[list[str]]]:
    """(baseline predictions, candidate predictions, references) for ``metric``."""
    if metric in JSON_METRICS:
        return JSON_A, JSON_B, JSON_REFS
    return TEXT_A, TEXT_B, TEXT_REFS


def lines(predictions, references, scores=None) -> dict[int, dict]:
    """samples.jsonl-like lines keyed by sample index."""
    out = {}
    for i, (p, r) in enumerate(zip(predictions, references)):
        out[i] = {"prediction": p, "references": list(r)}
        if scores is not None:
            out[i]["scores"] = scores[i]
    return out


# Values of the row-by-row implementation (llmbench.stats before aggregate_many), on the inputs above:
# summ: summarize(stats A, seed=3, resamples=500) -> value, ci_low, ci_high; summ_b: summarize(stats B) with
# the defaults; paired: quality_delta(A -> B, seed=5, resamples=500) -> baseline, candidate, delta, ci_low,
# ci_high, p_value, n; empty: quality_delta(A -> all-empty predictions), defaults; salad:
# quality_delta(SALAD_PREDS -> the references themselves), defaults.
RECORDED = {
    'bleu': {
        'summ': [60.30146798140639, 29.44946188513444, 85.92642819598412],
        'summ_b': [70.26955619055313, 36.320495059786296, 92.30834381035262],
        'paired': [60.30146798140639, 70.26955619055313, 9.968088209146742,
            -23.44340056549279, 42.059266738014465, 0.492, 14],
        'empty': [60.30146798140639, 0.0, -60.30146798140639, -83.71519177313063, -26.444941002480878, 0.0, 14],
        'salad': [3.1848093073478903, 100.00000000000004, 96.81519069265215,
            96.73475908329127, 96.89836854919542, 0.0, 30],
    },
    'chrf': {
        'summ': [60.93333433081438, 36.537567075677686, 81.35493057546866],
        'summ_b': [71.44972281457234, 47.175030941428105, 91.8199133285492],
        'paired': [60.93333433081438, 71.44972281457234, 10.516388483757957,
            -10.18550102404074, 35.89708873515102, 0.312, 14],
        'empty': [60.93333433081438, 0.0, -60.93333433081438, -80.42646970380079, -33.881683995105554, 0.0, 14],
        'salad': [50.77958336091433, 100.0, 49.22041663908567, 46.354781298325264, 52.188417111651944, 0.0, 30],
    },
    'ter': {
        'summ': [45.39007092198582, 26.484224470134876, 65.81201151789386],
        'summ_b': [29.78723404255319, 9.815950920245399, 56.01129032258064],
        'paired': [45.39007092198582, 29.78723404255319, -15.602836879432626, -31.539577289680892, 0.0, 0.056, 14],
        'empty': [45.39007092198582, 96.45390070921985, 51.063829787234035,
            28.82239382239383, 68.2204886664704, 0.0, 14],
        'salad': [33.33333333333333, 0.0, -33.33333333333333, -35.41666666666667, -31.25, 0.0, 30],
    },
    'rouge1': {
        'summ': [0.5326024217328565, 0.3269273480143046, 0.7718682947487294],
        'summ_b': [0.7294584500466853, 0.5357142857142857, 0.9312558356676004],
        'paired': [0.5326024217328565, 0.7294584500466853, 0.19685602831382876,
            -0.05348506530411906, 0.42342709613489654, 0.108, 14],
        'empty': [0.5326024217328565, 0.0, -0.5326024217328565, -0.7376513583035322, -0.32537863103080505, 0.0, 14],
        'salad': [0.6666666666666666, 1.0, 0.33333333333333337, 0.3125, 0.35416666666666663, 0.0, 30],
    },
    'rouge2': {
        'summ': [0.37148526077097505, 0.17134353741496602, 0.6332312925170069],
        'summ_b': [0.5469387755102041, 0.2857142857142857, 0.808265306122449],
        'paired': [0.37148526077097505, 0.5469387755102041, 0.17545351473922904,
            -0.10050382653061232, 0.42818027210884346, 0.18, 14],
        'empty': [0.37148526077097505, 0.0, -0.37148526077097505, -0.6117857142857143, -0.125, 0.0, 14],
        'salad': [0.3333333333333334, 1.0, 0.6666666666666665, 0.6428571428571427, 0.6904761904761905, 0.0, 30],
    },
    'rougeL': {
        'summ': [0.5326024217328565, 0.3269273480143046, 0.7718682947487294],
        'summ_b': [0.7294584500466853, 0.5357142857142857, 0.9312558356676004],
        'paired': [0.5326024217328565, 0.7294584500466853, 0.19685602831382876,
            -0.05348506530411906, 0.42342709613489654, 0.108, 14],
        'empty': [0.5326024217328565, 0.0, -0.5326024217328565, -0.7376513583035322, -0.32537863103080505, 0.0, 14],
        'salad': [0.6666666666666666, 1.0, 0.33333333333333337, 0.3125, 0.35416666666666663, 0.0, 30],
    },
    'exact_match': {
        'summ': [35.714285714285715, 14.285714285714286, 64.28571428571429],
        'summ_b': [57.142857142857146, 35.714285714285715, 78.74999999999983],
        'paired': [35.714285714285715, 57.142857142857146, 21.42857142857143, -7.142857142857146, 50.0, 0.252, 14],
        'empty': [35.714285714285715, 7.142857142857143, -28.571428571428573, -50.0, -7.142857142857143, 0.018, 14],
        'salad': [0.0, 100.0, 100.0, 100.0, 100.0, 0.0, 30],
    },
    'f1': {
        'summ': [59.19784580498867, 34.00793650793651, 82.53968253968254],
        'summ_b': [73.1859410430839, 53.57142857142857, 93.59977324263039],
        'paired': [59.19784580498867, 73.1859410430839, 13.988095238095234,
            -15.188492063492061, 41.38038548752834, 0.348, 14],
        'empty': [59.19784580498867, 7.142857142857143, -52.05498866213152,
            -74.40724206349206, -26.53061224489796, 0.0, 14],
        'salad': [65.56349206349208, 100.0, 34.43650793650792, 31.88711080586079, 36.75567765567765, 0.0, 30],
    },
    'json_precision': {
        'summ': [0.7777777777777778, 0.5555555555555556, 1.0],
        'summ_b': [0.8, 0.45454545454545453, 1.0],
        'paired': [0.7777777777777778, 0.8, 0.022222222222222254, -0.4285714285714286, 0.3094230769230765, 0.884, 8],
        'empty': [0.7777777777777778, 0.0, -0.7777777777777778, -1.0, -0.5454545454545454, 0.002, 8],
    },
    'json_recall': {
        'summ': [0.5833333333333334, 0.27512626262626266, 1.0],
        'summ_b': [0.7272727272727273, 0.375, 1.0],
        'paired': [0.5833333333333334, 0.7272727272727273, 0.14393939393939392, -0.46825757575757576, 0.7, 0.684, 8],
        'empty': [0.5833333333333334, 0.0, -0.5833333333333334, -0.9166666666666666, -0.2857142857142857, 0.002, 8],
    },
    'json_f1': {
        'summ': [0.6666666666666666, 0.4, 0.9],
        'summ_b': [0.7619047619047619, 0.42857142857142855, 0.9411764705882353],
        'paired': [0.6666666666666666, 0.7619047619047619, 0.09523809523809523,
            -0.36300653594771226, 0.47058687839937813, 0.7, 8],
        'empty': [0.6666666666666666, 0.0, -0.6666666666666666, -0.9090909090909091, -0.4, 0.002, 8],
    },
    'json_parse_failure_rate': {
        'summ': [0.25, 0.0, 0.5],
        'summ_b': [0.125, 0.0, 0.375],
        'paired': [0.25, 0.125, -0.125, -0.5, 0.31562499999999716, 0.724, 8],
        'empty': [0.25, 1.0, 0.75, 0.49687500000000284, 1.0, 0.0, 8],
    },
}

# ---------------------------------------------------------------- helpers


def realistic_stats(name: str) -> np.ndarray:
    """Statistics of real sentence pairs: both fixture sides, the word salad, empty predictions."""
    m = get_metric(name)
    if name in JSON_METRICS:
        preds, refs = JSON_A + JSON_B + [""] * 3, JSON_REFS * 2 + JSON_REFS[:3]
    else:
        preds = TEXT_A + TEXT_B + SALAD_PREDS + [""] * 4 + ["zz qq"] * 3
        refs = TEXT_REFS * 2 + SALAD_REFS + TEXT_REFS[:4] + TEXT_REFS[:3]
    return m.sample_stats(preds, refs)


def assert_close(got, expected, tol=1e-9):
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == expected.shape
    assert np.allclose(got, expected, rtol=tol, atol=tol, equal_nan=True), np.max(np.abs(got - expected))


def check_many(m: Metric, stats: np.ndarray, idx: np.ndarray) -> None:
    """aggregate_many on counts @ stats == aggregate on each resample of rows."""
    n = stats.shape[0]
    summed = resample_counts(idx, n) @ stats
    assert np.array_equal(summed, stats[idx].sum(axis=1)) or np.allclose(summed, stats[idx].sum(axis=1))
    expected = [m.aggregate(stats[i]) for i in idx]
    assert_close(m.aggregate_many(summed, idx.shape[1]), expected)


# ---------------------------------------------------------------- aggregate_many == aggregate


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_aggregate_many_equals_aggregate_on_random_resamples(name):
    m = get_metric(name)
    stats = realistic_stats(name)
    n = stats.shape[0]
    rng = np.random.default_rng(11)
    check_many(m, stats, rng.integers(0, n, size=(300, n)))  # bootstrap resamples
    check_many(m, stats, rng.integers(0, n, size=(100, 5)))  # small subsets: more extreme sums
    check_many(m, stats, np.arange(n)[None, :])  # the full corpus
    check_many(m, stats, np.arange(n)[:, None])  # every single row (sentence-level corpora)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_aggregate_many_on_degenerate_resamples(name):
    m = get_metric(name)
    a, b, refs = inputs(name)
    rng = np.random.default_rng(5)
    # only empty predictions: no hypothesis n-grams at all (BLEU: sys_len 0, every total 0)
    empty = m.sample_stats([""] * len(refs), refs)
    check_many(m, empty, rng.integers(0, len(refs), size=(50, len(refs))))
    # predictions sharing nothing with their references: zero matches everywhere
    nothing = m.sample_stats(["qqq zzz xxx"] * len(refs), refs)
    check_many(m, nothing, rng.integers(0, len(refs), size=(50, len(refs))))
    # perfect predictions
    perfect = m.sample_stats([r[0] for r in refs], refs)
    check_many(m, perfect, rng.integers(0, len(refs), size=(50, len(refs))))


def test_bleu_aggregate_many_edge_cases_against_sacrebleu():
    m = get_metric("bleu")
    cm = m.corpus_metric
    # [sys_len, ref_len, correct_1..4, total_1..4]
    rows = np.array([
        [0, 5, 0, 0, 0, 0, 0, 0, 0, 0],  # empty hypothesis
        [3, 5, 0, 0, 0, 0, 3, 2, 1, 0],  # no match at all, no 4-grams
        [3, 5, 2, 1, 0, 0, 3, 2, 1, 0],  # loop breaks at order 4 (no hypothesis 4-grams)
        [2, 2, 2, 1, 0, 0, 2, 1, 0, 0],  # breaks at order 3
        [6, 4, 5, 0, 1, 0, 6, 5, 4, 3],  # zero matches at orders 2 and 4: smoothing doubles twice
        [6, 9, 5, 3, 0, 0, 6, 5, 4, 3],  # brevity penalty and smoothing
        [9, 9, 9, 8, 7, 6, 9, 8, 7, 6],  # perfect
        [1, 0, 1, 0, 0, 0, 1, 0, 0, 0],  # empty reference
        [1e6, 1.1e6, 9e5, 7e5, 5e5, 3e5, 1e6, 1e6 - 1, 1e6 - 2, 1e6 - 3],  # large counts
    ], dtype=float)
    expected = [cm._compute_score_from_stats(r.copy()).score for r in rows]
    assert_close(m.aggregate_many(rows, 1), expected, tol=1e-12)
    # mixed into one call, fast path and smoothed path side by side
    assert_close(m.aggregate_many(rows[[6, 8, 6]], 1), [expected[6], expected[8], expected[6]], tol=1e-12)


def test_chrf_aggregate_many_edge_cases_against_sacrebleu():
    m = get_metric("chrf")
    cm = m.corpus_metric
    rng = np.random.default_rng(2)
    rows = []
    for case in range(40):
        hyp = rng.integers(0, 6, size=6).astype(float)
        ref = rng.integers(0, 6, size=6).astype(float)
        if case % 4 == 0:
            hyp[3:] = 0  # short hypothesis: high orders absent
        if case % 5 == 0:
            ref[:] = 0  # empty reference
        match = np.minimum(hyp, ref) * (case % 3 != 0)  # every third: no match
        rows.append(np.column_stack([hyp, ref, match]).ravel())
    rows.append(np.zeros(18))
    rows = np.array(rows)
    expected = [cm._compute_score_from_stats(r.copy()).score for r in rows]
    assert_close(m.aggregate_many(rows, 1), expected, tol=1e-12)


def test_ter_and_json_aggregate_many_edge_cases():
    ter = get_metric("ter")
    rows = np.array([[3, 0], [0, 0], [2, 4.5], [0, 7]], dtype=float)
    assert_close(ter.aggregate_many(rows, 1), [ter.corpus_metric._compute_score_from_stats(r).score for r in rows])
    # [TP, FP, FN, failed]: nothing claimed / nothing to find / both / neither
    rows = np.array([[0, 0, 0, 0], [0, 0, 3, 1], [0, 2, 0, 0], [2, 1, 1, 0], [0, 3, 4, 2]], dtype=float)
    for name in JSON_METRICS:
        m = get_metric(name)
        assert_close(m.aggregate_many(rows, 2), [m.aggregate(np.vstack([r, np.zeros(4)])) for r in rows])


def test_sacrebleu_other_settings_fall_back_to_sacrebleu():
    from sacrebleu.metrics import BLEU, CHRF

    stats = realistic_stats("bleu")
    idx = np.random.default_rng(1).integers(0, stats.shape[0], size=(40, stats.shape[0]))
    for settings in ({"smooth_method": "floor"}, {"smooth_method": "add-k"}, {"effective_order": True},
                     {"smooth_method": "none"}):
        m = Bleu()
        m.__dict__["corpus_metric"] = BLEU(**settings)
        assert m._aggregate_sums(resample_counts(idx, stats.shape[0]) @ stats) is None
        check_many(m, stats, idx)
    m = Chrf()
    m.__dict__["corpus_metric"] = CHRF(eps_smoothing=True)
    stats = m.sample_stats(TEXT_A, TEXT_REFS)
    check_many(m, stats, np.random.default_rng(2).integers(0, stats.shape[0], size=(40, stats.shape[0])))


class _SumOfSquares(Metric):
    """Depends on column sums only but keeps the default aggregate_many."""

    name = "sum_of_squares"

    def sample_stats(self, predictions, references):
        return np.array([[len(p), len(r[0])] for p, r in zip(predictions, references)], dtype=float)

    def aggregate(self, stats):
        s = np.asarray(stats).sum(axis=0)
        return float(s[0] ** 2 / (1 + s[1]) / len(stats))

    def row_scores(self, stats):
        return [0.0] * len(stats)


class _Median(_SumOfSquares):
    """Not a function of the column sums: bootstrapped row by row."""

    name = "median_length"
    additive = False

    def aggregate(self, stats):
        return float(np.median(np.asarray(stats)[:, 0]))


def test_default_aggregate_many_and_non_additive_metric():
    stats = _SumOfSquares().sample_stats(TEXT_A, TEXT_REFS)
    idx = np.random.default_rng(0).integers(0, len(stats), size=(30, len(stats)))
    check_many(_SumOfSquares(), stats, idx)
    r = _SumOfSquares().summarize(stats, seed=4, resamples=200)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(
        bootstrap_ci(stats, statistic=_SumOfSquares().aggregate, resamples=200, seed=4), rel=1e-12)
    r = _Median().summarize(stats, seed=4, resamples=200)
    assert (r["ci_low"], r["ci_high"]) == bootstrap_ci(stats, statistic=_Median().aggregate, resamples=200, seed=4)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_bootstrap_fast_path_equals_row_loop(name):
    m = get_metric(name)
    a, b, refs = inputs(name)
    sa, sb = m.sample_stats(a, refs), m.sample_stats(b, refs)
    loop = bootstrap_ci(sa, statistic=m.aggregate, resamples=400, seed=9)
    fast = bootstrap_ci(sa, statistic=m.aggregate, resamples=400, seed=9, aggregate_many=m.aggregate_many)
    assert_close(fast, loop)
    loop = paired_bootstrap(sa, sb, statistic=m.aggregate, resamples=400, seed=9)
    fast = paired_bootstrap(sa, sb, statistic=m.aggregate, resamples=400, seed=9, aggregate_many=m.aggregate_many)
    assert_close([fast.baseline, fast.candidate, fast.delta, fast.ci_low, fast.ci_high],
                 [loop.baseline, loop.candidate, loop.delta, loop.ci_low, loop.ci_high])
    assert (fast.p_value, fast.n) == (loop.p_value, loop.n)


def test_single_sample_ci_is_the_value():
    for name in METRIC_NAMES:
        m = get_metric(name)
        a, _, refs = inputs(name)
        r = m.compute(a[:1], refs[:1])
        assert r["ci_low"] == r["value"] == r["ci_high"]


# ---------------------------------------------------------------- same numbers as before


def _delta_list(d) -> list:
    return [d.baseline, d.candidate, d.delta, d.ci_low, d.ci_high, d.p_value, d.n]


def assert_recorded(got: list, expected: list) -> None:
    """Values and CIs as recorded, n exactly; the p-value was the bootstrap's and is now a randomization
    test's (tests/unit/test_permutation.py checks it against a plain loop)."""
    if len(expected) == 7:
        assert got[6] == expected[6]
        got, expected = got[:5], expected[:5]
    assert_close(got, expected)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_summarize_and_quality_delta_unchanged(name):
    m = get_metric(name)
    a, b, refs = inputs(name)
    rec = RECORDED[name]
    s = m.summarize(m.sample_stats(a, refs), seed=3, resamples=500)
    assert_recorded([s["value"], s["ci_low"], s["ci_high"]], rec["summ"])
    s = m.summarize(m.sample_stats(b, refs))
    assert_recorded([s["value"], s["ci_low"], s["ci_high"]], rec["summ_b"])
    d = quality_delta(name, lines(a, refs), lines(b, refs), seed=5, resamples=500)
    assert_recorded(_delta_list(d), rec["paired"])
    d = quality_delta(name, lines(a, refs), lines([""] * len(refs), refs))
    assert_recorded(_delta_list(d), rec["empty"])
    if name in TEXT_METRICS:
        d = quality_delta(name, lines(SALAD_PREDS, SALAD_REFS), lines([r[0] for r in SALAD_REFS], SALAD_REFS))
        assert_recorded(_delta_list(d), rec["salad"])


# ---------------------------------------------------------------- quality_delta: stored scores and the cache


@pytest.mark.parametrize("name", STORED_SCORE_METRICS)
def test_quality_delta_from_stored_scores_equals_recomputed(name):
    for (a, b, refs) in ((TEXT_A, TEXT_B, TEXT_REFS), (SALAD_PREDS, [r[0] for r in SALAD_REFS], SALAD_REFS)):
        scored_a = lines(a, refs, sample_scores_all(list(STORED_SCORE_METRICS), a, refs))
        scored_b = lines(b, refs, sample_scores_all(list(STORED_SCORE_METRICS), b, refs))
        m = get_metric(name)
        assert shared_stats(m, list(scored_a.values()), [list(r) for r in refs]) is not None
        stored = quality_delta(name, scored_a, scored_b, seed=2, resamples=300)
        _STATS_CACHE.clear()
        recomputed = quality_delta(name, lines(a, refs), lines(b, refs), seed=2, resamples=300)
        assert_close(_delta_list(stored)[:5], _delta_list(recomputed)[:5], tol=1e-12)
        assert (stored.p_value, stored.n) == (recomputed.p_value, recomputed.n)


def _count_sample_stats(monkeypatch, m: Metric) -> list[int]:
    """Record the number of predictions of every ``m.sample_stats`` call."""
    calls: list[int] = []
    original = m.sample_stats

    def counting(predictions, references):
        calls.append(len(predictions))
        return original(predictions, references)

    monkeypatch.setattr(m, "sample_stats", counting)
    return calls


def test_stored_scores_used_only_when_they_fit(monkeypatch):
    m = get_metric("exact_match")
    refs = [list(r) for r in TEXT_REFS]
    good = sample_scores_all(["exact_match"], TEXT_A, refs)
    expected = m.sample_stats(TEXT_A, refs)
    calls = _count_sample_stats(monkeypatch, m)
    _STATS_CACHE.clear()
    assert_close(shared_stats(m, list(lines(TEXT_A, refs, good).values()), refs), expected, tol=1e-15)
    assert calls == []  # from the stored scores
    bad_cases = [
        [dict(s, exact_match=50.0) if i == 0 else s for i, s in enumerate(good)],  # EM must be 0 or 100
        [dict(s, exact_match=None) if i == 1 else s for i, s in enumerate(good)],  # missing
        [{} for _ in good],  # not stored
    ]
    for scores in bad_cases:
        _STATS_CACHE.clear()
        calls.clear()
        assert np.array_equal(shared_stats(m, list(lines(TEXT_A, refs, scores).values()), refs), expected)
        assert calls == [len(refs)]
    # scores stored against other references: recomputed against the given ones
    _STATS_CACHE.clear()
    calls.clear()
    other = list(lines(TEXT_A, [["something else"]] * len(refs), good).values())
    assert np.array_equal(shared_stats(m, other, refs), expected)
    assert calls == [len(refs)]


def test_sample_stats_computed_once_per_sample(monkeypatch):
    m = get_metric("bleu")
    direct = m.sample_stats(TEXT_B, TEXT_REFS)
    calls = _count_sample_stats(monkeypatch, m)
    _STATS_CACHE.clear()
    ref = lines(TEXT_A, TEXT_REFS)
    first = quality_delta("bleu", ref, lines(TEXT_B, TEXT_REFS), resamples=200)
    assert calls == [len(TEXT_A), len(TEXT_B)]
    # the reference row against another candidate: only the new predictions are scored
    other = [p + " more" if i % 2 else p for i, p in enumerate(TEXT_B)]
    quality_delta("bleu", ref, lines(other, TEXT_REFS), resamples=200)
    assert calls[2:] == [len(TEXT_B) // 2]
    assert quality_delta("bleu", ref, lines(TEXT_B, TEXT_REFS), resamples=200) == first
    assert len(calls) == 3
    # the cached rows are the ones a direct computation gives
    assert np.array_equal(shared_stats(m, list(lines(TEXT_B, TEXT_REFS).values()), TEXT_REFS), direct)


def test_quality_delta_errors_still_raised():
    from llmbench.errors import UserError

    with pytest.raises(UserError):
        quality_delta("json_f1", lines(["{}"], [["not json"]]), lines(["{}"], [["not json"]]))
    with pytest.raises(TypeError):
        quality_delta("bleu", {0: {"prediction": 3, "references": ["a"]}},
                      {0: {"prediction": "a", "references": ["a"]}})
    assert quality_delta("bleu", lines(["a"], [["a"]]), {5: {"prediction": "a", "references": ["a"]}}) is None


def test_quality_delta_with_stored_rouge_scores_does_not_import_rouge():
    scores = sample_scores_all(["rouge1", "rougeL"], TEXT_A, TEXT_REFS)
    scores_b = sample_scores_all(["rouge1", "rougeL"], TEXT_B, TEXT_REFS)
    code = f"""
import json, sys
from llmbench.stats.significance import quality_delta
a, b = json.loads({json.dumps(json.dumps(lines(TEXT_A, TEXT_REFS, scores)))}), \
json.loads({json.dumps(json.dumps(lines(TEXT_B, TEXT_REFS, scores_b)))})
a = {{int(k): v for k, v in a.items()}}
b = {{int(k): v for k, v in b.items()}}
d = quality_delta("rougeL", a, b)
assert d is not None and d.n == {len(TEXT_A)}
assert "rouge_score" not in sys.modules and "nltk" not in sys.modules, "scorer imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
