"""Quality metrics: values equal the reference libraries, sufficient stats reproduce corpus scores, CIs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF, TER

import llmbench
from llmbench.errors import UserError
from llmbench.metrics import (
    METRIC_NAMES,
    compute_all,
    evaluate,
    get_metric,
    sample_scores_all,
    sample_stats_all,
)
from llmbench.metrics.jsonfields import extract_json_object, normalize_value
from llmbench.metrics.squad import normalize_answer
from llmbench.metrics.text import reference_streams
from llmbench.stats import bootstrap_ci

SACRE = {"bleu": BLEU, "chrf": CHRF, "ter": TER}

# sacrebleu's README example (documented: BLEU = 48.53, chrF2 = 59.73), regrouped per sample
README_SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
README_REFS = [
    ["The dog bit the man.", "The dog had bit the man."],
    ["It was not unexpected.", "No one was surprised."],
    ["The man bit him first.", "The man had bitten the dog."],
]

# several references (variable count), an empty prediction, French accents, punctuation, repeats
PREDS = [
    "The cat sat on the mat.",
    "",
    "L'été dernier, nous sommes allés à la plage près de Nice.",
    "A quick brown fox jumps over the lazy dog",
    "the the the the",
    "Numbers: 3.14 and 42!",
    "Il a mangé une pomme.",
    "completely unrelated output text here",
]
REFS = [
    ["The cat is sitting on the mat.", "A cat sat on the mat."],
    ["Nothing was said."],
    ["L'été dernier, nous sommes allés à la plage à Nice.", "Nous étions à la plage près de Nice cet été.",
     "L'été passé nous sommes allés à la mer."],
    ["The quick brown fox jumps over the lazy dog."],
    ["The cat is on the mat."],
    ["Numbers: 3.14 and 42!", "numbers 3.14, 42"],
    ["Il a mangé une pomme rouge.", "Il mange une pomme."],
    ["The weather is nice today."],
]


def library_corpus(name: str, preds: list[str], refs: list[list[str]]) -> float:
    """The library's own corpus score, streams built independently of llmbench's helper."""
    width = max(len(r) for r in refs)
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(width)]
    return SACRE[name]().corpus_score(preds, streams).score


# ---------------------------------------------------------------- registry / API


def test_metric_names_and_attributes():
    assert set(METRIC_NAMES) == {
        "bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "exact_match", "f1",
        "json_precision", "json_recall", "json_f1", "json_parse_failure_rate",
    }
    lower_better = {"ter", "json_parse_failure_rate"}
    for name in METRIC_NAMES:
        m = get_metric(name)
        assert m.name == name
        assert m.higher_is_better is (name not in lower_better)
        assert m.scale in ("0-100", "0-1")
        assert isinstance(m.library, str) and m.library
    assert get_metric("bleu").library.startswith("sacrebleu 2.")
    assert get_metric("rouge1").library.startswith("rouge-score 0.1.2")
    assert get_metric("bleu").scale == "0-100"
    assert get_metric("f1").scale == "0-100"
    assert get_metric("rougeL").scale == "0-1"
    assert get_metric("json_f1").scale == "0-1"


def test_unknown_metric_is_user_error_with_suggestion():
    with pytest.raises(UserError) as exc:
        get_metric("blue")
    msg = str(exc.value)
    assert "unknown metric 'blue'" in msg and "known:" in msg and "did you mean 'bleu'" in msg
    with pytest.raises(UserError):
        get_metric("zzzzzz")


def test_import_does_not_pull_torch():
    code = "import sys, llmbench.metrics as m; m.get_metric('bleu'); assert 'torch' not in sys.modules"
    root = str(Path(llmbench.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_input_validation():
    m = get_metric("bleu")
    with pytest.raises(ValueError):
        m.sample_stats(["a", "b"], [["a"]])
    with pytest.raises(UserError):
        m.sample_stats(["a"], [[]])
    # a bare string reference is one reference; None prediction is scored as empty
    assert m.compute(["a b c d"], ["a b c d"])["value"] == pytest.approx(100.0)
    assert m.sample_scores([None], [["x"]]) == [0.0]


def test_empty_corpus():
    r = get_metric("rouge1").compute([], [])
    assert r["n"] == 0 and r["value"] is None and r["ci_low"] is None


# ---------------------------------------------------------------- sacrebleu


def test_sacrebleu_documented_values():
    assert round(get_metric("bleu").compute(README_SYS, README_REFS)["value"], 2) == 48.53
    assert round(get_metric("chrf").compute(README_SYS, README_REFS)["value"], 2) == 59.73


def test_variable_reference_count_documented_value():
    # sacrebleu README: dropping the first reference of the first sentence gives BLEU = 29.44
    refs = [r[:] for r in README_REFS]
    refs[0] = ["The dog had bit the man."]
    assert round(get_metric("bleu").compute(README_SYS, refs)["value"], 2) == 29.44


def test_reference_streams_pad_with_none():
    assert reference_streams([["a", "b"], ["c"]]) == [["a", "c"], ["b", None]]


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter"])
def test_sacrebleu_corpus_equals_library(name):
    m = get_metric(name)
    stats = m.sample_stats(PREDS, REFS)
    assert stats.shape[0] == len(PREDS)
    expected = library_corpus(name, PREDS, REFS)
    assert m.aggregate(stats) == pytest.approx(expected, abs=1e-9)
    assert m.compute(PREDS, REFS)["value"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter"])
def test_sacrebleu_variable_refs_equal_per_sentence_library_stats(name):
    # Independent of any stream transposition: sum the library's per-sentence statistics, each computed
    # with only that sentence's real references. An empty-string pad would change TER and chrF.
    lib = SACRE[name]()
    rows = [lib._extract_corpus_statistics([p], [[r] for r in rs])[0] for p, rs in zip(PREDS, REFS)]
    summed = [sum(col) for col in zip(*rows)]
    expected = lib._compute_score_from_stats(summed).score
    assert get_metric(name).compute(PREDS, REFS)["value"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter"])
def test_sacrebleu_subset_aggregate_equals_library_on_subset(name):
    m = get_metric(name)
    stats = m.sample_stats(PREDS, REFS)
    idx = [0, 2, 2, 5, 7]
    expected = library_corpus(name, [PREDS[i] for i in idx], [REFS[i] for i in idx])
    assert m.aggregate(stats[idx]) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter"])
def test_sacrebleu_sample_scores_equal_sentence_score(name):
    sentence = BLEU(effective_order=True) if name == "bleu" else SACRE[name]()
    expected = [sentence.sentence_score(p, rs).score for p, rs in zip(PREDS, REFS)]
    assert get_metric(name).sample_scores(PREDS, REFS) == pytest.approx(expected, abs=1e-9)


def test_sacrebleu_extremes_and_direction():
    preds = ["the cat sat on the mat today", "hello there my friend"]
    assert get_metric("bleu").compute(preds, [[p] for p in preds])["value"] == pytest.approx(100.0)
    assert get_metric("chrf").compute(preds, [[p] for p in preds])["value"] == pytest.approx(100.0)
    assert get_metric("ter").compute(preds, [[p] for p in preds])["value"] == 0.0
    assert get_metric("ter").compute(["The Cat"], [["the cat"]])["value"] == 0.0  # sacrebleu TER ignores case
    assert get_metric("bleu").compute(["The Cat sat"], [["the cat sat"]])["value"] < 100.0  # BLEU does not
    empty = get_metric("bleu").compute(["", ""], [[p] for p in preds])
    assert empty["value"] == 0.0
    assert get_metric("ter").compute(["", ""], [[p] for p in preds])["value"] == pytest.approx(100.0)


# ---------------------------------------------------------------- ROUGE


@pytest.mark.parametrize("name", ["rouge1", "rouge2", "rougeL"])
def test_rouge_equals_library(name):
    scorer = rouge_scorer.RougeScorer([name], use_stemmer=True)
    per_sample = [max(scorer.score(r, p)[name].fmeasure for r in rs) for p, rs in zip(PREDS, REFS)]
    m = get_metric(name)
    assert m.sample_scores(PREDS, REFS) == pytest.approx(per_sample, abs=1e-12)
    assert m.compute(PREDS, REFS)["value"] == pytest.approx(float(np.mean(per_sample)), abs=1e-12)
    assert m.sample_scores([""], [["some words"]]) == [0.0]


def test_rouge_uses_stemming():
    # "running"/"runs" stem to "run" with the Porter stemmer; without stemming rouge1 would be 0.5
    assert get_metric("rouge1").sample_scores(["cats running"], [["cat runs"]]) == [1.0]


def test_rouge_all_from_one_pass_equals_single():
    stats = sample_stats_all(["rouge1", "rouge2", "rougeL"], PREDS, REFS)
    for name in ("rouge1", "rouge2", "rougeL"):
        np.testing.assert_array_equal(stats[name], get_metric(name).sample_stats(PREDS, REFS))


# ---------------------------------------------------------------- SQuAD


@pytest.mark.parametrize("text, expected", [
    ("The  Eiffel-Tower!", "eiffeltower"),
    ("A cat, an apple and THE dog.", "cat apple and dog"),
    ("theater", "theater"),
    ("Anne and Theo", "anne and theo"),
    ("  Hello\tworld\n", "hello world"),
    ("L'été à Paris", "lété à paris"),
    ("the", ""),
    ("(1,234.5)", "12345"),
])
def test_squad_normalisation(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("pred, refs, em, f1", [
    ("the cat sat", ["a cat sat down"], 0.0, 0.8),          # P = 1, R = 2/3
    ("Paris", ["paris.", "City of Paris"], 1.0, 1.0),
    ("big big cat", ["big cat cat"], 0.0, 2 / 3),         # Counter overlap = 2 of 3 tokens
    ("in 1815", ["1815", "the year 1815"], 0.0, 2 / 3),   # best reference per metric
    ("London", ["Paris"], 0.0, 0.0),
    ("", [""], 1.0, 1.0),                                 # no-answer, correctly abstained
    ("The", [""], 1.0, 1.0),                              # normalises to empty
    ("something", [""], 0.0, 0.0),
    ("", ["Paris"], 0.0, 0.0),
    ("", ["the", "Paris"], 0.0, 0.0),                     # v2.0: "the" is dropped when Paris exists
    ("", ["the"], 1.0, 1.0),
])
def test_squad_em_f1_hand_computed(pred, refs, em, f1):
    assert get_metric("exact_match").sample_scores([pred], [refs]) == [pytest.approx(100 * em)]
    assert get_metric("f1").sample_scores([pred], [refs]) == [pytest.approx(100 * f1)]


def test_squad_corpus_scale():
    preds = ["the cat sat", "Paris", "London"]
    refs = [["a cat sat down"], ["paris"], ["Paris"]]
    assert get_metric("f1").compute(preds, refs)["value"] == pytest.approx(100 * (0.8 + 1 + 0) / 3)
    assert get_metric("exact_match").compute(preds, refs)["value"] == pytest.approx(100 / 3)


# ---------------------------------------------------------------- JSON fields

REF = '{"name": "Ada Lovelace", "year": "1815", "city": null}'


@pytest.mark.parametrize("pred, counts", [
    ('{"name": "Ada Lovelace", "year": "1815"}', (2, 0, 0, 0)),                 # perfect
    ('{"name": "  ada   LOVELACE ", "year": 1815, "city": null}', (2, 0, 0, 0)),  # normalised, number, null
    ('{"name": "Ada Lovelace", "year": "1816"}', (1, 1, 1, 0)),                 # partial: wrong value
    ('{"name": "Ada Lovelace"}', (1, 0, 1, 0)),                                 # missing field
    ('{"name": "Ada Lovelace", "year": "", "city": "London"}', (1, 1, 1, 0)),   # "" absent, extra field
    ('{"name": "Charles", "year": "1791"}', (0, 2, 2, 0)),                      # all wrong
    ('Sure! Here it is: {"name": "Ada Lovelace", "year": "1815"} Hope it helps {x}', (2, 0, 0, 0)),
    ('```json\n{\n  "name": "Ada Lovelace",\n  "year": "1815"\n}\n```', (2, 0, 0, 0)),
    ('Use {braces} like {this}. {"name": "Ada Lovelace"}', (1, 0, 1, 0)),     # first *parseable* object
    ("I do not know.", (0, 0, 2, 1)),                                           # unparseable
    ('{"name": "Ada Lovelace", "year": "18', (0, 0, 2, 1)),                     # truncated
    ("", (0, 0, 2, 1)),
])
def test_json_field_counts(pred, counts):
    stats = get_metric("json_f1").sample_stats([pred], [[REF]])
    assert tuple(stats[0]) == counts


def test_json_extraction_and_value_normalisation():
    assert extract_json_object('x {"a": {"b": 1}} y') == {"a": {"b": 1}}
    assert extract_json_object('[{"a": "1"}]') == {"a": "1"}
    assert extract_json_object("no object") is None
    assert normalize_value("  Hello \n  World ") == "hello world"
    assert normalize_value("STRASSE") == normalize_value("straße")  # casefold, not lower
    assert normalize_value("   ") is None
    assert normalize_value(None) is None
    assert normalize_value(42) == "42"


def test_json_micro_average_hand_computed():
    preds = [
        '{"name": "Ada Lovelace", "year": "1815"}',  # tp 2
        '{"name": "Ada Lovelace", "year": "1816"}',  # tp 1 fp 1 fn 1
        '{"name": "Ada Lovelace"}',                  # tp 1 fn 1
        "garbage",                                    # fn 2, parse failure
    ]
    refs = [[REF]] * 4
    res = compute_all(["json_precision", "json_recall", "json_f1", "json_parse_failure_rate"], preds, refs)
    # TP 4, FP 1, FN 4
    assert res["json_precision"]["value"] == pytest.approx(4 / 5)
    assert res["json_recall"]["value"] == pytest.approx(4 / 8)
    assert res["json_f1"]["value"] == pytest.approx(8 / 13)
    assert res["json_parse_failure_rate"]["value"] == pytest.approx(1 / 4)
    assert res["json_parse_failure_rate"]["higher_is_better"] is False
    assert get_metric("json_f1").sample_scores(preds, refs) == pytest.approx([1.0, 0.5, 2 / 3, 0.0])
    assert get_metric("json_parse_failure_rate").sample_scores(preds, refs) == [0.0, 0.0, 0.0, 1.0]


def test_json_multiple_references_take_best_f1():
    stats = get_metric("json_f1").sample_stats(['{"a": "y"}'], [['{"a": "x"}', '{"a": "Y", "b": null}']])
    assert tuple(stats[0]) == (1, 0, 0, 0)


def test_json_empty_reference_and_bad_reference():
    m = get_metric("json_f1")
    assert m.sample_scores(["{}"], [['{"a": null}']]) == [1.0]
    assert m.sample_scores(["nothing"], [['{"a": null}']]) == [0.0]  # parse failure displays as 0
    with pytest.raises(UserError):
        m.sample_stats(["{}"], [["not json"]])
    with pytest.raises(UserError):
        m.sample_stats(["{}"], [['["a list"]']])


# ---------------------------------------------------------------- CIs and helpers


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_ci_contains_value_and_is_deterministic(name):
    if name.startswith("json"):
        preds = ['{"a": "1", "b": "2"}', '{"a": "1"}', "oops", '{"a": "3", "b": "2"}', '{"b": "2"}'] * 4
        refs = [['{"a": "1", "b": "2"}']] * len(preds)
    else:
        preds, refs = PREDS, REFS
    m = get_metric(name)
    r = m.compute(preds, refs, seed=7, resamples=300)
    assert r["n"] == len(preds)
    assert r["ci_low"] <= r["value"] <= r["ci_high"]
    assert r["ci_low"] < r["ci_high"]
    assert m.compute(preds, refs, seed=7, resamples=300) == r
    stats = m.sample_stats(preds, refs)
    # summarize resamples column sums (aggregate_many); the row-by-row loop agrees to rounding
    loop = bootstrap_ci(stats, statistic=m.aggregate, resamples=300, seed=7)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(loop, rel=1e-12, abs=1e-12)
    assert (r["ci_low"], r["ci_high"]) == bootstrap_ci(stats, aggregate_many=m.aggregate_many, resamples=300, seed=7)


def test_bleu_ci_equals_library_on_resampled_corpora():
    # resampling rows of statistics == resampling sentences and asking sacrebleu for each corpus score
    m = get_metric("bleu")
    r = m.compute(PREDS, REFS, seed=3, resamples=50)
    idx = np.random.default_rng(3).integers(0, len(PREDS), size=(50, len(PREDS)))
    dist = [library_corpus("bleu", [PREDS[i] for i in row], [REFS[i] for i in row]) for row in idx]
    low, high = np.quantile(dist, [0.025, 0.975])
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((low, high), abs=1e-9)


def test_bootstrap_is_fast():
    preds = [f"sentence number {i} about the cat on the mat" for i in range(100)]
    refs = [[f"sentence {i} about a cat on a mat", f"number {i} cat mat"] for i in range(100)]
    for name in METRIC_NAMES:
        m = get_metric(name)
        stats = m.sample_stats(preds, refs) if not name.startswith("json") else np.tile([[1, 1, 1, 0]], (100, 1))
        start = time.perf_counter()
        m.summarize(stats, resamples=1000)
        assert time.perf_counter() - start < 1.0, name


def test_compute_all_sample_scores_all_and_evaluate_agree():
    names = ["bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "exact_match", "f1"]
    results = compute_all(names, PREDS, REFS, seed=1)
    scores = sample_scores_all(names, PREDS, REFS)
    both = evaluate(names, PREDS, REFS, seed=1)
    assert both == (results, scores)
    assert list(results) == names
    assert len(scores) == len(PREDS) and list(scores[0]) == names
    for name in names:
        assert results[name] == get_metric(name).compute(PREDS, REFS, seed=1)
        assert [s[name] for s in scores] == get_metric(name).sample_scores(PREDS, REFS)
    with pytest.raises(UserError):
        compute_all(["bleu", "nope"], PREDS, REFS)


def test_one_list_of_metric_names_and_close_names_from_the_registry_helper():
    import difflib

    from llmbench.metrics.names import METRIC_NAMES
    from llmbench.registry import close_matches as close_names
    from llmbench.tasks import KNOWN_METRICS

    assert KNOWN_METRICS is METRIC_NAMES
    for word in ("blue", "rogue1", "rouge", "json_f", "f2", "zzz", "exactmatch"):
        for n in (1, 3):
            assert close_names(word, METRIC_NAMES, n=n) == difflib.get_close_matches(word, METRIC_NAMES, n=n)
    assert close_names("rogue1", METRIC_NAMES, n=3) == ["rouge1", "rougeL", "rouge2"]
    assert close_names("zzz", METRIC_NAMES) == []
