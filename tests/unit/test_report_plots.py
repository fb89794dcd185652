"""Plots: the Pareto frontier and the files written (headless Agg)."""

from __future__ import annotations

import pytest
from report_fixtures import two_runs

from llmbench.report import build_comparison, load_runs
from llmbench.report.plots import pareto_front, safe_name, write_plots


def test_pareto_front_higher_is_better():
    # (cost, quality): c is dominated by b (costs more, scores less)
    pts = [(1, 0.5), (2, 0.8), (3, 0.7), (4, 0.9)]
    assert pareto_front(pts, True) == [0, 1, 3]


def test_pareto_front_lower_is_better():
    pts = [(1, 60.0), (2, 50.0), (3, 55.0)]  # TER: lower is better
    assert pareto_front(pts, False) == [0, 1]


def test_pareto_front_ties():
    assert pareto_front([(1, 0.5), (1, 0.5)], True) == [0, 1]
    assert pareto_front([(1, 0.5), (1, 0.6)], True) == [1]


def test_pareto_front_throughput_axis():
    # (tok/s, quality): higher throughput is better; b (slower and worse than c) is dominated
    pts = [(10.0, 0.9), (20.0, 0.6), (30.0, 0.7), (40.0, 0.5), (40.0, 0.4)]
    assert pareto_front(pts, True, x_higher_is_better=True) == [0, 2, 3]
    # lower-is-better quality (TER) on the throughput axis
    assert pareto_front([(10.0, 40.0), (20.0, 50.0), (30.0, 45.0)], False, x_higher_is_better=True) == [0, 2]


def test_pareto_front_of_variants_on_joules_per_token():
    # model x variant x level rows: (J/token, quality); the 4-bit variant is cheaper at the same quality
    rows = {"m": (0.030, 0.70), "m[bnb-4bit]": (0.012, 0.70), "m[int8]": (0.020, 0.71), "small": (0.008, 0.55),
            "small@c4": (0.009, 0.50)}
    names = list(rows)
    assert [names[i] for i in pareto_front(list(rows.values()), True)] == ["small", "m[bnb-4bit]", "m[int8]"]


def test_safe_name():
    assert safe_name("mmlu/abstract algebra") == "mmlu-abstract-algebra"
    assert safe_name("../..") == "task"


def test_write_plots_png_and_svg(tmp_path):
    pytest.importorskip("matplotlib")
    merged = load_runs([str(p) for p in two_runs(tmp_path / "runs", energy=False)])
    paths = write_plots(build_comparison(merged, resamples=0), tmp_path / "plots")
    names = sorted(p.name for p in paths)
    assert names == ["summarization.png", "summarization.svg", "translation-en-fr.png",
                     "translation-en-fr.svg"]
    png = (tmp_path / "plots" / "summarization.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    svg = (tmp_path / "plots" / "translation-en-fr.svg").read_text()
    assert "<svg" in svg and "smollm2-135m" in svg and "energy not measured" in svg
    # the second row: weight bytes (its size curve), J/token (unmeasured here: said, not drawn at 0), tok/s with
    # the % of roofline of the rows that have one
    for text in ("Weight bytes held", "Energy per generated token (J)", "Decode throughput (tokens/s)",
                 "no RAPL powercap interface", "of roofline"):
        assert text in svg, text


def test_plot_names_rows_without_energy_instead_of_drawing_zeros(tmp_path):
    pytest.importorskip("matplotlib")
    from llmbench.report.plots import task_figure

    merged = load_runs([str(p) for p in two_runs(tmp_path / "runs")])
    cmp = build_comparison(merged, resamples=0)
    tc = cmp.tasks[0]
    gemma = tc.result("gemma3-270m")
    gemma.joules_per_token = None
    fig = task_figure(tc)
    jpt = fig.axes[4]
    assert jpt.get_xlabel() == "Energy per generated token (J)"
    texts = [t.get_text() for t in jpt.texts]
    assert "energy not measured: gemma3-270m" in texts
    xs = [x for line in jpt.get_lines() for x in line.get_xdata()]
    assert 0 not in xs and min(xs) > 0
    tps = fig.axes[5]
    assert any("of roofline" in t.get_text() for t in tps.texts)


def test_plot_per_correct_answer_puts_that_cost_on_the_axes(tmp_path):
    pytest.importorskip("matplotlib")
    from test_noninferiority import write_models

    run = write_models(tmp_path / "runs", {"a": (int(1e8), set(range(5))), "b": (int(2e8), set(range(8))),
                                           "c": (int(4e8), set(range(9)))}, n=10, energy_joules=20.0)
    cmp = build_comparison(load_runs([str(run)]))
    [svg] = write_plots(cmp, tmp_path / "plots", ("svg",), per="correct")
    text = svg.read_text()
    assert "Energy per correct answer" in text and "Generation time per correct answer" in text
    assert "95% CI" in text  # the size curve's band, on the parameters panel
