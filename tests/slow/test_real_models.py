"""The real packaged models (SmolLM2-135M-Instruct, Gemma-3-270M): minutes on a CPU, so marked slow.

`verify_record` recomputes every quality value of a run from its samples.jsonl with the reference
libraries called directly (sacrebleu, rouge-score) and an independent SQuAD normalisation written here.
"""

from __future__ import annotations

import collections
import json
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _squad_norm(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _squad_f1(pred: str, ref: str) -> float:
    p, r = _squad_norm(pred).split(), _squad_norm(ref).split()
    if not p or not r:
        return float(p == r)
    common = sum((collections.Counter(p) & collections.Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def verify_record(run_dir: Path) -> int:
    """Assert run.json's quality equals the reference libraries on samples.jsonl; returns values checked."""
    import sacrebleu
    from rouge_score import rouge_scorer

    record = json.loads((run_dir / "run.json").read_text())
    samples = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    checked = 0
    for row in record["rows"]:
        if row["status"] != "ok":
            continue
        rows = sorted((s for s in samples if s["model"] == row["model"]["name"] and s["task"] == row["task"]["name"]),
                      key=lambda s: s["index"])
        preds = [s["prediction"] for s in rows]
        refs = [s["references"] for s in rows]
        width = max(len(r) for r in refs)
        streams = [[r[i] if i < len(r) else None for r in refs] for i in range(width)]
        q = row["quality"]
        expected = {}
        if "bleu" in q:
            expected["bleu"] = sacrebleu.corpus_bleu(preds, streams).score
            expected["chrf"] = sacrebleu.corpus_chrf(preds, streams).score
            expected["ter"] = sacrebleu.corpus_ter(preds, streams).score
        if "rouge1" in q:
            scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
            scores = [scorer.score_multi(r, p) for p, r in zip(preds, refs)]
            for k in ("rouge1", "rouge2", "rougeL"):
                expected[k] = sum(s[k].fmeasure for s in scores) / len(scores)
        if "exact_match" in q:
            expected["exact_match"] = 100 * sum(
                max(float(_squad_norm(p) == _squad_norm(r)) for r in rs) for p, rs in zip(preds, refs)) / len(preds)
            expected["f1"] = 100 * sum(max(_squad_f1(p, r) for r in rs) for p, rs in zip(preds, refs)) / len(preds)
        for name, value in expected.items():
            assert q[name]["value"] == pytest.approx(value, abs=1e-9), (row["model"]["name"], name)
            checked += 1
    return checked


def test_standard_suite_on_both_models_matches_reference_libraries(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "llmbench", "run", "-m", "smollm2-135m", "-m", "gemma3-270m", "-t", "standard",
         "--limit", "3", "--out", str(out)], capture_output=True, text=True, timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [run_dir] = list(out.iterdir())
    record = json.loads((run_dir / "run.json").read_text())
    assert {r["status"] for r in record["rows"]} == {"ok"}
    assert verify_record(run_dir) == 2 * (3 + 3 + 2)


if __name__ == "__main__":  # python tests/slow/test_real_models.py results/<run_id>
    print(f"{verify_record(Path(sys.argv[1]))} quality values equal the reference libraries")
