"""Statistics: summaries (``summary``), quantiles of resamples (``quantiles``), seeded vectorised
resampling (``resampling``), bootstrap CIs (``bootstrap``), randomization-test p-values (``permutation``)
and their floors (``floors``), and row-to-row deltas shared by compare and gate (``significance``)."""

from llmbench.stats.bootstrap import (  # noqa: F401
    CONFIDENCE,
    PairedDelta,
    bootstrap_ci,
    bootstrap_sums,
    cluster_bootstrap_mean_ci,
    paired_bootstrap,
    paired_bootstrap_sums,
    unpaired_bootstrap,
)
from llmbench.stats.floors import (  # noqa: F401
    paired_p_floor,
    smallest_paired_p,
    smallest_unpaired_p,
    unpaired_p_floor,
)
from llmbench.stats.quantiles import Quantile, sorted_quantile  # noqa: F401
from llmbench.stats.resampling import (  # noqa: F401
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    resample_counts,
    resampled_sums,
    resampled_values,
)
from llmbench.stats.summary import Summary  # noqa: F401
