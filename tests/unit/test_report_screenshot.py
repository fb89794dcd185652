"""The HTML report in a real headless Chromium (optional: skipped where /usr/bin/chromium is absent)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from report_fixtures import two_runs

from llmbench.report import build_comparison, load_runs
from llmbench.report.export import export

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("bash") is None,
                                reason="needs /usr/bin/chromium (apt-get install -y chromium)")


def test_screenshot_of_html_report(tmp_path):
    merged = load_runs([str(p) for p in two_runs(tmp_path / "runs")])
    report = tmp_path / "report.html"
    report.write_text(export(build_comparison(merged), merged, "html"), encoding="utf-8")
    shot = tmp_path / "report.png"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "screenshot_report.sh"), str(report), str(shot)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 2400)
    assert len(data) > 100_000  # tables and charts, not a blank page
