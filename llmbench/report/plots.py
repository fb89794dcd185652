"""Per task, one figure of two rows. Above: quality against parameters (log scale: the size curve with its CI
band and the knee marked), against energy and latency (per sample, or per correct answer). Below: quality
against the weight bytes held (the size curve of quantized variants), against joules per generated token and
against decode tokens/s, one point per row (model x variant x load level), each labelled with its % of
roofline on the tok/s panel. Every panel draws the Pareto frontier through its non-dominated points.

Uses matplotlib's object API on the Agg canvas (no pyplot, no display): safe headless and in threads.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Iterable

from llmbench.report.compare import Comparison, ModelResult, TaskComparison
from llmbench.report.format import fmt_bytes, fmt_params, fmt_roofline

PLOT_FORMATS = ("png", "svg")
PER = ("sample", "correct")
_AXES = {
    "sample": (("parameters", "Parameters", "parameters"), ("joules_per_sample", "Energy per sample (J)", "energy"),
               ("ttft_p50_s", "TTFT p50 (s)", "TTFT")),
    "correct": (("parameters", "Parameters", "parameters"),
                ("joules_per_correct", "Energy per correct answer (J)", "energy per correct answer"),
                ("seconds_per_correct", "Generation time per correct answer (s)", "time per correct answer")),
}
# the second row, the same for --per sample and correct: (attribute, axis label, what, higher x is better)
_VARIANT_AXES = (("weights_bytes", "Weight bytes held", "weight bytes", False),
                 ("joules_per_token", "Energy per generated token (J)", "energy", False),
                 ("tokens_per_s", "Decode throughput (tokens/s)", "throughput", True))


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool = True,
                 x_higher_is_better: bool = False) -> list[int]:
    """Indices of the points no other point beats: x no worse and quality no worse, one strictly.

    x is a cost (parameters, bytes, joules, seconds: lower is better) unless ``x_higher_is_better``
    (tokens/s); quality follows ``higher_is_better``. Returned in order of increasing x.
    """
    sign = 1 if higher_is_better else -1
    xsign = -1 if x_higher_is_better else 1
    front = []
    for i, (x, q) in enumerate(points):
        dominated = any(
            xsign * x2 <= xsign * x and sign * q2 >= sign * q
            and (xsign * x2 < xsign * x or sign * q2 > sign * q)
            for j, (x2, q2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -sign * points[i][1]))


def _points(tc: TaskComparison, attr: str) -> list[ModelResult]:
    return [r for r in tc.results if r.ok and r.quality is not None and getattr(r, attr) is not None
            and getattr(r, attr) > 0]


def _missing(tc: TaskComparison, attr: str, pts: list[ModelResult]) -> list[ModelResult]:
    """The finished, scored rows that have no value on ``attr`` (drawn nowhere, never at 0)."""
    drawn = {id(r) for r in pts}
    return [r for r in tc.results if r.ok and r.quality is not None and id(r) not in drawn]


def _panel(ax, tc: TaskComparison, attr: str, xlabel: str, what: str, x_higher_is_better: bool = False) -> None:
    pts = _points(tc, attr)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(tc.metric_label)
    ax.grid(True, which="major", alpha=0.3)
    missing = _missing(tc, attr, pts)
    if not pts:
        reasons = sorted({r.energy_reason for r in missing if r.energy_reason}) if what == "energy" else []
        text = f"{what} not measured" + (f":\n{reasons[0]}" if len(reasons) == 1 else "")
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666", wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if missing:  # rows without the figure are named, not drawn at zero
        names = ", ".join(r.model for r in missing[:4]) + (" …" if len(missing) > 4 else "")
        ax.text(0.01, 0.01, f"{what} not measured: {names}", transform=ax.transAxes, fontsize=7,
                color="#666666", va="bottom")
    xs = [float(getattr(r, attr)) for r in pts]
    qs = [float(r.quality) for r in pts]
    lo = [q - r.quality_ci_low if r.quality_ci_low is not None else 0.0 for q, r in zip(qs, pts)]
    hi = [r.quality_ci_high - q if r.quality_ci_high is not None else 0.0 for q, r in zip(qs, pts)]
    ax.errorbar(xs, qs, yerr=[[max(v, 0) for v in lo], [max(v, 0) for v in hi]], fmt="o", color="#1f6feb",
                ecolor="#9cc3ff", capsize=3, zorder=3)
    front = pareto_front(list(zip(xs, qs)), tc.higher_is_better, x_higher_is_better)
    if len(front) > 1:
        # the staircase bounds what is reachable: at a cost between two frontier points, the cheaper one's
        # quality ("post"); at a throughput between two, the faster one's ("pre")
        ax.step([xs[i] for i in front], [qs[i] for i in front], where="pre" if x_higher_is_better else "post",
                color="#d1242f", lw=1.5, label="Pareto frontier", zorder=2)
        ax.legend(loc="best", fontsize=8)
    for r, x, q in zip(pts, xs, qs):
        label = r.model
        if attr == "tokens_per_s" and r.roofline_percent is not None:
            label += f"\n{fmt_roofline(r.roofline_percent, r.roofline_lower_bound)} of roofline"
        ax.annotate(label, (x, q), textcoords="offset points", xytext=(5, 6), fontsize=8)
    sizes = attr in ("parameters", "weights_bytes")
    if sizes:
        _size_curve(ax, tc, attr)
    if sizes or (min(xs) > 0 and max(xs) / min(xs) > 20):
        ax.set_xscale("log")
    if sizes:  # ticks at the models' sizes, labelled 135M, 1.5B (parameters) or 257 MiB (bytes)
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        fmt = fmt_params if attr == "parameters" else fmt_bytes
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(xs))))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(int(v))))
        ax.xaxis.set_minor_locator(NullLocator())
    elif ax.get_xscale() == "linear":  # few ticks: close values (TTFTs of 0.1545 and 0.1576 s) need 4+ digits
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    if len(xs) > 1:  # room for the labels on the right
        left, right = ax.get_xlim()
        if ax.get_xscale() == "log":
            ax.set_xlim(left, right * 10 ** (0.25 * math.log10(right / left)))
        else:
            ax.set_xlim(left, right + 0.25 * (right - left))
    else:
        x = xs[0]
        ax.set_xlim(x / 2, x * 4) if ax.get_xscale() == "log" else ax.set_xlim(x * 0.5, x * 1.6)


def _size_curve(ax, tc: TaskComparison, axis: str = "parameters") -> None:
    """The size curve through the models' qualities on ``axis`` (parameters or weights_bytes), its band the
    rows' 95% CIs, and the knee marked; one curve per level in a sweep (each level's own verdict). On the
    bytes axis the verdict's own curve where variants made it one (with its knee), else the curve through the
    rows' weight bytes (the same order as parameters: no knee of its own)."""
    verdicts, band = tc.level_verdicts, "95% CI"
    for v in verdicts or [None]:
        curve = None if v is None else v.curve if axis == "parameters" else v.bytes_curve
        if curve is None and axis == "weights_bytes":
            from llmbench.report.sizecurve import size_curve

            results = [r for r in tc.results if v is None or len(verdicts) == 1 or r.level == v.level]
            curve = size_curve(results, axis, tc.higher_is_better, tc.metric_label, tc.scale, 0.0,
                               lambda small, large: None)
        if curve is None:
            continue
        level = f" ({v.level_label})" if v is not None and len(verdicts) > 1 else ""
        xs = [p.size for p in curve.points]
        ax.plot(xs, [p.quality for p in curve.points], color="#1f6feb", lw=1, alpha=0.7, zorder=1)
        if all(p.ci_low is not None and p.ci_high is not None for p in curve.points):
            ax.fill_between(xs, [p.ci_low for p in curve.points], [p.ci_high for p in curve.points],
                            color="#9cc3ff", alpha=0.3, lw=0, label=band, zorder=0)
            band = None  # one legend entry for the bands of every level
        if curve.knee_size is not None:
            ax.axvline(curve.knee_size, color="#8250df", ls="--", lw=1.2, zorder=1,
                       label=f"knee{level}: past {curve.knee}, < {curve.gain_text(curve.min_gain)} per doubling")
        ax.legend(loc="best", fontsize=8)


def task_figure(tc: TaskComparison, per: str = "sample"):
    """A six-panel matplotlib Figure for one task (see the module's docstring); ``per`` 'correct' puts energy
    and time per correct answer on the first row's cost axes instead of per sample."""
    import matplotlib

    # record text (model and task names) is drawn as written: a "$" must not start mathtext
    with matplotlib.rc_context({"text.parse_math": False}):
        return _task_figure(tc, per)


def _task_figure(tc: TaskComparison, per: str):
    from matplotlib.figure import Figure

    # fixed margins: a layout engine triples the rendering time and the panels never change shape
    fig = Figure(figsize=(15, 9.2), dpi=100)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.06, top=0.93, wspace=0.2, hspace=0.28)
    axes = fig.subplots(2, 3)
    for ax, (attr, xlabel, what) in zip(axes[0], _AXES[per]):
        _panel(ax, tc, attr, xlabel, what)
    for ax, (attr, xlabel, what, higher) in zip(axes[1], _VARIANT_AXES):
        _panel(ax, tc, attr, xlabel, what, higher)
    failed = [r.model for r in tc.results if not r.ok]
    title = f"{tc.task}: {tc.metric_label} ({'higher' if tc.higher_is_better else 'lower'} is better)"
    if failed:
        title += f" — failed: {', '.join(failed)}"
    fig.suptitle(title, fontsize=12)
    return fig


def _save(fig, fh, fmt: str) -> None:
    # no creation dates in the files: the same records give the same bytes
    metadata = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else None
    fig.savefig(fh, format=fmt, metadata=metadata)


def task_png(tc: TaskComparison, per: str = "sample") -> bytes:
    """The task figure as PNG bytes (for embedding in the HTML report)."""
    buf = io.BytesIO()
    _save(task_figure(tc, per), buf, "png")
    return buf.getvalue()


def safe_name(name: str) -> str:
    """A task name as a file name: letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "task"


def plot_paths(cmp: Comparison, out_dir: str | Path,
               formats: tuple[str, ...] = PLOT_FORMATS) -> list[tuple[TaskComparison, list[Path]]]:
    """Per task, the files ``write_plots`` writes: ``<task>.<fmt>``, each format once, and a ``-2``... suffix
    when two task names map to the same file name."""
    formats = tuple(dict.fromkeys(formats))
    out = Path(out_dir)
    used: set[str] = set()
    plan = []
    for tc in cmp.tasks:
        base = stem = safe_name(tc.task)
        n = 1
        while stem in used:
            n += 1
            stem = f"{base}-{n}"
        used.add(stem)
        plan.append((tc, [out / f"{stem}.{fmt}" for fmt in formats]))
    return plan


def write_plots(cmp: Comparison, out_dir: str | Path, formats: tuple[str, ...] = PLOT_FORMATS,
                inputs: Iterable[Path] = (), per: str = "sample") -> list[Path]:
    """Write ``<task>.<fmt>`` per task and format under ``out_dir``; returns the paths written.

    Refuses (UserError) to write over any of ``inputs`` (the records being plotted); a file or directory
    that cannot be written is a UserError ``cannot write PATH: <reason>``.
    """
    import matplotlib

    from llmbench.records.output_files import output_error, refuse_overwrite

    plan = plot_paths(cmp, out_dir, formats)
    inputs = list(inputs)
    for _, paths in plan:
        for path in paths:
            refuse_overwrite(path, inputs)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out, exc) from None
    written = []
    with matplotlib.rc_context({"svg.hashsalt": "llmbench"}):  # stable SVG ids
        for tc, paths in plan:
            fig = task_figure(tc, per)
            for path in paths:
                try:
                    with open(path, "wb") as fh:
                        _save(fig, fh, path.suffix[1:])
                except OSError as exc:
                    raise output_error(path, exc) from None
                written.append(path)
    return written
