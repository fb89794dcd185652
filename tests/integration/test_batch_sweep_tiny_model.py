"""`llmbench run --batch-size 1,4` on the tiny random model: two level rows, both scored, throughput and
memory per level, and the greedy answers at batch 4 compared with batch 1's (the record says where they
differ). Speed is not asserted here (timing asserts belong in benchmarks); the figures are printed."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.integration

from cli_helpers import read_single_run, run_cli  # noqa: E402

SENTENCES = ["The cat sleeps on the sofa.", "We are going to the market tomorrow.", "The train leaves at noon.",
             "It rains.", "My brother reads a very long book every summer.", "Open the window, please.",
             "The children play in the garden after school.", "Where is the station?"]


def test_batch_sweep_1_4_gives_two_level_rows_with_answers_compared(tiny_model_dir, task_dir, tmp_path, capsys):
    (task_dir / "data" / "sweep.jsonl").write_text(
        "".join(json.dumps({"source": s, "target": s}) + "\n" for s in SENTENCES))
    (task_dir / "sweep.yaml").write_text(
        "name: sweep\nkind: translation\nsource: {type: jsonl, path: data/sweep.jsonl}\n"
        "prompt: \"Translate into French: {{ source }}\\nFrench:\"\nreferences: target\nmetrics: [chrf]\n"
        "generation: {max_new_tokens: 12, stop: []}\n")
    out = tmp_path / "results"
    code = run_cli(["run", "-m", f"{tiny_model_dir},name=tiny", "-t", "sweep", "--tasks-dir", str(task_dir),
                    "--out", str(out), "--device", "cpu", "--batch-size", "1,4", "--warmup", "1"])
    assert code == 0
    record, samples = read_single_run(out)
    assert record["settings"]["batch_sizes"] == [1, 4] and record["settings"]["batch_size"] == 1
    rows = {r["model"]["name"]: r for r in record["rows"]}
    assert list(rows) == ["tiny", "tiny@b4"]
    b1, b4 = rows["tiny"], rows["tiny@b4"]
    for row, bs in ((b1, 1), (b4, 4)):
        assert row["status"] == "ok", row["error"]
        assert row["model"]["batch_size"] == bs and row["latency"]["batch_size"] == bs
        assert row["latency"]["tokens_per_s"] > 0 and row["latency"]["e2e_tokens_per_s"] > 0
        assert row["memory"]["peak_rss_bytes"] > 0 and row["quality"]["chrf"]["value"] is not None
    assert b4["model"]["setting"] == "throughput" and b4["model"]["base_name"] == "tiny"

    # the comparison in the record is what samples.jsonl shows, prompt by prompt
    by_level = {name: {s["index"]: s["prediction"] for s in samples if s["model"] == name} for name in rows}
    assert len(by_level["tiny"]) == len(by_level["tiny@b4"]) == len(SENTENCES)
    differ = [i for i in by_level["tiny"] if by_level["tiny"][i] != by_level["tiny@b4"][i]]
    assert b4["model"]["answers_vs_batch1"] == {"differ": len(differ), "of": len(SENTENCES), "indices": differ}
    if differ:
        assert "greedy answers differ from batch 1's" in " ".join(capsys.readouterr().err.split())
    with capsys.disabled():  # the figures seen, for the record (not asserted)
        for name, row in rows.items():
            lat = row["latency"]
            print(f"\n{name}: decode {lat['tokens_per_s']:.1f} tok/s, end-to-end {lat['e2e_tokens_per_s']:.1f} "
                  f"tok/s, peak RSS {row['memory']['peak_rss_bytes'] / 2**20:.0f} MiB, "
                  f"J/token {row['energy'].get('joules_per_token')}, chrF {row['quality']['chrf']['value']:.2f}")
        print(f"answers at batch 4 vs batch 1: {b4['model']['answers_vs_batch1']}")
