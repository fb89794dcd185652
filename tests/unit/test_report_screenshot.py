"""The HTML report in a real headless Chromium (optional: skipped where /usr/bin/chromium is absent)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from report_fixtures import two_runs

from llmbench.report import build_comparison, load_runs
from llmbench.report.exporters import export

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("bash") is None,
                                reason="needs /usr/bin/chromium (apt-get install -y chromium)")


def _screenshot(tmp_path, html: str, name: str) -> Path:
    report = tmp_path / f"{name}.html"
    report.write_text(html, encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "screenshot_report.sh"), str(report), str(shot)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return shot


def _chart_and_text_pixels(shot: Path) -> tuple[int, int]:
    """Pixels in the charts' marker blue (#1f6feb) or frontier red (#d1242f), which the page's own styles do
    not use, and dark text pixels in the top fifth of the page (the title and the first table)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    near = [np.abs(rgb - np.array(c)).sum(axis=2) < 30 for c in ((31, 111, 235), (209, 36, 47))]
    dark = (rgb[: rgb.shape[0] // 5] < 90).all(axis=2)
    return int(sum(m.sum() for m in near)), int(dark.sum())


def test_screenshot_of_html_report_shows_tables_and_charts(tmp_path):
    merged = load_runs([str(p) for p in two_runs(tmp_path / "runs")])
    cmp = build_comparison(merged)
    shot = _screenshot(tmp_path, export(cmp, merged, "html"), "report")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 2400)
    chart, text = _chart_and_text_pixels(shot)
    assert text > 2000  # the title and the first task's table were drawn
    assert chart > 200  # the charts' points and Pareto frontier were drawn
    # the same report without its charts has none of their colours: the count above is the charts
    from llmbench.report.exporters.html import to_html

    bare_chart, bare_text = _chart_and_text_pixels(_screenshot(tmp_path, to_html(cmp, merged, charts=False), "bare"))
    assert bare_chart < chart / 20 and bare_text > 2000
