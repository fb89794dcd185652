"""llmbench: benchmark large and small language models side by side."""

__version__ = "0.1.0"
