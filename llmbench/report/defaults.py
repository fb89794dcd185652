"""The report commands' defaults, apart from the code that uses them: the CLI shows them in `--help` without
importing numpy."""

DEFAULT_MARGIN = 0.95  # the verdict's share of the best model's quality that counts as "enough"
DEFAULT_RESAMPLES = 1000  # bootstrap resamples of the significance marks and the decisions
DEFAULT_MIN_GAIN = 1.0  # the size curve's knee: points (0-100 scale) per doubling that more size must beat
