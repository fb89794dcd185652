"""A run stopped from outside (kill -9, SIGTERM) on tiny random models, and `llmbench run --resume`: the
resumed record equals a clean run's in rows, order, quality values, greedy outputs and sample counts, and
the rows it ran again were measured whole by the resuming process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.integration

from cli_helpers import read_single_run, run_cli  # noqa: E402

STALL = Path(__file__).resolve().parent.parent / "fakes" / "stall_run.py"
ROOT = Path(__file__).resolve().parents[2]


def _args(tiny_model_dir, task_dir, out: Path) -> list[str]:
    return ["run", "-m", f"{tiny_model_dir},name=a", "-m", f"{tiny_model_dir},name=b", "-t", "tiny-translation",
            "-t", "tiny-qa", "--tasks-dir", str(task_dir), "--out", str(out), "--warmup", "0", "--device", "cpu"]


def _stalled_run(args: list[str], marker: Path, stop_text: str, sig: int, cwd: Path) -> subprocess.CompletedProcess:
    """Run `llmbench ARGS` in a child that blocks in the first generate call of the prompts containing
    ``stop_text``; once it is there (the rows before are written), send ``sig``; return the finished child."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, str(STALL), str(marker), stop_text, *args], cwd=cwd, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300  # a guard against a hung child, not a measurement
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            out, err = child.communicate()
            pytest.fail(f"the child never reached the stalled task (exit {child.returncode}):\n{err[-3000:]}")
        time.sleep(0.05)
    child.send_signal(sig)
    out, err = child.communicate(timeout=300)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _by_key(record: dict) -> dict:
    return {(r["model"]["name"], r["task"]["name"]): r for r in record["rows"]}


def _predictions(samples: list[dict]) -> dict:
    return {(s["model"], s["task"], s["index"]): s["prediction"] for s in samples}


def test_kill_9_in_the_second_task_then_resume_equals_a_clean_run(tiny_model_dir, task_dir, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)  # the resume runs where the run ran (the session's cwd)
    clean_out, killed_out = tmp_path / "clean", tmp_path / "killed"
    assert run_cli(_args(tiny_model_dir, task_dir, clean_out)) == 0
    clean, clean_samples = read_single_run(clean_out)

    # model a's second task (tiny-qa, prompts "Context: ...") blocks; kill -9 while it is inside it
    done = _stalled_run(_args(tiny_model_dir, task_dir, killed_out), tmp_path / "stalled", "Context:",
                        signal.SIGKILL, tmp_path)
    assert done.returncode == -signal.SIGKILL
    [run_dir] = [p for p in killed_out.iterdir() if p.is_dir()]
    killed = json.loads((run_dir / "run.json").read_text())
    assert killed["complete"] is False and "end" not in killed["sessions"][0]  # nobody closed session 1
    assert [(r["model"]["name"], r["task"]["name"]) for r in killed["rows"]] == [("a", "tiny-translation")]
    assert killed["missing"] == [{"model": "a", "task": "tiny-qa"}, {"model": "b", "task": "tiny-translation"},
                                 {"model": "b", "task": "tiny-qa"}]
    session1_row = killed["rows"][0]

    assert run_cli(["run", "--resume", str(run_dir)]) == 0
    record, samples = read_single_run(killed_out)
    assert record["complete"] is True and record["finished_at"] and record["missing"] == []
    assert record["run_id"] == killed["run_id"] and record["command"] == killed["command"]
    keys = [(r["model"]["name"], r["task"]["name"]) for r in record["rows"]]
    assert keys == [(r["model"]["name"], r["task"]["name"]) for r in clean["rows"]]  # a clean run's order
    assert [r["session"] for r in record["rows"]] == [1, 2, 2, 2]
    assert record["sessions"][1]["resumed"] is True and record["sessions"][1]["pid"] == os.getpid()
    assert record["rows"][0] == session1_row  # kept whole, its timings those of session 1
    ours, theirs = _by_key(record), _by_key(clean)
    for key in keys:
        assert ours[key]["status"] == "ok"
        assert ours[key]["task"]["n"] == theirs[key]["task"]["n"]
        assert {m: q["value"] for m, q in ours[key]["quality"].items()} == \
            {m: q["value"] for m, q in theirs[key]["quality"].items()}, key
        # the re-run rows were measured here, whole: one timing per sample, none from the killed process
        assert ours[key]["latency"]["ttft_s"]["n"] == ours[key]["task"]["n"]
    assert _predictions(samples) == _predictions(clean_samples)  # identical greedy outputs
    assert len(samples) == len(clean_samples) and len(_predictions(samples)) == len(samples)
    rerun = {(s["model"], s["task"]) for s in samples} - {("a", "tiny-translation")}
    assert all(ours[k]["session"] == 2 for k in rerun)


def test_sigterm_mid_run_marks_the_record_interrupted_and_keeps_the_finished_rows(tiny_model_dir, task_dir,
                                                                                   tmp_path):
    out = tmp_path / "r"
    done = _stalled_run(_args(tiny_model_dir, task_dir, out), tmp_path / "stalled", "Context:", signal.SIGTERM,
                        tmp_path)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-3000:]  # 143, as a shell reports it
    assert "Traceback" not in done.stderr and "interrupted (SIGTERM)" in done.stderr
    record, samples = read_single_run(out)
    assert record["complete"] is False and record["settings"]["interrupted"] is True
    assert record["sessions"][0]["end"] == "interrupted (SIGTERM)"
    assert [(r["model"]["name"], r["task"]["name"], r["status"]) for r in record["rows"]] == [
        ("a", "tiny-translation", "ok")]
    assert len(samples) == record["rows"][0]["task"]["n"]
    assert {"model": "a", "task": "tiny-qa"} in record["missing"]
