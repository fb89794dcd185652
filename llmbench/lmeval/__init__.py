"""lm-eval (EleutherAI lm-evaluation-harness) integration: run its tasks under llmbench's meters, and
export llmbench tasks as lm-eval tasks. See docs/lm-eval.md.

Importing this package never imports lm_eval or torch; ``bridge`` needs lm-eval (``llmbench[lmeval]``),
``export`` does not.
"""

from __future__ import annotations

from llmbench.errors import UserError

INSTALL_HINT = "lm-eval is not installed: pip install 'llmbench[lmeval]'"


def require_lm_eval() -> str:
    """lm-eval's version; a one-line UserError saying how to install it when it is missing."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:  # pragma: no cover - importable but not installed as a distribution
        return "unknown"


__all__ = ["INSTALL_HINT", "require_lm_eval"]
