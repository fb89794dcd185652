"""`llmbench run` end to end on tiny random models: records, metrics, failures, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.integration

from cli_helpers import modules_imported_by_cli, read_single_run, run_cli  # noqa: E402

_run = run_cli
_read = read_single_run


def test_run_two_models_writes_record_and_samples(tiny_model_dir, tiny_model_dir_b, task_dir, tmp_path, capsys):
    out = tmp_path / "results"
    code = _run(["run", "-m", f"{tiny_model_dir},name=tiny-a", "-m", f"{tiny_model_dir_b},name=tiny-b",
                 "-t", "tiny-translation", "-t", "tiny-qa", "--tasks-dir", str(task_dir), "--out", str(out),
                 "--device", "cpu", "--warmup", "1"])
    assert code == 0
    record, samples = _read(out)
    assert record["schema_version"] == 1
    assert {"python", "torch", "transformers", "device", "cpu_model", "llmbench", "git_commit", "git_dirty"} <= set(
        record["environment"])
    assert record["environment"]["sacrebleu"] == metadata.version("sacrebleu")
    assert record["environment"]["rouge_score"] == metadata.version("rouge-score")
    assert record["settings"]["warmup"] == 1 and record["settings"]["warmup_full_length"] is False  # CPU
    assert record["settings"]["warmup_prefills"] is False
    assert len(record["rows"]) == 4
    for row in record["rows"]:
        assert row["status"] == "ok", row["error"]
        assert row["model"]["parameters"] > 0
        assert row["task"]["n"] in (2, 3)
        lat = row["latency"]
        assert lat["ttft_s"]["n"] == row["task"]["n"]
        assert 0 < lat["ttft_s"]["p50"] <= lat["e2e_s"]["p50"]
        assert lat["tokens_per_s"] > 0
        assert row["memory"]["peak_rss_bytes"] > 0 and row["memory"]["weights_bytes"] > 0
        for q in row["quality"].values():
            assert q["ci_low"] <= q["value"] <= q["ci_high"]
        # no sensors on a CPU test machine: unavailable with a reason, never 0
        if not row["energy"]["available"]:
            assert row["energy"]["reason"] and row["energy"]["joules"] is None
    assert len(samples) == 2 * (3 + 2)
    assert {"model", "task", "index", "prompt", "prediction", "references", "scores", "ttft_s", "e2e_s",
            "new_tokens"} <= set(samples[0])
    table = capsys.readouterr().out
    assert "tiny-a" in table and "tiny-b" in table and "n/a" in table


def test_quality_equals_reference_libraries(tiny_model_dir, task_dir, tmp_path):
    import sacrebleu

    out = tmp_path / "r"
    assert _run(["run", "-m", str(tiny_model_dir), "-t", "tiny-translation", "--tasks-dir", str(task_dir),
                 "--out", str(out), "--warmup", "0"]) == 0
    record, samples = _read(out)
    preds = [s["prediction"] for s in samples]
    refs = [[s["references"][0] for s in samples]]
    q = record["rows"][0]["quality"]
    assert q["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu(preds, refs).score, abs=1e-9)
    assert q["chrf"]["value"] == pytest.approx(sacrebleu.corpus_chrf(preds, refs).score, abs=1e-9)
    assert q["ter"]["value"] == pytest.approx(sacrebleu.corpus_ter(preds, refs).score, abs=1e-9)
    assert q["ter"]["higher_is_better"] is False


def test_simulated_oom_marks_model_failed_and_run_goes_on(tiny_model_dir, tiny_model_dir_b, task_dir, tmp_path,
                                                          monkeypatch):
    import torch

    from llmbench.models.hf import HFBackend

    real_load = HFBackend.load

    def load(self, prepared, device, note):
        if prepared.spec.name == "big":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 28.00 GiB (simulated)")
        return real_load(self, prepared, device, note)

    monkeypatch.setattr(HFBackend, "load", load)
    out = tmp_path / "r"
    # exit code 3: the record is complete, but a row failed
    assert _run(["run", "-m", f"{tiny_model_dir_b},name=big", "-m", f"{tiny_model_dir},name=small",
                 "-t", "tiny-qa", "--tasks-dir", str(task_dir), "--out", str(out), "--warmup", "0"]) == 3
    record, samples = _read(out)
    by = {r["model"]["name"]: r for r in record["rows"]}
    assert by["big"]["status"] == "failed" and "out of memory" in by["big"]["error"]
    assert by["small"]["status"] == "ok" and by["small"]["quality"]["f1"]["value"] is not None
    assert {s["model"] for s in samples} == {"small"}


def test_ctrl_c_keeps_finished_rows(tiny_model_dir, task_dir, tmp_path, monkeypatch):
    from llmbench.models.hf import HFBackend

    real = HFBackend.generate
    calls = {"n": 0}

    def generate(self, model, prompts, *a, **k):
        if model.name == "second":
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(self, model, prompts, *a, **k)

    monkeypatch.setattr(HFBackend, "generate", generate)
    out = tmp_path / "r"
    code = _run(["run", "-m", f"{tiny_model_dir},name=first", "-m", f"{tiny_model_dir},name=second",
                 "-t", "tiny-qa", "--tasks-dir", str(task_dir), "--out", str(out), "--warmup", "0"])
    assert code == 130
    record, samples = _read(out)
    assert [r["model"]["name"] for r in record["rows"]] == ["first"]
    assert record["settings"]["interrupted"] is True
    assert len(samples) == 2


@pytest.mark.parametrize("args, message", [
    (["-m", "no-such-model", "-t", "tiny-qa"], "unknown model"),
    (["-m", "smollm2-135", "-t", "tiny-qa"], "did you mean smollm2-135m"),
    (["-m", "TINY", "-t", "no-such-task"], "no-such-task"),
    (["-m", "TINY", "-t", "tiny-qa", "--batch-size", "0"], "--batch-size"),
    (["-m", "TINY", "-t", "tiny-qa", "--device", "tpu"], "--device"),
    (["-m", "TINY,dtype=float8", "-t", "tiny-qa"], "dtype"),
    (["-m", "TINY", "-t", "broken", "--tasks-dir", "BAD"], "broken.yaml:3: malformed YAML"),
    (["-m", "TINY", "-t", "nodata", "--tasks-dir", "NODATA"], "not found"),
    (["-m", "TINY", "-t", "tiny-qa", "--tasks-dir", "MISSINGDIR"], "--tasks-dir"),
    (["-m", "TINY", "-t", "jsonref", "--tasks-dir", "BADREFS"], "jsonref.yaml: task jsonref: record 0"),
    (["-m", "TINY", "-t", "divide", "--tasks-dir", "BADREFS"], "task divide: record 0 (jsonl: d.jsonl): cannot render"),
    (["-m", "AFILE", "-t", "tiny-qa"], "is a file, not a model directory"),
    (["-m", "TINY,gguf_file=x.gguf", "-t", "tiny-qa"], "gguf_file x.gguf not found"),
    (["-m", "TINY", "-m", "TINY", "-t", "tiny-qa"], "name=LABEL"),
])
def test_bad_input_one_line_exit_2(args, message, tiny_model_dir, task_dir, tmp_path):
    bad, nodata, badrefs = tmp_path / "bad", tmp_path / "nodata", tmp_path / "badrefs"
    for d in (bad, nodata, badrefs):
        d.mkdir()
    (bad / "broken.yaml").write_text("name: broken\nkind: [translation\n")
    (badrefs / "d.jsonl").write_text('{"q": "2+2?", "a": "4"}\n')
    for name, prompt, metric in (("jsonref", "{{ q }}", "json_f1"), ("divide", "{{ q / 0 }}", "f1")):
        (badrefs / f"{name}.yaml").write_text(
            f"name: {name}\nkind: extraction\nsource: {{type: jsonl, path: d.jsonl}}\n"
            f"prompt: '{prompt}'\nreferences: a\nmetrics: [{metric}]\n")
    (nodata / "nodata.yaml").write_text(
        "name: nodata\nkind: extraction\nsource: {type: jsonl, path: data/missing.jsonl}\n"
        "prompt: '{{ q }}'\nreferences: a\nmetrics: [f1]\n")
    (tmp_path / "afile").write_text("not a model")
    subs = {"TINY": str(tiny_model_dir), "BAD": str(bad), "NODATA": str(nodata), "BADREFS": str(badrefs),
            "MISSINGDIR": str(tmp_path / "absent"), "AFILE": str(tmp_path / "afile")}
    args = [subs.get(a, a.replace("TINY", str(tiny_model_dir))) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "llmbench", "run", *args, "--tasks-dir", str(task_dir), "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_help_does_not_import_torch():
    imported, stdout = modules_imported_by_cli(["--help"], ("torch", "transformers", "numpy", "rich.progress"))
    assert imported == []
    assert "run" in stdout and "compare" in stdout


@pytest.mark.parametrize("command", ["run", "compare", "export", "plot", "gate"])
def test_a_commands_help_imports_neither_torch_nor_numpy(command):
    imported, stdout = modules_imported_by_cli([command, "--help"], ("torch", "transformers", "numpy"))
    assert imported == [] and "Usage:" in stdout, (command, imported)


def test_fake_rapl_joules_flow_to_record_and_table(tiny_model_dir, task_dir, tmp_path, monkeypatch, capsys):
    """A temporary powercap tree stands in for RAPL: its counter advances 2.5 J per generate call."""
    import llmbench.meters.energy as energy_mod
    from llmbench.models.hf import HFBackend

    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "energy_uj").write_text("1000000\n")
    real_meter, real_generate = energy_mod.EnergyMeter, HFBackend.generate

    def meter(device, **kw):
        return real_meter(device, powercap_root=tmp_path / "powercap", **kw)

    def generate(self, *a, **k):
        out = real_generate(self, *a, **k)
        value = int((zone / "energy_uj").read_text()) + 2_500_000
        tmp = zone / "energy_uj.tmp"
        tmp.write_text(f"{value}\n")
        tmp.replace(zone / "energy_uj")
        return out

    monkeypatch.setattr(energy_mod, "EnergyMeter", meter)
    monkeypatch.setattr(HFBackend, "generate", generate)
    out = tmp_path / "r"
    assert _run(["run", "-m", str(tiny_model_dir), "-t", "tiny-qa", "--tasks-dir", str(task_dir), "--out", str(out),
                 "--warmup", "1"]) == 0
    record, samples = _read(out)
    energy = record["rows"][0]["energy"]
    assert energy["available"] is True and energy["method"] == "rapl"
    assert energy["joules"] == pytest.approx(5.0)  # two samples, warm-up outside the window
    assert energy["joules_per_sample"] == pytest.approx(2.5)
    tokens = sum(s["new_tokens"] for s in samples)
    assert energy["joules_per_token"] == pytest.approx(5.0 / tokens)
    assert "2.5" in capsys.readouterr().out


def test_gate_passes_on_two_runs_of_a_deterministic_model_and_fails_on_a_bigger_one(
        tiny_model_dir, tiny_model_dir_b, task_dir, tmp_path):
    """CI exercises the gate for real: two runs of the same tiny model give identical predictions and pass
    `quality.*:0`; the same rows from a bigger model (4 layers, same name) fail a weights rule with exit 1."""
    out = tmp_path / "r"
    for name, model in (("base", tiny_model_dir), ("cand", tiny_model_dir), ("bigger", tiny_model_dir_b)):
        assert _run(["run", "-m", f"{model},name=tiny", "-t", "tiny-translation", "-t", "tiny-qa",
                     "--tasks-dir", str(task_dir), "--out", str(out), "--name", name, "--warmup", "0"]) == 0
    [base], [cand], [bigger] = (sorted(out.glob(f"*-{n}")) for n in ("base", "cand", "bigger"))
    preds = [[json.loads(x)["prediction"] for x in (d / "samples.jsonl").read_text().splitlines()]
             for d in (base, cand)]
    assert preds[0] == preds[1] and len(preds[0]) == 5  # deterministic: the quality rule sees no change
    import xml.etree.ElementTree as ET

    junit = tmp_path / "junit.xml"
    assert _run(["gate", "--baseline", str(base), "--candidate", str(cand), "--rule", "quality.*:0",
                 "--junit", str(junit)]) == 0
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 2 and not list(ET.parse(junit).getroot().iter("failure"))  # one rule x two rows
    assert _run(["gate", "--baseline", str(base), "--candidate", str(bigger), "--rule", "quality.*:0",
                 "--rule", "memory.weights_bytes:+0%", "--junit", str(junit)]) == 1
    failures = list(ET.parse(junit).getroot().iter("failure"))
    regressions = [f for f in failures if f.get("type") == "regression"]
    assert regressions and all("weights_bytes" in (f.get("message") or "") + (f.text or "") for f in regressions)
    # other answers on 5 examples: a quality change the test cannot tell from noise, reported as undecided
    assert {f.get("type") for f in failures} <= {"regression", "undecided"}


def test_device_map_auto_loads_through_accelerate(tiny_model_dir, task_dir, tmp_path):
    """`device_map=auto` hands placement to accelerate (here: the CPU); the row says so and is complete."""
    out = tmp_path / "r"
    assert _run(["run", "-m", f"{tiny_model_dir},name=tiny,device_map=auto", "-t", "tiny-qa", "--tasks-dir",
                 str(task_dir), "--out", str(out), "--device", "cpu", "--warmup", "0"]) == 0
    record, samples = _read(out)
    [row] = record["rows"]
    assert row["status"] == "ok", row["error"]
    assert row["model"]["device"] == "device_map=auto -> cpu" and row["model"]["spec"].endswith("device_map=auto")
    assert row["memory"]["weights_bytes"] > 0 and len(samples) == row["task"]["n"] == 2
