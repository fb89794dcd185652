"""Keep lm-eval quiet while it runs inside llmbench: its logs, stdout prints, tqdm bars and `git describe`."""

from __future__ import annotations

import contextlib
import logging
import sys


@contextlib.contextmanager
def quiet_lm_eval():
    """lm-eval logs at INFO/WARNING, prints bootstrap progress to stdout, draws tqdm bars while it builds
    contexts and bootstraps stderrs, and runs `git describe` in the working folder (which prints "fatal: not a
    git repository" outside one). Keep stdout clean for --json and the console for llmbench's own progress
    (the one-line "bootstrapping for stddev" notes go to stderr: they say what is taking time); llmbench
    records its own git commit in the run's environment."""
    from unittest import mock

    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
            import lm_eval.api.metrics as metrics_mod
            import lm_eval.api.task as task_mod
            import lm_eval.evaluator as evaluator_mod

            if hasattr(task_mod, "tqdm"):
                stack.enter_context(mock.patch.object(task_mod, "tqdm", _silent_tqdm(task_mod.tqdm)))
            if hasattr(metrics_mod, "bootstrap_stderr"):
                stack.enter_context(mock.patch.object(metrics_mod, "bootstrap_stderr",
                                                      _without_bars(metrics_mod.bootstrap_stderr)))
            if hasattr(evaluator_mod, "get_git_commit_hash"):
                stack.enter_context(mock.patch.object(evaluator_mod, "get_git_commit_hash", lambda: None))
            yield
    finally:
        logger.setLevel(level)


def _silent_tqdm(base: type) -> type:
    """A subclass of the tqdm class ``base`` whose bars are disabled (still a class, for isinstance and
    subclassing)."""

    class SilentTqdm(base):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


def _without_bars(bootstrap):
    """lm-eval's ``bootstrap_stderr``, its progress bars hidden, in this process.

    It takes its bar from ``from tqdm import tqdm`` at call time, so the package's ``tqdm`` is silenced
    during that call only: nothing is imported then that could keep it, and the bootstrap runs in lm-eval's
    main thread. Its default forks a multiprocessing pool of this process, which holds torch's threads and the
    meters': a child forked while another thread held a lock can wait on it forever (seen: a test run hung in
    such a child). ``DISABLE_MULTIPROC`` takes lm-eval's serial path, which draws the same replicates in the
    same order (chunk i from ``random.Random(i)``), so the stderr is the same figure."""
    import functools

    @functools.wraps(bootstrap)
    def run(*args, **kwargs):
        import os
        from unittest import mock

        import tqdm as tqdm_package

        with mock.patch.object(tqdm_package, "tqdm", _silent_tqdm(tqdm_package.tqdm)), \
                mock.patch.dict(os.environ, {"DISABLE_MULTIPROC": "1"}):
            return bootstrap(*args, **kwargs)

    return run
