"""The architecture holds: no import cycle inside llmbench/, no module much over 400 lines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 420  # "about 400": a module past this is doing more than one job


def _cycles_module():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_cycles"] = module
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle_inside_llmbench_even_through_lazy_imports():
    mod = _cycles_module()
    assert mod.cycles(mod.import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    mod = _cycles_module()
    assert mod.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "llmbench").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
