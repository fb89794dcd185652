"""Statistics: summaries with bootstrap CIs, resampling, paired/unpaired bootstraps (``bootstrap``),
randomization-test p-values (``permutation``) and row-to-row deltas shared by compare and gate
(``significance``)."""

from llmbench.stats.bootstrap import (  # noqa: F401
    CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    PairedDelta,
    Quantile,
    Summary,
    bootstrap_ci,
    bootstrap_sums,
    cluster_bootstrap_mean_ci,
    paired_bootstrap,
    paired_bootstrap_sums,
    paired_p_floor,
    resample_counts,
    resampled_sums,
    resampled_values,
    smallest_paired_p,
    smallest_unpaired_p,
    sorted_quantile,
    unpaired_bootstrap,
    unpaired_p_floor,
)
