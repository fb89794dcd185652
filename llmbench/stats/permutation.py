"""Randomization tests: the p-values of llmbench's comparisons.

The bootstrap (stats.bootstrap) gives the confidence interval of a difference; the p-value comes from a
randomization test, which holds its level exactly when few samples carry the difference (why: docs/report.md):

- paired (quality, both runs on the same prompts): approximate randomization, as sacrebleu's ``paired_ar``
  (Riezler & Maxwell, 2005): each sample's outputs are swapped between the two systems at random and the
  corpus metric is recomputed; for a mean metric that is a sign-flip test of the per-sample differences.
  Samples whose statistics are equal on both sides do not move anything and are left out, so when only k
  samples differ every one of the 2^k swap patterns is enumerated when 2^k <= max(resamples, 4096) (an
  exact test); beyond that, ``resamples`` random patterns and p = (hits + 1) / (resamples + 1).
- unpaired (latency, independent timings of two runs): a permutation test of the statistic (mean, median,
  a percentile) under random relabelling of the pooled values; exact, by enumerating every split, when
  there are at most ``resamples`` of them.

Both are two-sided: the share of arrangements whose difference is at least as large in size as the
observed one.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache
from typing import Callable

import numpy as np

# relative tolerance for "at least as large as observed": the observed arrangement must count as a hit
# even when float sums in another order differ in the last bits
_TIE = 1e-9


def _two_sided(deltas: np.ndarray, observed: float, exact: bool) -> float:
    hits = int(np.sum(np.abs(deltas) >= abs(observed) * (1 - _TIE) - 1e-12))
    if exact:
        return min(1.0, hits / deltas.size)
    return min(1.0, (hits + 1) / (deltas.size + 1))


# every swap pattern is enumerated up to this many (12 differing samples) even when fewer resamples are asked
# for: an exact p costs at most a few times a default test there, and p near the level is not left to chance
EXACT_PATTERNS = 4096


def _swap_patterns(k: int, resamples: int, seed: int, exact_up_to: int = EXACT_PATTERNS
                   ) -> tuple[np.ndarray, bool]:
    """(patterns, k) 0/1 matrix: every pattern when 2**k <= max(resamples, exact_up_to) (an exact test),
    else ``resamples`` random ones."""
    if k < 63 and 2 ** k <= max(resamples, exact_up_to):
        codes = np.arange(2 ** k, dtype=np.int64)[:, None]
        return ((codes >> np.arange(k, dtype=np.int64)) & 1).astype(float), True
    rng = np.random.default_rng([seed, 0x5A17])  # its own stream: not the bootstrap's indices
    return rng.integers(0, 2, size=(resamples, k)).astype(float), False


def paired_sums_p(a: np.ndarray, b: np.ndarray, aggregate_many: Callable, resamples: int, seed: int) -> float:
    """Two-sided p of aggregate(b) - aggregate(a) for a corpus value that depends only on the column sums of
    the per-sample rows ``a`` and ``b`` (n, k), by swapping rows between the sides."""
    n = a.shape[0]
    diff = b - a
    moving = np.flatnonzero(np.any(diff != 0, axis=1))
    if moving.size == 0:
        return 1.0
    sa, sb = a.sum(axis=0), b.sum(axis=0)
    full = np.asarray(aggregate_many(np.vstack([sa, sb]), n), dtype=float)
    observed = float(full[1] - full[0])
    if not math.isfinite(observed):
        return 1.0
    patterns, exact = _swap_patterns(moving.size, resamples, seed)
    shift = patterns @ diff[moving]  # what moves from b's sums to a's under each pattern
    deltas = np.asarray(aggregate_many(sb - shift, n), dtype=float) - np.asarray(aggregate_many(sa + shift, n),
                                                                                 dtype=float)
    return _two_sided(np.nan_to_num(deltas, nan=np.inf), observed, exact)


def paired_rows_p(a: np.ndarray, b: np.ndarray, statistic: Callable | None, resamples: int, seed: int) -> float:
    """``paired_sums_p`` for any statistic of the rows (default: the mean of 1-D values)."""
    moving = np.flatnonzero(a != b) if a.ndim == 1 else np.flatnonzero(np.any(a != b, axis=1))
    if moving.size == 0:
        return 1.0
    vectorised = statistic is None and a.ndim == 1
    patterns, exact = _swap_patterns(moving.size, resamples, seed)
    if vectorised:
        d = b[moving] - a[moving]
        observed = float(np.mean(b - a))
        if not math.isfinite(observed):
            return 1.0
        deltas = observed - 2 * (patterns @ d) / a.shape[0]
        return _two_sided(deltas, observed, exact)
    stat = statistic or (lambda x: float(np.mean(x, axis=0)))
    observed = float(stat(b)) - float(stat(a))
    if not math.isfinite(observed):
        return 1.0
    deltas = np.empty(patterns.shape[0])
    for r, pattern in enumerate(patterns.astype(bool)):
        swap = moving[pattern]
        a2, b2 = a.copy(), b.copy()
        a2[swap], b2[swap] = b[swap], a[swap]
        deltas[r] = float(stat(b2)) - float(stat(a2))
    return _two_sided(np.nan_to_num(deltas, nan=np.inf), observed, exact)


def unpaired_p(a: np.ndarray, b: np.ndarray, statistic: Callable, resamples: int, seed: int,
               resampled: Callable) -> float:
    """Two-sided permutation p of statistic(b) - statistic(a) for independent samples ``a`` and ``b``.

    ``resampled(statistic, pooled, idx)`` evaluates the statistic on every row of indices ``idx`` (the
    vectorised evaluator of stats.resampling, ``resampled_statistic``)."""
    na, nb = a.size, b.size
    pooled = np.concatenate([a, b])
    observed = float(statistic(b)) - float(statistic(a))
    if not math.isfinite(observed):
        return 1.0
    total = na + nb
    if total * resamples <= _CACHED_CELLS:
        order, exact = _cached_relabellings(total, nb, resamples, seed)
    else:
        order, exact = _relabellings(total, nb, resamples, seed)
    deltas = resampled(statistic, pooled, order[:, :nb]) - resampled(statistic, pooled, order[:, nb:])
    return _two_sided(np.nan_to_num(deltas, nan=np.inf), observed, exact)


# arrangements of up to this many index cells (2 MiB) are kept: a comparison of many rows of one size
# (compare over 200 rows) draws them once
_CACHED_CELLS = 1 << 18


def _relabellings(total: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, bool]:
    """(arrangements, total) index rows whose first ``nb`` go to the candidate: every split when there are
    at most ``resamples`` (exact), else random permutations."""
    if math.comb(total, nb) <= resamples:
        rows = []
        for chosen in itertools.combinations(range(total), nb):
            picked = set(chosen)
            rows.append(list(chosen) + [i for i in range(total) if i not in picked])
        order, exact = np.asarray(rows, dtype=np.intp), True
    else:
        rng = np.random.default_rng([seed, 0x9E37])
        order, exact = np.argsort(rng.random((resamples, total)), axis=1), False
    return order, exact


@lru_cache(maxsize=32)
def _cached_relabellings(total: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, bool]:
    order, exact = _relabellings(total, nb, resamples, seed)
    order.flags.writeable = False
    return order, exact


def smallest_paired_p(n: int, resamples: int) -> float:
    """The p ``paired_sums_p`` gives when all n shared samples moved the same way (the strongest evidence n
    samples hold): 2 / 2^n from the exact test, 1 / (resamples + 1) once n is past exact enumeration."""
    if 2 ** min(n, 63) <= max(resamples, EXACT_PATTERNS):
        return min(1.0, 2.0 / 2.0 ** n)
    return 1.0 / (resamples + 1)


def smallest_unpaired_p(na: int, nb: int, statistic: Callable, resamples: int, seed: int,
                        resampled: Callable) -> float:
    """The p ``unpaired_p`` gives for two fully separated groups of na and nb values: the strongest evidence
    these sizes and this statistic allow (a median's ties between arrangements, and the 1 / (resamples + 1)
    of random arrangements, included)."""
    if min(na, nb) == 0:
        return 1.0
    separated = np.arange(na + nb, dtype=float)
    return unpaired_p(separated[:na], separated[na:], statistic, resamples, seed, resampled)
