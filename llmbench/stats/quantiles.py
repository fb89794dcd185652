"""Quantiles of stacks of resamples with numpy's own values, sorting each row once."""

from __future__ import annotations

import numpy as np


def sorted_quantile(rows: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(rows, q, axis=-1)`` (numpy's default 'linear' method) of rows already sorted ascending.

    The same operations as numpy's ``_quantile``: virtual index (n - 1) * q, clipped to the ends, then
    numpy's ``_lerp`` between its two neighbours. (NaN rows are the caller's business.)
    """
    n = rows.shape[-1]
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return rows[..., -1] + 0.0
    if virtual < 0:
        return rows[..., 0] + 0.0
    before = float(np.floor(virtual))
    gamma = virtual - before
    lo, hi = rows[..., int(before)], rows[..., int(before) + 1]
    diff = hi - lo
    return hi - diff * (1 - gamma) if gamma >= 0.5 else lo + diff * gamma


class Quantile:
    """``np.median`` (``percent=None``) or ``np.percentile(a, percent)`` (numpy's default 'linear' method),
    callable like them, that evaluates a stack of resamples fast.

    ``stat(rows, axis=1)`` on a 2-D array sorts every row once and interpolates between the two order
    statistics with numpy's own formulas (the mean of the middle pair for the median, numpy's ``_lerp``
    for a percentile) instead of partitioning row by row; the values are numpy's. Any other call is
    passed to numpy unchanged.
    """

    def __init__(self, percent: float | None = None):
        self.percent = percent

    def __repr__(self) -> str:
        return "Quantile(median)" if self.percent is None else f"Quantile({self.percent:g}%)"

    def _numpy(self, a, axis=None):
        if self.percent is None:
            return np.median(a, axis=axis)
        return np.percentile(a, self.percent, axis=axis)

    def __call__(self, a, axis=None):
        arr = np.asarray(a)
        if arr.ndim != 2 or axis not in (1, -1) or arr.shape[1] == 0 or arr.dtype.kind != "f":
            return self._numpy(a, axis=axis)
        rows = np.sort(arr, axis=1)
        if self.percent is None:  # np.median: the mean of the middle element(s)
            n, half = rows.shape[1], rows.shape[1] // 2
            out = rows[:, half] + 0.0 if n % 2 else (rows[:, half - 1] + rows[:, half]) / 2
        else:
            out = sorted_quantile(rows, float(np.true_divide(self.percent, 100)))
        return np.where(np.isnan(rows[:, -1]), np.nan, out)  # NaN sorts last; numpy returns NaN then
