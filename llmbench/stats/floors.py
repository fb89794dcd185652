"""The smallest p-value a comparison can report on its sample sizes (its p floor).

Exact tests have one: an exact sign-flip test on n pairs cannot go below 2 / 2**n, an exact permutation
test of na and nb values below 2 / C(na + nb, na). Comparisons floor their p there, so a handful of samples
that all moved the same way never looks significant, and gate can say when there are too few samples to
decide at all.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from llmbench.stats import permutation
from llmbench.stats.resampling import DEFAULT_RESAMPLES, DEFAULT_SEED, resampled_statistic


def smallest_paired_p(n: int) -> float:
    """The smallest two-sided p of an exact sign-flip test on n pairs, 2 / 2**n.

    A bootstrap over n pairs that all moved the same way has every resample on one side of zero (p = 0,
    a zero-width interval), however small n: one sample would look "significant". Its p is floored here, so
    fewer than 6 pairs can never be significant at 95%."""
    return min(1.0, 2.0 / 2.0 ** n) if n < 1024 else 0.0


def smallest_unpaired_p(na: int, nb: int) -> float:
    """The smallest two-sided p of an exact permutation test of two groups of na and nb values,
    2 / C(na + nb, na) (the unpaired counterpart of ``smallest_paired_p``)."""
    if min(na, nb) == 0:
        return 1.0
    if na + nb <= 1000:
        return min(1.0, 2.0 / math.comb(na + nb, na))
    # larger groups: log C(na + nb, na) by lgamma (C itself can be too large for a float); underflows to 0.0
    log_comb = math.lgamma(na + nb + 1) - math.lgamma(na + 1) - math.lgamma(nb + 1)
    return min(1.0, 2.0 * math.exp(-log_comb))


def paired_p_floor(n: int, resamples: int = DEFAULT_RESAMPLES) -> float:
    """The smallest p a paired comparison (``paired_bootstrap``) can report on n shared samples."""
    return max(permutation.smallest_paired_p(n, resamples), smallest_paired_p(n))


def unpaired_p_floor(na: int, nb: int, statistic: Callable = np.median, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> float:
    """The smallest p ``unpaired_bootstrap`` can report for groups of na and nb values and this statistic."""
    return max(permutation.smallest_unpaired_p(na, nb, statistic, resamples, seed, resampled_statistic),
               smallest_unpaired_p(na, nb))
