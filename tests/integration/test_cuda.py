"""The CUDA, NVML and accelerate paths for real, on a GPU machine (`make gpu-check` runs these first).

Skipped where no CUDA device is visible; `make test` deselects the `gpu` marker altogether. The meters are
checked for what must hold on any CUDA card, not for figures: figures belong to `scripts/gpu_check.py`.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.integration, pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

from cli_helpers import read_single_run, run_cli  # noqa: E402


@pytest.mark.parametrize("device, spec_extra, batch", [
    ("cuda", "", 1),
    ("auto", "", 2),  # auto picks the GPU; batch 2 is the throughput setting (left padding on CUDA)
    ("cuda", ",device_map=auto", 1),  # accelerate places the model
])
def test_cuda_run_fills_every_gpu_meter(device, spec_extra, batch, tiny_model_dir, task_dir, tmp_path):
    out = tmp_path / "r"
    assert run_cli(["run", "-m", f"{tiny_model_dir},name=tiny{spec_extra}", "-t", "tiny-translation",
                    "--tasks-dir", str(task_dir), "--out", str(out), "--device", device,
                    "--batch-size", str(batch), "--warmup", "1"]) == 0
    record, samples = read_single_run(out)
    assert record["settings"]["device"].startswith("cuda") and record["settings"]["warmup_full_length"] is True
    assert record["settings"]["warmup_prefills"] is True
    env = record["environment"]
    assert env["gpu_name"] and env["gpu_driver"] and env["cuda"]
    [row] = record["rows"]
    assert row["status"] == "ok", row["error"]
    assert row["model"]["device"] in ("cuda:0", "device_map=auto -> cuda:0")
    mem = row["memory"]
    assert mem["cuda_reason"] is None and mem["cuda_peak_allocated_bytes"] >= mem["weights_bytes"] > 0
    assert mem["cuda_peak_reserved_bytes"] >= mem["cuda_peak_allocated_bytes"]
    assert (mem["nvml_used_bytes"] or 0) > mem["cuda_peak_allocated_bytes"] or mem["nvml_reason"]
    energy = row["energy"]
    if energy["available"]:
        assert energy["method"] in ("nvml-energy-counter", "nvml-power-sampling")
        # the NVML counter ticks about every 100 ms: a very short window may see no tick, and then says so
        assert energy["joules"] > 0 or (energy["joules"] == 0 and energy["warning"])
        assert energy["joules_per_sample"] == pytest.approx(energy["joules"] / row["task"]["n"])
    else:
        assert energy["reason"] and energy["joules"] is None
    lat = row["latency"]
    assert lat["setting"] == ("latency" if batch == 1 else "throughput")
    assert 0 < lat["ttft_s"]["p50"] <= lat["e2e_s"]["p50"]
    assert all(s["new_tokens"] >= 1 for s in samples)

