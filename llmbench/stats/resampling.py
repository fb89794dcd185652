"""Seeded resampling, vectorised: sample indices, count matrices, resampled column sums and statistics.

A bootstrap draws ``resamples`` x ``n`` indices from a seeded generator; for a metric whose corpus value
depends only on the column sums of its per-sample statistics (every metric in ``llmbench.metrics``), those
indices become a count matrix ``counts`` (how often each sample is drawn in each resample) and the
resampled sums are one product ``counts @ stats``, which the metric's ``aggregate_many`` maps to corpus
values in one numpy pass. The indices are the ones the row-by-row loop used, so a given seed gives the
same numbers as before (to floating-point rounding).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from llmbench.stats.quantiles import Quantile

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0

#: ``aggregate_many(summed, n)``: resampled column sums, shape (R, k), and the sample count -> (R,) values
AggregateMany = Callable[[np.ndarray, int], np.ndarray]


# Resampled arrays (indices, counts, gathered values) are evaluated in blocks of rows of about _BLOCK
# entries; index and count matrices up to _CACHE entries (8 bytes each) are kept for reuse, a few at a time.
_BLOCK = 1 << 20
_CACHE = 1 << 18
# resampled values of one side are kept, keyed on the side's data, when it has at most this many numbers
_CACHED_INPUT = 1 << 14


def _draw_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


@lru_cache(maxsize=16)
def _cached_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    idx = _draw_indices(n, resamples, seed)
    idx.flags.writeable = False
    return idx


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) sample indices drawn with replacement; the same for the same (n, resamples, seed).

    Comparisons ask again and again for the same (n, resamples, seed), so small (read-only) arrays are cached.
    """
    n, resamples, seed = int(n), int(resamples), int(seed)
    if n * resamples <= _CACHE:
        return _cached_indices(n, resamples, seed)
    return _draw_indices(n, resamples, seed)


def resample_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """(R, n) float matrix: how often each of the ``n`` samples is drawn in each row of ``indices``.

    ``resample_counts(idx, n) @ stats`` equals ``stats[idx].sum(axis=1)``: the column sums of every resample.
    """
    indices = np.asarray(indices)
    r = indices.shape[0]
    flat = (indices + (np.arange(r) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(float)


@lru_cache(maxsize=16)
def _cached_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    counts = resample_counts(resample_indices(n, resamples, seed), n)
    counts.flags.writeable = False
    return counts


def _row_blocks(resamples: int, n: int):
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, resamples, step):
        yield slice(start, min(start + step, resamples))


def resampled_sums(stats: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED) -> np.ndarray:
    """(R, k) column sums of the R seeded resamples of the rows of ``stats`` (n, k): ``counts @ stats``."""
    arr = as_rows(stats)
    n, resamples, seed = int(arr.shape[0]), int(resamples), int(seed)
    if n * resamples <= _CACHE:
        return _cached_counts(n, resamples, seed) @ arr
    idx = _draw_indices(n, resamples, seed)
    out = np.empty((resamples, arr.shape[1]))
    for rows in _row_blocks(resamples, n):
        out[rows] = resample_counts(idx[rows], n) @ arr
    return out


def resampled_values(stats: Sequence | np.ndarray, aggregate_many: AggregateMany,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(R,) corpus values of the R seeded resamples of the rows of ``stats``, from their column sums.

    Kept for the rest of the process for small inputs (keyed on ``aggregate_many``, the content of
    ``stats``, ``resamples`` and ``seed``): a reference row compared with many others is resampled once.
    """
    arr = as_rows(stats)
    if arr.size <= _CACHED_INPUT and resamples <= _CACHE and _is_hashable(aggregate_many):
        return _cached_values(aggregate_many, arr.tobytes(), arr.shape, int(resamples), int(seed))
    return np.asarray(aggregate_many(resampled_sums(arr, resamples, seed), arr.shape[0]), dtype=float)


@lru_cache(maxsize=128)
def _cached_values(aggregate_many: AggregateMany, data: bytes, shape: tuple[int, ...], resamples: int,
                   seed: int) -> np.ndarray:
    arr = np.frombuffer(data, dtype=float).reshape(shape)
    out = np.array(aggregate_many(resampled_sums(arr, resamples, seed), shape[0]), dtype=float)
    out.flags.writeable = False
    return out


def as_rows(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def _draw_unpaired(na: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, na, size=(resamples, na))
    ib = rng.integers(0, nb, size=(resamples, nb))
    return ia, ib


@lru_cache(maxsize=16)
def _cached_unpaired(na: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ia, ib = _draw_unpaired(na, nb, resamples, seed)
    ia.flags.writeable = ib.flags.writeable = False
    return ia, ib


def unpaired_indices(na: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline's (resamples, na) and the candidate's (resamples, nb) indices, drawn in that order."""
    na, nb, resamples, seed = int(na), int(nb), int(resamples), int(seed)
    if (na + nb) * resamples <= _CACHE:
        return _cached_unpaired(na, nb, resamples, seed)
    return _draw_unpaired(na, nb, resamples, seed)


def resampled_statistic(statistic: Callable, arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """statistic of every resample ``arr[idx[r]]``: vectorised with ``axis=1`` when the statistic takes it."""
    statistic = _FAST_EQUIVALENT.get(statistic, statistic) if _is_hashable(statistic) else statistic
    out = np.empty(idx.shape[0])
    for rows in _row_blocks(idx.shape[0], arr.size):
        try:
            block = np.asarray(statistic(arr[idx[rows]], axis=1), dtype=float)
        except TypeError:  # a statistic without an axis argument
            block = None
        if block is None or block.shape != (rows.stop - rows.start,):
            return np.array([statistic(arr[i]) for i in idx], dtype=float)
        out[rows] = block
    return out


def _is_hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


# numpy reductions with a faster equal-valued stand-in over stacks of resamples
_FAST_EQUIVALENT: dict = {np.median: Quantile()}


@lru_cache(maxsize=128)
def _baseline_side(statistic: Callable, data: bytes, resamples: int, seed: int) -> np.ndarray:
    a = np.frombuffer(data, dtype=float)
    out = resampled_statistic(statistic, a, resample_indices(a.size, resamples, seed))
    out.flags.writeable = False
    return out


def resampled_baseline(statistic: Callable, a: np.ndarray, nb: int, resamples: int, seed: int) -> np.ndarray:
    """The baseline side of ``unpaired_bootstrap``.

    Its indices are the generator's first draw, ``resample_indices(na, resamples, seed)`` whatever the
    candidate, so a baseline compared with many candidates (a reference row) is resampled once and kept.
    """
    if a.ndim == 1 and a.size <= _CACHED_INPUT and resamples <= _CACHE and _is_hashable(statistic):
        return _baseline_side(statistic, a.tobytes(), int(resamples), int(seed))
    ia, _ = unpaired_indices(a.size, nb, resamples, seed)
    return resampled_statistic(statistic, a, ia)

