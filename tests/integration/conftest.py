"""Integration fixtures: a small task directory (few examples, short generations) for tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

TRANSLATION = [
    {"source": "The cat sleeps on the sofa.", "target": "Le chat dort sur le canapé."},
    {"source": "We are going to the market tomorrow.", "target": "Nous allons au marché demain."},
    {"source": "The train leaves at noon.", "target": "Le train part à midi."},
]
QA = [
    {"context": "Marie Curie was born in Warsaw in 1867.", "question": "Where was Marie Curie born?",
     "answers": ["Warsaw", "in Warsaw"]},
    {"context": "The bridge opened in 1932 after six years of work.", "question": "When did the bridge open?",
     "answers": ["1932", "in 1932"]},
]


@pytest.fixture()
def task_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tasks"
    (d / "data").mkdir(parents=True)
    (d / "data" / "tr.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRANSLATION))
    (d / "data" / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in QA))
    (d / "tiny-translation.yaml").write_text(
        "name: tiny-translation\nkind: translation\ndescription: three sentences\n"
        "source: {type: jsonl, path: data/tr.jsonl}\n"
        "prompt: \"Translate into French: {{ source }}\\nFrench:\"\n"
        "references: target\nmetrics: [bleu, chrf, ter]\n"
        "generation: {max_new_tokens: 8, stop: []}\n"
    )
    (d / "tiny-qa.yaml").write_text(
        "name: tiny-qa\nkind: extraction\ndescription: two questions\n"
        "source: {type: jsonl, path: data/qa.jsonl}\n"
        "prompt: \"Context: {{ context }}\\nQuestion: {{ question }}\\nAnswer:\"\n"
        "references: answers\nmetrics: [exact_match, f1]\n"
        "generation: {max_new_tokens: 6, stop: []}\n"
    )
    return d
