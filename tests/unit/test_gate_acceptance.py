"""A gate that can fail: the two embedded models' smoke run (3 examples per task, cut from the committed
example record and rescored with the real metrics, as `llmbench run -t smoke` would score them) against a
copy whose every prediction came back empty must not pass; against itself it passes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from llmbench.cli import main
from llmbench.metrics import compute_all, sample_scores_all
from llmbench.records import RunRecord
from llmbench.records.store import read_run, read_samples, write_run, write_samples
from llmbench.stats import Summary

EXAMPLE = Path(__file__).resolve().parents[2] / "results" / "examples" / "embedded-standard"
SMOKE = 3  # the smoke suite's limit per task (tasks/suites.yaml)


def _smoke_copy(out: Path, run_id: str, blank: bool) -> Path:
    """The example run cut to its first 3 examples per task (``blank``: every prediction empty)."""
    record = read_run(EXAMPLE)
    lines = [dict(line) for line in read_samples(record) if line["index"] < SMOKE]
    rows = []
    for row in record.rows:
        row = copy.deepcopy(row)
        mine = [line for line in lines if (line["model"], line["task"]) == row.key]
        if blank:
            for line in mine:
                line["prediction"] = ""
        names = list(row.quality)
        preds, refs = [line["prediction"] for line in mine], [line["references"] for line in mine]
        row.quality = compute_all(names, preds, refs)
        for line, scores in zip(mine, sample_scores_all(names, preds, refs)):
            line["scores"] = scores
        for field in ("ttft_s", "tpot_s", "e2e_s", "new_tokens"):
            row.latency[field] = Summary.from_values([line[field] for line in mine]).to_dict()
        row.task = {**row.task, "n": len(mine)}
        rows.append(row)
    smoke = RunRecord(run_id=run_id, created_at=record.created_at, command="llmbench run -t smoke",
                      environment=record.environment, settings={**record.settings, "limit": SMOKE}, rows=rows)
    path = write_run(smoke, out)
    write_samples(path.parent, lines)
    return path.parent


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    return _smoke_copy(out, "smoke", blank=False), _smoke_copy(out, "smoke-empty", blank=True)


def _gate(capsys, *args) -> tuple[int, str, str]:
    from llmbench.cli.console import err, out

    out.cache_clear()
    err.cache_clear()
    try:
        main(["gate", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_empty_predictions_on_the_smoke_run_do_not_pass(smoke, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "200")
    base, empty = smoke
    record = read_run(empty)
    assert all(e["value"] in (0.0, None) or name in ("ter", "json_parse_failure_rate")
               for row in record.rows for name, e in row.quality.items())  # the copy really lost everything
    code, out, err = _gate(capsys, "--baseline", base, "--candidate", empty, "--junit", tmp_path / "j.xml")
    assert code != 0 and code == 3  # 3 examples prove nothing either way: undecided, never a pass
    named = {line.split(":")[0].split(" ", 1)[1] for line in out.splitlines() if line.startswith("UNDECIDED ")}
    assert named == {f"{m} / {t}" for m in ("smollm2-135m", "gemma3-270m")
                     for t in ("translation-en-fr", "summarization-news", "extraction-qa", "extraction-json")}
    assert "examples would decide" in out and "could not fail" in err
    # each undecided quality check says how many examples would decide, and that many are more than 3
    junit = (tmp_path / "j.xml").read_text()
    assert junit.count('type="undecided"') == 8


def test_the_smoke_run_against_itself_passes(smoke, capsys):
    base, _ = smoke
    code, out, _ = _gate(capsys, "--baseline", base, "--candidate", base)
    assert code == 0, out
    assert "PASS:" in out and "UNDECIDED" not in out and "REGRESSION" not in out


def test_the_example_record_is_unchanged_by_the_copies(smoke):
    # the committed example stays as committed: the copies are written elsewhere
    data = json.loads((EXAMPLE / "run.json").read_text())
    assert {row["task"]["n"] for row in data["rows"]} == {10}
