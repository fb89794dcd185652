"""Start and stop a real `transformers serve` (transformers[serving]) on a local model directory, on a free
127.0.0.1 port: used by tests/integration/test_served.py and tests/slow/test_served_smollm2.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVE = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; sys.exit(main())"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_transformers_serve(model_dir: Path, log: Path, timeout_s: float = 180.0, device: str = "cpu",
                             fail=pytest.fail):
    """``transformers serve MODEL_DIR`` on a free 127.0.0.1 port, waited for until /health answers; returns
    (process, base URL); ``fail`` is called with the reason where it exits or does not answer in time
    (scripts/gpu_check.py passes one that raises). Offline: the model is a local directory."""
    import httpx

    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_OFFLINE": "1"}
    # transformers 5.17's /v1/models scans the hub cache and answers 500 where that folder does not exist
    # (a bare machine); an empty one of its own answers instead
    hub_cache = Path(env.get("HF_HUB_CACHE") or Path(log).parent / "hub-cache")
    hub_cache.mkdir(parents=True, exist_ok=True)
    env["HF_HUB_CACHE"] = str(hub_cache)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
             "--device", device, "--log-level", "warning"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"transformers serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    fail(f"transformers serve did not answer within {timeout_s} s: {log.read_text()[-2000:]}")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def same_text(served: str, local: str) -> bool:
    """Equal answers, up to a trailing incomplete UTF-8 sequence: the server's streaming decoder holds it back
    (random weights make plenty), the in-process decode shows it as U+FFFD."""
    return served.rstrip("\ufffd").strip() == local.rstrip("\ufffd").strip()
