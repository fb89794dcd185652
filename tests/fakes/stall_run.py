"""`llmbench ARGS` with the hf backend stalled on one task, for tests that stop a run from outside.

    python stall_run.py MARKER TEXT llmbench-args...

The first generate call whose prompts contain TEXT writes MARKER and then blocks, so a test can wait for
MARKER and send SIGKILL or SIGTERM while the run is inside that task (deterministically: after the rows
before it were written, before the task finished)."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> None:
    marker, text, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    from llmbench.models.hf import HFBackend

    real = HFBackend.generate

    def generate(self, model, prompts, *a, **k):
        if any(text in p for p in prompts):
            marker.write_text("stalled\n")
            while True:  # until the test's signal arrives
                time.sleep(0.05)
        return real(self, model, prompts, *a, **k)

    HFBackend.generate = generate
    from llmbench.cli import main as cli_main

    cli_main(args)


if __name__ == "__main__":
    main()
