"""HFBackend's accounting of batched generations: rows of a batch end at different steps.

The model's `generate` is replaced by a scripted one that drives the streamer and the stopping criteria the
way transformers does (one `put` per step, then the criteria; finished rows padded), on a fake clock that
ticks once per step, so token counts and timings are exact.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.integration

from llmbench.config import ModelSpec  # noqa: E402
from llmbench.models.base import GenerateParams  # noqa: E402
from llmbench.models.hf import HFBackend  # noqa: E402


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


def _scripted(clock: _Clock, rows: list[list[int]], stop_row_at: dict[int, int], pad: int):
    """A generate() that emits ``rows`` step by step; row r is padded after the step in ``stop_row_at``."""

    def generate(input_ids, streamer=None, stopping_criteria=None, **kwargs):
        streamer.put(input_ids.cpu())
        done = [False] * len(rows)
        new = []
        for step in range(1, max(len(r) for r in rows) + 1):
            clock.now += 1.0  # one second per step
            tokens = torch.tensor([pad if done[i] else r[step - 1] for i, r in enumerate(rows)])
            new.append(tokens)
            streamer.put(tokens)
            ids = torch.cat([input_ids, torch.stack(new, dim=1)], dim=1)
            flags = stopping_criteria(ids, None)
            done = [d or bool(f) for d, f in zip(done, flags.tolist())]
            if all(done):
                break
        return torch.cat([input_ids, torch.stack(new, dim=1)], dim=1)

    return generate


def _inner_stop(stop_row_at: dict[int, int]):
    """A stop-string criterion that says stop for row r from step stop_row_at[r] on."""
    calls = {"n": 0}

    def criterion(input_ids, scores, **kwargs):
        calls["n"] += 1
        return torch.tensor([calls["n"] >= stop_row_at.get(i, 10**9) for i in range(input_ids.shape[0])])

    return criterion


def test_rows_of_a_batch_keep_their_own_token_count_and_tpot(tiny_model_dir, monkeypatch):
    import llmbench.meters.timing as timing

    backend = HFBackend()
    loaded = backend.load(backend.preflight(ModelSpec.parse(str(tiny_model_dir))), "cpu")
    hf_model, tokenizer = loaded.handle
    eos = tokenizer.eos_token_id
    tokenizer.pad_token = tokenizer.eos_token  # pad == eos: the case where padding looks like an end token
    clock = _Clock()
    monkeypatch.setattr(timing, "time", clock)
    # row 0 stops on a stop string after 3 tokens (then padded with eos); row 1 runs 5 steps
    rows = [[10, 11, 12, 13, 14], [20, 21, 22, 23, 24]]
    monkeypatch.setattr(hf_model, "generate", _scripted(clock, rows, {0: 3}, pad=eos))
    monkeypatch.setattr(backend, "_stop_criteria", lambda model, stop: _inner_stop({0: 3}))

    gens = backend.generate(loaded, ["first prompt", "second prompt"], GenerateParams(5, ("\n",), 2))

    assert [g.new_tokens for g in gens] == [3, 5]  # not 4: the eos-valued pad after the stop is not a token
    assert [g.ttft_s for g in gens] == [1.0, 1.0]
    assert [g.e2e_s for g in gens] == [5.0, 5.0]  # both answers return when the batch does
    assert gens[0].last_token_s == 3.0 and gens[1].last_token_s is None
    # one second per step for both rows; charging row 0 the whole batch would give (5 - 1) / 2 = 2.0
    assert [g.tpot_s for g in gens] == [1.0, 1.0]


def test_a_row_ended_by_eos_in_a_batch_counts_its_eos(tiny_model_dir, monkeypatch):
    import llmbench.meters.timing as timing

    backend = HFBackend()
    loaded = backend.load(backend.preflight(ModelSpec.parse(str(tiny_model_dir))), "cpu")
    hf_model, tokenizer = loaded.handle
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    assert pad != eos
    clock = _Clock()
    monkeypatch.setattr(timing, "time", clock)
    rows = [[10, eos, pad, pad], [20, 21, 22, 23]]  # transformers stops row 0 itself on eos, then pads it

    def eos_aware(ids, scores, **kwargs):
        return ids[:, -1] == eos

    monkeypatch.setattr(hf_model, "generate", _scripted(clock, rows, {}, pad=pad))
    monkeypatch.setattr(backend, "_stop_criteria", lambda model, stop: eos_aware)

    gens = backend.generate(loaded, ["a", "b"], GenerateParams(4, ("\n",), 2))

    assert [g.new_tokens for g in gens] == [2, 4]
    assert gens[0].last_token_s == 2.0 and gens[0].tpot_s == 1.0
    assert gens[1].tpot_s == 1.0


def test_batched_run_records_batches_and_resamples_them(tiny_model_dir, task_dir, tmp_path):
    """`llmbench run --batch-size 2`: answers name their batch, share its TTFT and end, and the record's
    latency CIs and throughput come from batches."""
    from cli_helpers import read_single_run, run_cli

    out = tmp_path / "results"
    code = run_cli(["run", "-m", str(tiny_model_dir), "-t", "tiny-translation", "--tasks-dir", str(task_dir),
                    "--out", str(out), "--device", "cpu", "--batch-size", "2", "--warmup", "0"])
    assert code == 0
    record, samples = read_single_run(out)
    (row,) = record["rows"]
    assert row["status"] == "ok" and row["latency"]["setting"] == "throughput"
    assert len(samples) == 3  # batches of 2 and 1
    assert [s["batch"] for s in samples] == [i // 2 for i in range(len(samples))]
    for first, second in zip(samples[::2], samples[1::2]):
        assert first["ttft_s"] == second["ttft_s"] and first["e2e_s"] == second["e2e_s"]
    for s in samples:
        assert s["tpot_s"] is None or s["tpot_s"] <= (s["e2e_s"] - s["ttft_s"]) / (s["new_tokens"] - 1) + 1e-12
    ttft = row["latency"]["ttft_s"]
    assert ttft["n"] == len(samples) and ttft["ci_low"] <= ttft["mean"] <= ttft["ci_high"]
