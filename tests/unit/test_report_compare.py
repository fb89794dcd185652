"""The comparison model: reference choice, ratios, failed rows, energy n/a and significance marks."""

from __future__ import annotations

import numpy as np
import pytest

from llmbench.errors import UserError
from llmbench.records import ResultRow
from llmbench.report.compare import (
    build_comparison,
    compare_task,
    metric_label,
    peak_memory,
    relative_quality,
)
from llmbench.report.merge import MergedRow, MergedRuns

TASK = "qa"


def _row(model: str, params: int | None, quality: dict | None = None, status: str = "ok", tpot: float = 0.01,
         ttft: float = 0.05, energy: float | None = 1.0, rss: float = 1e9, cuda: float | None = None) -> ResultRow:
    return ResultRow(
        model={"name": model, "parameters": params, "device": "cpu"},
        task={"name": TASK},
        quality=quality if quality is not None else
        {"exact_match": {"value": 50.0, "ci_low": 40.0, "ci_high": 60.0, "higher_is_better": True,
                         "scale": "0-100"}},
        latency={} if status == "failed" else {"ttft_s": {"p50": ttft}, "tpot_s": {"p50": tpot},
                                                "tokens_per_s": 1 / tpot},
        memory={} if status == "failed" else {"peak_rss_bytes": rss, "cuda_peak_allocated_bytes": cuda},
        energy={"available": energy is not None, "joules_per_sample": energy,
                "reason": None if energy is not None else "no sensor"},
        status=status, error="out of memory" if status == "failed" else None)


def _samples(model: str, correct: list[bool], ttft: list[float] | None = None) -> dict[int, dict]:
    """exact_match samples: a correct answer or a wrong one per index; optional per-sample TTFT."""
    out = {}
    for i, ok in enumerate(correct):
        out[i] = {"model": model, "task": TASK, "index": i, "prediction": f"answer {i}" if ok else "wrong",
                  "references": [f"answer {i}"], "ttft_s": ttft[i] if ttft else None,
                  "tpot_s": None, "e2e_s": None, "new_tokens": 8}
    return out


def _m(row: ResultRow, samples: dict | None = None, run: str = "r1") -> MergedRow:
    return MergedRow(row, run, {"hostname": "h"}, samples or {})


def test_reference_defaults_to_largest_finished_model():
    rows = [_m(_row("small", 100)), _m(_row("mid", 400)), _m(_row("huge", 1600, status="failed"))]
    tc = compare_task(TASK, rows)
    assert tc.ref == "mid"
    assert [r.model for r in tc.results] == ["small", "mid", "huge"]  # by size
    assert tc.result("mid").is_ref and not tc.result("small").is_ref


def test_ratios_against_reference():
    rows = [_m(_row("small", 100, tpot=0.01, energy=0.5, rss=1e9)),
            _m(_row("big", 400, tpot=0.03, energy=2.0, rss=4e9,
                    quality={"exact_match": {"value": 80.0, "higher_is_better": True}}))]
    small = compare_task(TASK, rows).result("small")
    assert small.quality_rel == pytest.approx(50 / 80)
    assert small.speed_ratio == pytest.approx(3.0)  # 3x faster
    assert small.memory_ratio == pytest.approx(0.25)
    assert small.energy_ratio == pytest.approx(0.25)


def test_explicit_ref():
    rows = [_m(_row("small", 100, tpot=0.01)), _m(_row("big", 400, tpot=0.02))]
    tc = compare_task(TASK, rows, ref="small")
    assert tc.ref == "small" and tc.result("big").speed_ratio == pytest.approx(0.5)


def test_failed_rows_have_no_numbers():
    rows = [_m(_row("small", 100)), _m(_row("big", 400, status="failed"))]
    tc = compare_task(TASK, rows)
    big = tc.result("big")
    assert big.status == "failed" and big.error == "out of memory"
    assert big.quality is None and big.ttft_p50_s is None and big.speed_ratio is None
    assert big.joules_per_sample is None and big.peak_memory_bytes is None
    assert tc.ref == "small"


def test_energy_unavailable_gives_no_ratio():
    rows = [_m(_row("small", 100, energy=None)), _m(_row("big", 400, energy=3.0))]
    small = compare_task(TASK, rows).result("small")
    assert small.joules_per_sample is None and small.energy_ratio is None
    assert small.energy_reason == "no sensor"


def test_energy_of_a_window_too_short_for_the_sensor_is_not_compared():
    short = _row("small", 100, energy=0.0)
    short.energy.update(short_window=True, warning="window of 0.060 s is shorter than 0.2 s")
    small = compare_task(TASK, [_m(short), _m(_row("big", 400, energy=3.0))]).result("small")
    assert small.joules_per_sample is None and small.energy_ratio is None  # not "0 J, 0% of the energy"
    assert "shorter than 0.2 s" in small.energy_reason


def test_memory_ratio_needs_the_same_kind():
    rows = [_m(_row("small", 100, cuda=2e9)), _m(_row("big", 400))]
    small = compare_task(TASK, rows).result("small")
    assert small.memory_kind == "cuda" and small.memory_ratio is None
    assert peak_memory(_row("x", 1, rss=5.0)) == (5.0, "rss")


def test_relative_quality_reads_direction():
    assert relative_quality(90, 100, True) == pytest.approx(0.9)
    assert relative_quality(50, 40, False) == pytest.approx(0.8)  # TER 50 vs reference 40: worse
    assert relative_quality(None, 1, True) is None and relative_quality(1, 0, True) is None


def test_large_quality_difference_is_significant():
    n = 40
    small = _m(_row("small", 100), _samples("small", [i % 4 == 0 for i in range(n)]))  # 25% right
    big = _m(_row("big", 400), _samples("big", [i % 10 != 0 for i in range(n)]))  # 90% right
    assert compare_task(TASK, [small, big]).result("small").quality_significant is True


def test_quality_difference_inside_noise_is_not_significant():
    n = 40
    small = _m(_row("small", 100), _samples("small", [i % 2 == 0 for i in range(n)]))  # 50%, even ones
    big = _m(_row("big", 400), _samples("big", [i % 2 == 1 or i == 0 for i in range(n)]))  # 52.5%, odd ones
    assert compare_task(TASK, [small, big]).result("small").quality_significant is False


def test_latency_significance():
    rng = np.random.default_rng(0)
    n = 30
    fast = (0.05 * rng.lognormal(0, 0.1, n)).tolist()
    slow = (0.50 * rng.lognormal(0, 0.1, n)).tolist()
    same = (0.05 * rng.lognormal(0, 0.1, n)).tolist()
    ok = [True] * n
    ref = _m(_row("big", 400), _samples("big", ok, fast))
    far = _m(_row("small", 100), _samples("small", ok, slow))
    near = _m(_row("tiny", 50), _samples("tiny", ok, same))
    tc = compare_task(TASK, [ref, far, near])
    assert tc.result("small").ttft_significant is True
    assert tc.result("tiny").ttft_significant is False


def test_untested_without_samples():
    tc = compare_task(TASK, [_m(_row("small", 100)), _m(_row("big", 400))])
    small = tc.result("small")
    assert small.quality_significant is None and small.ttft_significant is None
    assert any("untested" in n for n in tc.notes)


def _merged(rows: list[MergedRow]) -> MergedRuns:
    return MergedRuns([], rows, [])


def test_build_comparison_validates_options():
    merged = _merged([_m(_row("small", 100)), _m(_row("big", 400))])
    with pytest.raises(UserError, match="--ref"):
        build_comparison(merged, ref="nope")
    with pytest.raises(UserError, match="--metric"):
        build_comparison(merged, metric="bleu")
    with pytest.raises(UserError, match="--margin"):
        build_comparison(merged, margin=1.5)


def test_metric_option_picks_the_primary_metric():
    q = {"exact_match": {"value": 50.0, "higher_is_better": True},
         "f1": {"value": 70.0, "higher_is_better": True}}
    merged = _merged([_m(_row("small", 100, quality=q)), _m(_row("big", 400, quality=q))])
    assert build_comparison(merged, resamples=0).tasks[0].metric == "exact_match"  # first listed
    cmp = build_comparison(merged, metric="f1", resamples=0)
    assert cmp.tasks[0].metric == "f1" and cmp.tasks[0].result("small").quality == 70.0


def test_resamples_zero_skips_tests():
    n = 20
    small = _m(_row("small", 100), _samples("small", [False] * n))
    big = _m(_row("big", 400), _samples("big", [True] * n))
    cmp = build_comparison(_merged([small, big]), resamples=0)
    assert cmp.tasks[0].result("small").quality_significant is None


def test_metric_label():
    assert metric_label("rougeL") == "ROUGE-L" and metric_label("custom") == "custom"


def test_lm_eval_metric_with_a_registry_name_is_not_rescored():
    # lm-eval's exact_match (case-sensitive, 0-1) is not llmbench's SQuAD exact match: no paired test
    n = 40
    lm = {"exact_match": {"value": 0.5, "stderr": 0.08, "higher_is_better": True, "scale": "0-1",
                          "library": "lm-eval"}}
    small = _m(_row("small", 100, quality=lm), _samples("small", [i % 4 == 0 for i in range(n)]))
    big = _m(_row("big", 400, quality=lm), _samples("big", [i % 10 != 0 for i in range(n)]))
    tc = compare_task(TASK, [small, big])
    assert tc.result("small").quality_significant is None
    assert any("no per-sample scorer" in note for note in tc.notes)


def test_lm_eval_stderr_is_shown_where_a_ci_is_absent():
    """lm-eval metrics carry a standard error, no CI: compare and the exports show it as the run table does."""
    import csv
    import io

    from llmbench.report.exporters.csv import to_csv
    from llmbench.report.table import result_cells

    lm = {"chrf": {"value": 9.72, "stderr": 0.169, "higher_is_better": True, "scale": "0-100",
                   "library": "lm-eval"}}
    small = _m(_row("small", 100, quality=lm), _samples("small", [True] * 4))
    big = _m(_row("big", 400, quality=lm), _samples("big", [True] * 4))
    cmp = build_comparison(_merged([small, big]), metric="chrf", resamples=0)
    res = cmp.tasks[0].result("small")
    assert res.quality_stderr == 0.169
    assert result_cells(res, "0-100")[2] == "9.7 ±0.2"
    row = next(r for r in csv.DictReader(io.StringIO(to_csv(cmp))) if r["model"] == "small")
    assert row["quality_stderr"] == "0.169" and row["quality_ci_low"] == ""
    from llmbench.report.exporters.latex import latex_escape
    from llmbench.report.table import table_headers

    assert table_headers(cmp.tasks[0])[2] == "chrF ±stderr"  # not a 95% CI
    assert latex_escape("9.7 ±0.2") == r"9.7 $\pm$0.2"


def test_one_sample_is_never_significant():
    small = _m(_row("small", 100), _samples("small", [False]))
    big = _m(_row("big", 400), _samples("big", [True]))
    assert compare_task(TASK, [small, big]).result("small").quality_significant is False


def test_direction_of_an_entry_without_higher_is_better_comes_from_the_metric():
    """A record written by another tool may leave `higher_is_better` null or out: TER (lower is better) must not
    be ranked as higher-is-better, nor an unknown metric as lower-is-better."""
    from llmbench.stats.significance import higher_is_better

    def q(metric, value, hib):
        entry = {"value": value, "ci_low": None, "ci_high": None, "scale": "0-100"}
        if hib != "absent":
            entry["higher_is_better"] = hib
        return {metric: entry}

    for hib in (None, "absent"):
        small = _m(_row("small", 100, quality=q("ter", 40.0, hib)))
        big = _m(_row("big", 400, quality=q("ter", 80.0, hib)))
        tc = compare_task(TASK, [small, big], metric="ter")
        assert tc.higher_is_better is False
        assert tc.result("small").quality_rel == 2.0  # 80 / 40: half the errors of the reference
        assert higher_is_better("my_score", q("my_score", 1.0, hib)["my_score"]) is True
    assert higher_is_better("ter", {"higher_is_better": True}) is True  # the record's own word comes first
    assert higher_is_better("ter", {"higher_is_better": False, "library": "lm-eval"}) is False
