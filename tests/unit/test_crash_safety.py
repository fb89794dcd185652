"""Crash-safe records and `llmbench run --resume`, with an instant fake backend (no torch): samples on disk
before their row, completeness keys, a full disk, SIGTERM, the warnings of the reading commands, and what a
resume keeps, runs again and refuses."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
from fakes.instant_backend import InstantBackend

from llmbench import runner
from llmbench.errors import UserError
from llmbench.models.base import Generation
from llmbench.records import RunRecord
from llmbench.records import store as store_module

_REAL_RUN = runner.run


class _Backend(InstantBackend):
    """Answers 'A(<prompt>)'; counts loads and generate calls per task; ``on_generate`` hooks a test in."""

    loads: list[str] = []
    generated: list[str] = []
    on_generate = None

    def load(self, prepared, device, note):
        type(self).loads.append(prepared.spec.name)
        return super().load(prepared, device, note)

    def generate(self, loaded, prompts, params, sync=None):
        task = prompts[0].split(":", 1)[0]
        if f"{loaded.name}/{task}" not in type(self).generated:  # once per row (generate runs per batch)
            type(self).generated.append(f"{loaded.name}/{task}")
        if type(self).on_generate is not None:
            type(self).on_generate(loaded, task)
        return [Generation(p, f"A({p})", 3, 0.01, 0.03) for p in prompts]


@pytest.fixture(autouse=True)
def _fresh_backend(monkeypatch):
    monkeypatch.setattr(_Backend, "loads", [])
    monkeypatch.setattr(_Backend, "generated", [])
    monkeypatch.setattr(_Backend, "on_generate", None)
    monkeypatch.setattr(runner, "run", lambda config, progress=None, resume=None:
                        _REAL_RUN(config, _Backend(), progress, resume))


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    tasks = tmp_path / "tasks"
    (tasks / "data").mkdir(parents=True)
    (tasks / "data" / "d.jsonl").write_text('{"q": "2+2?", "a": "4"}\n{"q": "Capital of France?", "a": "Paris"}\n')
    for name in ("ta", "tb", "tc"):  # the prompt starts with the task's name: the fake backend tells them apart
        (tasks / f"{name}.yaml").write_text(
            f"name: {name}\nkind: extraction\nsource: {{type: jsonl, path: data/d.jsonl}}\n"
            f"prompt: '{name}: {{{{ q }}}}'\nreferences: a\nmetrics: [f1]\n")
    return model, tasks


def _cli(args) -> int:
    from llmbench.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
        raise SystemExit(0)
    return info.value.code


def _args(tmp_path, *extra, models=("a", "b")):
    model, tasks = _setup(tmp_path) if not (tmp_path / "model").exists() else (tmp_path / "model", tmp_path / "tasks")
    out = []
    for m in models:
        out += ["-m", f"{model},name={m}"]
    return ["run", *out, "-t", "ta", "-t", "tb", "--tasks-dir", tasks, "--warmup", "0", "--out", tmp_path / "out",
            *extra]


def _run_dir(tmp_path) -> Path:
    [d] = (tmp_path / "out").iterdir()
    return d


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _samples(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]


def _keys(record: dict) -> list[tuple[str, str]]:
    return [(r["model"]["name"], r["task"]["name"]) for r in record["rows"]]


def _interrupt_at(target: str, exc=KeyboardInterrupt):
    def hook(loaded, task):
        if f"{loaded.name}/{task}" == target:
            raise exc

    return hook


# ---------------------------------------------------------------------------------------------------------
# Writing: samples before their row, completeness keys


def test_every_row_on_disk_has_its_samples_on_disk_and_complete_is_written_last(tmp_path, monkeypatch):
    real_write_run = store_module.write_run
    seen = []

    def write_run(record, out_dir):
        run_dir = Path(out_dir) / record.run_id
        lines = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
        for row in record.rows:  # at the moment run.json is written, the row's samples are already on disk
            assert sum((s["model"], s["task"]) == row.key for s in lines) == row.task["n"], row.key
        seen.append((record.complete, len(record.rows), [tuple(m.values()) for m in record.missing]))
        return real_write_run(record, out_dir)

    monkeypatch.setattr(store_module, "write_run", write_run)
    assert _cli(_args(tmp_path)) == 0
    assert seen[0] == (False, 0, [("a", "ta"), ("a", "tb"), ("b", "ta"), ("b", "tb")])
    assert seen[2] == (False, 2, [("b", "ta"), ("b", "tb")])
    assert [c for c, _, _ in seen[:-1]] == [False] * (len(seen) - 1) and seen[-1] == (True, 4, [])
    record = _record(_run_dir(tmp_path))
    assert record["complete"] is True and record["finished_at"] and record["missing"] == []
    [session] = record["sessions"]
    assert session["session"] == 1 and session["end"] == "complete" and session["pid"] == os.getpid()
    assert session["command"] == record["command"] and record["command"].startswith("llmbench run -m ")
    assert [r["session"] for r in record["rows"]] == [1, 1, 1, 1]


def test_an_old_record_without_completeness_keys_reads_as_complete_and_writes_back_unchanged(tmp_path):
    from report_fixtures import write_record

    from llmbench.records.completeness import record_warnings
    from llmbench.records.store import read_run

    run_dir = write_record(tmp_path, "20250301-120000-old", ["smollm2-135m"], ["translation-en-fr"])
    record = read_run(run_dir)
    assert record.complete is None and not record.incomplete and record.rows[0].session is None
    assert not any("incomplete" in w for w in record_warnings(record))
    data = record.to_dict()
    assert "complete" not in data and "sessions" not in data and "session" not in data["rows"][0]


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d.update(complete="yes"), "complete must be true or false"),
    (lambda d: d.update(finished_at=3), "finished_at must be a string or null"),
    (lambda d: d.update(missing="a"), "missing must be a list"),
    (lambda d: d.update(missing=[{"model": "m"}]), "missing entry 1 must be an object with model and task"),
    (lambda d: d.update(sessions={}), "sessions must be a list"),
    (lambda d: d.update(sessions=[{"session": 0}]), "sessions entry 1 must be an object with a session number"),
    (lambda d: d.update(sessions=[{"session": True}]), "sessions entry 1 must be an object with a session number"),
    (lambda d: d.update(sessions=[{"session": 1, "command": ["x"]}]), "sessions entry 1: command must be a string"),
    (lambda d: d["rows"][0].update(session="2"), "row 1: session must be a session number"),
])
def test_hostile_completeness_values_are_one_line(tmp_path, change, fragment):
    from report_fixtures import write_record

    from llmbench.records.store import read_run

    run_dir = write_record(tmp_path, "20250301-120000-bad", ["smollm2-135m"], ["translation-en-fr"])
    data = json.loads((run_dir / "run.json").read_text())
    change(data)
    (run_dir / "run.json").write_text(json.dumps(data))
    with pytest.raises(UserError) as info:
        read_run(run_dir)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------
# A full disk: one line, exit code 4, nothing earlier lost, no row ok without its samples


def _errors(err: str) -> list[str]:
    """The error lines of stderr (the progress lines before them aside); never a traceback."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error")]


def _enospc(path):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_disk_full_while_appending_samples_is_one_line_and_keeps_the_rows_before(tmp_path, monkeypatch, capsys):
    real_write = os.write
    calls = {"n": 0}

    def write(fd, data):  # the second row's samples: half written, then the disk is full
        if os.readlink(f"/proc/self/fd/{fd}").endswith("samples.jsonl"):
            calls["n"] += 1
            if calls["n"] == 2:
                real_write(fd, bytes(data)[: len(data) // 2])
                raise _enospc(os.readlink(f"/proc/self/fd/{fd}"))
        return real_write(fd, data)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell the samples file's descriptor")
    monkeypatch.setattr(store_module.os, "write", write)
    assert _cli(_args(tmp_path)) == 4
    err = _errors(capsys.readouterr().err)
    run_dir = _run_dir(tmp_path)
    assert len(err) == 1, err
    assert err[0] == (f"error: cannot write {run_dir / 'samples.jsonl'}: No space left on device; the 1 row finished "
                      f"before is in {run_dir / 'run.json'}")
    monkeypatch.undo()
    from llmbench.records.store import read_run, read_samples

    record = read_run(run_dir)  # everything written before still reads
    assert record.incomplete and _keys(record.to_dict()) == [("a", "ta")]
    assert [(m["model"], m["task"]) for m in record.missing] == [("a", "tb"), ("b", "ta"), ("b", "tb")]
    assert record.sessions[-1]["end"] == "write failed"
    samples = read_samples(record)  # the half-written row was cut back: no partial line, no orphan lines
    assert [(s["model"], s["task"]) for s in samples] == [("a", "ta")] * 2
    assert (run_dir / "samples.jsonl").read_text().endswith("\n")


def test_disk_full_while_rewriting_run_json_leaves_the_previous_record(tmp_path, monkeypatch, capsys):
    real = store_module._atomic_write
    calls = {"n": 0}

    def atomic_write(path, text):
        if path.name == "run.json":
            calls["n"] += 1
            if calls["n"] >= 3:  # the start, the first row; then every write of run.json fails
                raise _enospc(path)
        return real(path, text)

    monkeypatch.setattr(store_module, "_atomic_write", atomic_write)
    assert _cli(_args(tmp_path)) == 4
    err = _errors(capsys.readouterr().err)
    run_dir = _run_dir(tmp_path)
    assert err == [f"error: cannot write {run_dir / 'run.json'}: No space left on device; the 1 row finished "
                   f"before is in {run_dir / 'run.json'}"]
    record = _record(run_dir)
    assert record["complete"] is False and _keys(record) == [("a", "ta")]
    # the second row's samples are on disk, its row is not: no row is ok without its samples
    assert {(s["model"], s["task"]) for s in _samples(run_dir)} == {("a", "ta"), ("a", "tb")}


def test_a_permission_error_at_the_first_write_says_nothing_was_recorded(tmp_path, monkeypatch, capsys):
    def atomic_write(path, text):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(store_module, "_atomic_write", atomic_write)
    assert _cli(_args(tmp_path)) == 4
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "Permission denied; nothing was recorded" in err[0], err


# ---------------------------------------------------------------------------------------------------------
# Signals: SIGTERM and SIGHUP like Ctrl-C


def test_sigterm_mid_run_keeps_the_finished_rows_and_exits_143(tmp_path, monkeypatch, capsys):
    before = signal.getsignal(signal.SIGTERM)

    def hook(loaded, task):
        if f"{loaded.name}/{task}" == "a/tb":
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(_Backend, "on_generate", hook)
    assert _cli(_args(tmp_path)) == 143
    assert "interrupted (SIGTERM)" in capsys.readouterr().err
    record = _record(_run_dir(tmp_path))
    assert record["complete"] is False and record["settings"]["interrupted"] is True
    assert _keys(record) == [("a", "ta")]
    assert record["sessions"][0]["end"] == "interrupted (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back


def test_a_signal_during_a_write_waits_for_the_write(tmp_path):
    from llmbench.interrupts import Interrupted, handled

    with handled() as signals:
        with pytest.raises(Interrupted) as info:
            with signals.hold():
                os.kill(os.getpid(), signal.SIGHUP)
                done = True  # reached: the signal waited
        assert done and info.value.name == "SIGHUP" and info.value.exit_code == 129
        with signals.hold(deliver=False):
            os.kill(os.getpid(), signal.SIGTERM)  # dropped: the run is stopping anyway


def test_an_ignored_sighup_stays_ignored(tmp_path):
    from llmbench.interrupts import handled

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with handled():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # nohup llmbench run ...
    finally:
        signal.signal(signal.SIGHUP, previous)


# ---------------------------------------------------------------------------------------------------------
# Reading: a cut-off last line, the warnings of compare, export and gate


def test_a_cut_off_last_samples_line_of_an_incomplete_run_is_ignored_with_a_note(tmp_path, monkeypatch):
    from llmbench.records.store import read_run, read_samples

    monkeypatch.setattr(_Backend, "on_generate", _interrupt_at("a/tb"))
    assert _cli(_args(tmp_path)) == 130
    run_dir = _run_dir(tmp_path)
    with open(run_dir / "samples.jsonl", "a") as fh:
        fh.write('{"model": "a", "task": "tb", "ind')  # kill -9 while appending
    record = read_run(run_dir)
    assert len(read_samples(record)) == 2 and "the last line is cut off" in record.read_notes[0]
    data = _record(run_dir)
    data["complete"] = True
    (run_dir / "run.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="samples.jsonl:3: not valid JSON"):  # a complete run: an error
        read_samples(read_run(run_dir))


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_compare_export_and_gate_warn_on_an_incomplete_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_Backend, "on_generate", _interrupt_at("b/ta"))
    assert _cli(_args(tmp_path)) == 130
    run_dir = _run_dir(tmp_path)
    capsys.readouterr()
    for args in (["compare", run_dir], ["export", run_dir, "-o", tmp_path / "x.md"],
                 ["gate", "--baseline", run_dir, "--candidate", run_dir]):
        _cli(args)
        warned = " ".join(_warnings(capsys.readouterr().err.replace("\n", " ").replace("warning:", "\nwarning:")))
        assert "is incomplete" in warned and "missing rows: b × ta, b × tb" in warned, (args, warned)


def test_an_unfinished_run_is_no_baseline_unless_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_Backend, "on_generate", _interrupt_at("b/ta"))
    assert _cli(_args(tmp_path)) == 130
    run_dir = _run_dir(tmp_path)
    capsys.readouterr()
    where = ["--dir", str(tmp_path / "baselines")]
    assert _cli(["baseline", "save", str(run_dir), "--name", "main", *where]) == 2
    [line] = _errors(capsys.readouterr().err)
    assert "is an unfinished run (2 model × task rows missing)" in line and "--resume" in line
    assert not (tmp_path / "baselines" / "main").exists()
    assert "--incomplete: save it as it is" in line
    # --force replaces an existing baseline only: it never lets an unfinished run through
    assert _cli(["baseline", "save", str(run_dir), "--name", "main", "--force", *where]) == 2
    assert not (tmp_path / "baselines" / "main").exists()
    assert _cli(["baseline", "save", str(run_dir), "--name", "main", "--incomplete", *where]) == 0
    assert (tmp_path / "baselines" / "main" / "run.json").is_file()


def test_compare_and_gate_warn_on_a_row_whose_samples_disagree_with_its_n(tmp_path, capsys):
    assert _cli(_args(tmp_path)) == 0
    run_dir = _run_dir(tmp_path)
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    (run_dir / "samples.jsonl").write_text("\n".join(lines[1:]) + "\n")  # a/ta lost one sample
    capsys.readouterr()
    for args in (["compare", run_dir], ["gate", "--baseline", run_dir, "--candidate", run_dir]):
        _cli(args)
        err = capsys.readouterr().err.replace("\n", " ")
        assert "a × ta (ok): 1 samples in samples.jsonl for task.n 2" in err, (args, err)
        assert "incomplete" not in err


def test_record_warnings_skip_failed_rows_without_samples_and_lm_eval_groups():
    from llmbench.records import ResultRow
    from llmbench.records.completeness import record_warnings

    rows = [ResultRow({"name": "m"}, {"name": "t", "n": 0}, status="failed"),
            ResultRow({"name": "m"}, {"name": "lm-eval:group", "kind": "lm-eval", "n": 40}),
            ResultRow({"name": "m"}, {"name": "u", "n": 2})]
    record = RunRecord("r", "", "", {}, rows=rows, complete=True)
    lines = [{"model": "m", "task": "u", "index": 0}, {"model": "m", "task": "u", "index": 0}]
    assert record_warnings(record, lines) == ["run r: m × u (ok): samples.jsonl repeats index 0; its per-sample "
                                              "figures are not the row's"]


# ---------------------------------------------------------------------------------------------------------
# --resume: what it keeps, what it runs again, and what it refuses


def _interrupted_run(tmp_path, monkeypatch, target="a/tb", *extra) -> Path:
    monkeypatch.setattr(_Backend, "on_generate", _interrupt_at(target))
    assert _cli(_args(tmp_path, *extra)) == 130
    monkeypatch.setattr(_Backend, "on_generate", None)
    _Backend.loads.clear()
    _Backend.generated.clear()
    return _run_dir(tmp_path)


def test_resume_runs_the_missing_and_failed_rows_whole_and_keeps_the_rest_in_plan_order(tmp_path, monkeypatch):
    def hook(loaded, task):  # b/ta fails (kept as failed), then Ctrl-C in b/tb
        if f"{loaded.name}/{task}" == "b/ta":
            raise RuntimeError("CUDA out of memory (simulated)")
        if f"{loaded.name}/{task}" == "b/tb":
            raise KeyboardInterrupt

    monkeypatch.setattr(_Backend, "on_generate", hook)
    assert _cli(_args(tmp_path)) == 130
    run_dir = _run_dir(tmp_path)
    first = _record(run_dir)
    assert [r["status"] for r in first["rows"]] == ["ok", "ok", "failed"]
    monkeypatch.setattr(_Backend, "on_generate", None)
    _Backend.loads.clear()
    _Backend.generated.clear()

    assert _cli(["run", "--resume", run_dir]) == 0
    assert _Backend.loads == ["b"]  # model a: every row kept, not even loaded
    assert _Backend.generated == ["b/ta", "b/tb"]
    record = _record(run_dir)
    assert _keys(record) == [("a", "ta"), ("a", "tb"), ("b", "ta"), ("b", "tb")]
    assert [r["session"] for r in record["rows"]] == [1, 1, 2, 2]
    assert [r["status"] for r in record["rows"]] == ["ok"] * 4
    assert record["rows"][:2] == first["rows"][:2]  # kept as they were, timings included
    assert record["complete"] is True and record["missing"] == [] and "interrupted" not in record["settings"]
    assert record["run_id"] == first["run_id"] and record["command"] == first["command"]
    s1, s2 = record["sessions"]
    assert s1["end"] == "interrupted (SIGINT)" and s2["end"] == "complete" and s2["resumed"] is True
    assert s2["command"] == f"llmbench run --resume {run_dir}" and "forced" not in s2
    samples = _samples(run_dir)
    assert sorted((s["model"], s["task"]) for s in samples) == sorted(_keys(record) * 2)


def test_resume_of_a_complete_run_is_refused(tmp_path, capsys):
    assert _cli(_args(tmp_path)) == 0
    capsys.readouterr()
    assert _cli(["run", "--resume", _run_dir(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the run is complete" in err[0] and "nothing to resume" in err[0]


def test_resume_refuses_another_version_or_machine_unless_forced(tmp_path, monkeypatch, capsys):
    run_dir = _interrupted_run(tmp_path, monkeypatch)
    real = runner.capture_environment

    def other(*a, **k):
        return dict(real(*a, **k), llmbench="99.0", hostname="elsewhere")

    monkeypatch.setattr(runner, "capture_environment", other)
    capsys.readouterr()
    assert _cli(["run", "--resume", run_dir]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the environment differs" in err[0] and "llmbench" in err[0] and "'elsewhere'" in err[0]
    assert _Backend.generated == [] and _record(run_dir)["complete"] is False
    assert _cli(["run", "--resume", run_dir, "--force"]) == 0
    record = _record(run_dir)
    s2 = record["sessions"][1]
    assert s2["forced"] is True and any("'99.0'" in d for d in s2["differs"])
    assert [r["session"] for r in record["rows"]] == [1, 2, 2, 2]
    # another machine: this session probed its own peak, kept in its entry, and its rows use it
    assert s2["memory_bandwidth"]["memory_bandwidth_method"] == record["environment"]["memory_bandwidth_method"]
    peaks = [r["latency"]["roofline"]["peak_bytes_per_s"] for r in record["rows"]]
    assert peaks[1:] == [s2["memory_bandwidth"]["memory_bandwidth_bytes_per_s"]] * 3


def test_resume_refuses_options_that_differ_unless_forced(tmp_path, monkeypatch, capsys):
    run_dir = _interrupted_run(tmp_path, monkeypatch)
    capsys.readouterr()
    for extra, fragment in [(["--max-new-tokens", "5"], "--max-new-tokens (default) -> 5"),
                            (["--limit", "1"], "it changes which rows the run has"),
                            (["-t", "ta"], "it changes which rows the run has"),
                            (["--out", tmp_path / "x"], "--out does not apply with --resume"),
                            (["--limit", "1", "--force"], "it changes which rows the run has")]:
        assert _cli(["run", "--resume", run_dir, *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], (extra, err)
    assert _Backend.generated == []
    assert _cli(["run", "--resume", run_dir, "--warmup", "0"]) == 0  # the run's own value: no difference
    assert "forced" not in _record(run_dir)["sessions"][1]


def test_forced_option_is_used_for_the_rerun_rows_and_labelled(tmp_path, monkeypatch):
    run_dir = _interrupted_run(tmp_path, monkeypatch)
    assert _cli(["run", "--resume", run_dir, "--max-new-tokens", "5", "--force"]) == 0
    record = _record(run_dir)
    s2 = record["sessions"][1]
    assert s2["forced"] is True and s2["differs"] == ["--max-new-tokens (default) -> 5"]
    assert [r["task"]["max_new_tokens"] for r in record["rows"] if r["session"] == 2] == [5, 5, 5]


def test_force_without_resume_and_no_model_are_usage_errors(tmp_path, capsys):
    model, tasks = _setup(tmp_path)
    assert _cli(["run", "-m", model, "--force", "--out", tmp_path / "o"]) == 2
    assert capsys.readouterr().err.strip() == "error: --force only applies with --resume RUN_DIR"
    assert _cli(["run", "--out", tmp_path / "o"]) == 2
    assert capsys.readouterr().err.strip() == "error: Missing option '-m' / '--model'."


def test_resume_reruns_an_ok_row_whose_samples_are_incomplete(tmp_path, monkeypatch):
    run_dir = _interrupted_run(tmp_path, monkeypatch, "b/ta")
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    (run_dir / "samples.jsonl").write_text("\n".join(lines[:3]) + "\n")  # a/tb kept one of its two samples
    assert _cli(["run", "--resume", run_dir]) == 0
    assert _Backend.generated == ["a/tb", "b/ta", "b/tb"]
    record = _record(run_dir)
    assert [r["session"] for r in record["rows"]] == [1, 2, 2, 2]
    assert sorted((s["model"], s["task"], s["index"]) for s in _samples(run_dir)) == sorted(
        (m, t, i) for m, t in _keys(record) for i in (0, 1))


def test_resume_from_another_working_directory_is_refused_unless_forced(tmp_path, monkeypatch, capsys):
    run_dir = _interrupted_run(tmp_path, monkeypatch)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # `-m ./model` would name another directory here
    capsys.readouterr()
    assert _cli(["run", "--resume", run_dir]) == 2
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "working directory" in err[0] and str(tmp_path / "elsewhere") in err[0]
    assert _cli(["run", "--resume", run_dir, "--force"]) == 0
    assert any(d.startswith("working directory") for d in _record(run_dir)["sessions"][1]["differs"])


def test_resume_of_a_batch_sweep_runs_only_the_unfinished_levels(tmp_path, monkeypatch):
    real = _Backend.generate
    stop = {"at_batch_2": True}
    calls = []

    def generate(self, loaded, prompts, params, sync=None):
        if stop["at_batch_2"] and params.batch_size == 2:
            raise KeyboardInterrupt
        calls.append((prompts[0].split(":")[0], params.batch_size))
        return real(self, loaded, prompts, params, sync)

    monkeypatch.setattr(_Backend, "generate", generate)
    assert _cli(_args(tmp_path, "--batch-size", "1,2", models=("a",))) == 130
    run_dir = _run_dir(tmp_path)
    assert _keys(_record(run_dir)) == [("a", "ta")]
    stop["at_batch_2"] = False
    calls.clear()
    assert _cli(["run", "--resume", run_dir]) == 0
    record = _record(run_dir)
    assert _keys(record) == [("a", "ta"), ("a@b2", "ta"), ("a", "tb"), ("a@b2", "tb")]
    assert [r["session"] for r in record["rows"]] == [1, 2, 2, 2]
    assert sorted(set(calls)) == [("ta", 2), ("tb", 1), ("tb", 2)]  # ta at batch 1 was kept, not run again
    # the kept batch-1 answers are still the reference of the re-run level
    assert record["rows"][1]["model"]["answers_vs_batch1"] == {"differ": 0, "of": 2, "indices": []}


def test_resume_of_a_length_sweep_runs_only_the_unfinished_levels(tmp_path, monkeypatch):
    real = _Backend.generate
    stop = {"at_8": True}
    calls = []

    def generate(self, loaded, prompts, params, sync=None):
        if stop["at_8"] and params.max_new_tokens == 8:
            raise KeyboardInterrupt
        calls.append((prompts[0].split(":")[0], params.max_new_tokens))
        return real(self, loaded, prompts, params, sync)

    monkeypatch.setattr(_Backend, "generate", generate)
    assert _cli(_args(tmp_path, "--new-tokens", "4,8", models=("a",))) == 130
    run_dir = _run_dir(tmp_path)
    assert _keys(_record(run_dir)) == [("a@n4", "ta")]
    stop["at_8"] = False
    calls.clear()
    assert _cli(["run", "--resume", run_dir]) == 0
    record = _record(run_dir)
    assert _keys(record) == [("a@n4", "ta"), ("a@n8", "ta"), ("a@n4", "tb"), ("a@n8", "tb")]
    assert [r["session"] for r in record["rows"]] == [1, 2, 2, 2]
    assert sorted(set(calls)) == [("ta", 8), ("tb", 4), ("tb", 8)]  # ta at 4 tokens was kept, not run again


def test_record_warnings_name_five_rows_then_count_the_rest():
    """A 100,000-row record without its samples would warn once per row: five are named, one line counts
    the others."""
    from llmbench.records import ResultRow
    from llmbench.records.completeness import MAX_ROW_WARNINGS, record_warnings

    rows = [ResultRow({"name": f"m{i}"}, {"name": "t", "n": 3}) for i in range(12)]
    lines = record_warnings(RunRecord("r", "", "", {}, rows=rows, complete=True), [])
    assert len(lines) == MAX_ROW_WARNINGS + 1 == 6
    assert lines[0].startswith("run r: m0 × t (ok): 0 samples in samples.jsonl for task.n 3")
    assert lines[-1] == "run r: 7 more rows (of 12) whose samples.jsonl lines disagree with their task.n"


def test_resume_refuses_a_task_whose_examples_changed_since_the_run_began_unless_forced(tmp_path, monkeypatch,
                                                                                         capsys):
    run_dir = _interrupted_run(tmp_path, monkeypatch)  # a/ta kept; a/tb, b/ta, b/tb to run
    digests = {(s["task"], s["index"]): s["example"] for s in _samples(run_dir)}
    assert len(set(digests.values())) == 2 and all(len(d) == 16 for d in digests.values())
    data = tmp_path / "tasks" / "data" / "d.jsonl"
    data.write_text('{"q": "2+2?", "a": "4"}\n{"q": "Capital of Italy?", "a": "Rome"}\n')  # index 1 changed
    capsys.readouterr()
    assert _cli(["run", "--resume", run_dir]) == 2
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "task ta: 1 of 2 examples differ from those its kept rows ran (first: index 1)" in err[0]
    assert _Backend.generated == [] and _record(run_dir)["complete"] is False
    assert _cli(["run", "--resume", run_dir, "--force"]) == 0
    record = _record(run_dir)
    assert any(d.startswith("task ta: 1 of 2") for d in record["sessions"][1]["differs"])
    new = {(s["model"], s["task"], s["index"]): s["example"] for s in _samples(run_dir)}
    assert new[("a", "ta", 1)] != new[("b", "ta", 1)]  # the record shows it: compare and gate pair no such lines


def test_resume_refuses_a_task_whose_data_grew_since_the_run_began(tmp_path, monkeypatch, capsys):
    run_dir = _interrupted_run(tmp_path, monkeypatch)  # a/ta kept (2 examples); the rest to run
    data = tmp_path / "tasks" / "data" / "d.jsonl"
    data.write_text(data.read_text() + '{"q": "Capital of Spain?", "a": "Madrid"}\n')  # the same two, and one more
    capsys.readouterr()
    assert _cli(["run", "--resume", run_dir]) == 2  # the new rows would run 3 examples, the kept one ran 2
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "task ta: 1 more example than the 2 its kept rows ran (first: index 2)" in err[0]
    assert _Backend.generated == [] and _record(run_dir)["complete"] is False


def test_a_resumed_session_sets_its_rows_against_the_records_peak(tmp_path, monkeypatch):
    import llmbench.meters.bandwidth as bw

    probes = []

    def probe(device):  # a new figure at every call: a second probe would show in the rows
        probes.append(device)
        return {"available": True, "bytes_per_s": 1e9 * len(probes), "method": "fake", "reason": None,
                "device": device}

    monkeypatch.setattr(bw, "peak_bandwidth", probe)
    run_dir = _interrupted_run(tmp_path, monkeypatch)
    assert len(probes) == 1
    assert _cli(["run", "--resume", str(Path(run_dir) / "run.json")]) == 0  # its run.json names it as well
    assert len(probes) == 1  # the same machine: the record's peak, no second probe
    record = _record(run_dir)
    assert record["environment"]["memory_bandwidth_bytes_per_s"] == 1e9
    assert {r["latency"]["roofline"]["peak_bytes_per_s"] for r in record["rows"]} == {1e9}
    assert [r["session"] for r in record["rows"]] == [1, 2, 2, 2] and "memory_bandwidth" not in record["sessions"][1]


def test_resume_with_the_same_examples_is_not_labelled(tmp_path, monkeypatch):
    run_dir = _interrupted_run(tmp_path, monkeypatch)
    data = tmp_path / "tasks" / "data" / "d.jsonl"
    data.write_text(data.read_text().replace('"a": "4"}', '"a": "4", "note": "unused"}'))  # a field no prompt uses
    assert _cli(["run", "--resume", run_dir]) == 0
    assert "forced" not in _record(run_dir)["sessions"][1]
