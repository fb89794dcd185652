"""Files that `llmbench tasks export-lm-eval` copies into an exported lm-eval task folder."""
