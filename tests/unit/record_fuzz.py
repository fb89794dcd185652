"""A seeded generator of hostile run records, and a harness that runs each through the CLI in-process.

Every case starts from a valid pair of runs (report_fixtures.two_runs: run.json + samples.jsonl as
`llmbench run` writes them) and mutates one run: values replaced by hostile ones (integers too long to
read or beyond the float range, NaN, Infinity, deep lists, wrong types, formula and HTML payloads), keys
removed, rows and sample lines duplicated, raw text spliced in. The command (compare, export in every
format, gate, plot, baseline save) must then exit 0, 1, 2 or 3, never with a traceback, and exit 2 with
exactly one line ``error: ...``. An export that succeeds must be safe: no CSV text cell a spreadsheet would
read as a formula, no raw ``<``/``>`` from record text in Markdown.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import random
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

# values a hostile record may hold anywhere; RAW_* are spliced into the JSON text as written
RAW_HUGE_INT = "1" * 5000  # over Python's 4,300-digit limit for reading an int
RAW_BIG_INT = "9" * 400  # an int beyond the float range
RAW_BIG_FLOAT = "1e400"  # 1e308 * 10 written out: reads as inf
RAW_DEEP = "[" * 3000 + "]" * 3000  # deeper than Python's recursion limit
PAYLOADS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-3+cmd|' /C calc'!A0", "@SUM(A1:A2)", "\t=1", "\r=1",
            "＝1+1", " =1", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "a&amp;b", "x|y",
            "line\nbreak", "\u2028sep", "\x1b[31mred", "$\\input{/etc/passwd}$", "%", "`code`", "", " ",
            "-0.5", "1e5", "NaN"]
VALUES = [None, True, False, 0, -1, -0.5, 1e308, 2**63, 2**70, -(2**70), float("nan"), float("inf"),
          float("-inf"), "", "x", [], {}, [1, 2], {"a": 1}, [[[[[[[[[[]]]]]]]]]], ["x"] * 3, 3.5]
RAW = [RAW_HUGE_INT, RAW_BIG_INT, RAW_BIG_FLOAT, RAW_DEEP, "-" + RAW_BIG_INT, "1E-400"]
COMMANDS = ["compare", "csv", "md", "html", "latex", "json", "gate", "gate-swapped", "gate-md", "baseline",
            "plot"]
# the order cases cycle through: the HTML export and plot draw charts (matplotlib, ~0.2 s a case), so they
# get one case in 20 each and every other command two
SCHEDULE = [c for c in COMMANDS if c not in ("html", "plot")] * 2 + ["html", "plot"]


@dataclass
class Case:
    seed: int
    command: str
    mutation: str


def _slots(obj, path=()):
    """Every (container, key, path) of a JSON value, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield obj, k, path + (k,)
            yield from _slots(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield obj, i, path + (i,)
            yield from _slots(v, path + (i,))


def _hostile(rng: random.Random):
    """A hostile value, or a ("raw", text) marker for text spliced into the JSON."""
    r = rng.random()
    if r < 0.3:
        return rng.choice(PAYLOADS)
    if r < 0.5:
        return ("raw", rng.choice(RAW))
    if r < 0.55:
        return [0] * 0 + [rng.choice(VALUES)] * rng.randint(0, 3)
    if r < 0.6:  # nested past the readers' limit, but within what json.loads takes
        depth = rng.choice([65, 70, 500, 900])
        return ("raw", "[" * depth + "]" * depth)
    return copy.deepcopy(rng.choice(VALUES))


_MARK = "\u0000RAW{}\u0000"


def _describe(value) -> str:
    if isinstance(value, tuple):
        return f"raw {value[1][:12]!r}... ({len(value[1])} chars)"
    return repr(value)[:40]


def _dumps(obj, raws: list[str]) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(_MARK.format(i)), raw)
    return text


def _set(container, key, value, raws: list[str]):
    if isinstance(value, tuple) and value and value[0] == "raw":
        raws.append(value[1])
        value = _MARK.format(len(raws) - 1)
    container[key] = value


def mutate(record: dict, samples: list[dict], rng: random.Random) -> tuple[str, str, str]:
    """(run.json text, samples.jsonl text, what was done) of one mutated run."""
    record, samples = copy.deepcopy(record), copy.deepcopy(samples)
    raws: list[str] = []
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        kind = rng.random()
        if kind < 0.2:  # text of run.json or of a sample replaced by a payload: valid, so it reaches the exports
            texts = [s for s in _slots(record if rng.random() < 0.6 else rng.choice(samples))
                     if isinstance(s[0][s[1]], str)]
            if texts:
                container, key, path = rng.choice(texts)
                container[key] = rng.choice(PAYLOADS)
                done.append(f"text{list(path)}={container[key]!r}")
        elif kind < 0.5:  # a value of run.json
            slots = list(_slots(record))
            container, key, path = rng.choice(slots)
            value = _hostile(rng)
            _set(container, key, value, raws)
            done.append(f"run{list(path)}={_describe(value)}")
        elif kind < 0.55:  # a key of run.json removed
            slots = [s for s in _slots(record) if isinstance(s[0], dict)]
            container, key, path = rng.choice(slots)
            del container[key]
            done.append(f"del run{list(path)}")
        elif kind < 0.62:  # a row duplicated, or the rows replaced
            rows = record.get("rows")
            if isinstance(rows, list) and rows:
                rows.append(copy.deepcopy(rng.choice(rows)))
                done.append("duplicate row")
        elif kind < 0.85 and samples:  # a value of a sample line
            line = rng.choice(samples)
            slots = list(_slots(line))
            container, key, path = rng.choice(slots)
            value = _hostile(rng)
            _set(container, key, value, raws)
            done.append(f"sample{list(path)}={_describe(value)}")
        elif kind < 0.92 and samples:  # a sample line duplicated (same index), or one removed
            if rng.random() < 0.7:
                samples.append(copy.deepcopy(rng.choice(samples)))
                done.append("duplicate sample")
            else:
                samples.pop(rng.randrange(len(samples)))
                done.append("drop sample")
        else:  # a name replaced by a payload (what exports must neutralise)
            rows = record.get("rows")
            if isinstance(rows, list) and rows and isinstance(rows[0], dict):
                row = rng.choice(rows)
                part = row.get(rng.choice(["model", "task"]))
                if isinstance(part, dict):
                    part["name"] = rng.choice(PAYLOADS)
                    done.append(f"name={part['name']!r}")
    run_text = _dumps(record, raws)
    sample_text = "\n".join(_dumps(s, raws) for s in samples) + "\n"
    if rng.random() < 0.03:
        run_text = run_text[: rng.randrange(len(run_text))]  # cut short
        done.append("truncated run.json")
    return run_text, sample_text, "; ".join(done) or "none"


def command_args(command: str, a: Path, b: Path, out: Path, original: Path) -> list[str]:
    """The CLI arguments of one command on runs ``a`` (valid) and ``b`` (mutated); the gate compares ``b``
    with the ``original`` it was mutated from (the same rows)."""
    quick = ["--resamples", "0"] if command not in ("compare", "md") else ["--resamples", "200"]
    if command == "compare":
        return ["compare", str(a), str(b), *quick]
    if command in ("csv", "md", "html", "latex", "json"):
        return ["export", str(a), str(b), "-f", command, "-o", str(out / f"report.{command}"), *quick]
    if command == "gate":
        return ["gate", "--baseline", str(original), "--candidate", str(b)]
    if command == "gate-swapped":
        return ["gate", "--baseline", str(b), "--candidate", str(original), "--junit", str(out / "junit.xml")]
    if command == "gate-md":
        return ["gate", "--baseline", str(original), "--candidate", str(b), "--markdown", str(out / "gate.md")]
    if command == "baseline":
        return ["baseline", "save", str(b), "--name", "fuzz", "--dir", str(out / "baselines"), "--force"]
    if command == "plot":
        return ["plot", str(a), str(b), "-o", str(out / "plots"), "--format", "png", *quick]
    raise ValueError(command)


def run_cli(args: list[str]) -> tuple[int, str, str, str | None]:
    """(exit code, stdout, stderr, traceback text of an exception that escaped main, or None)."""
    from llmbench.cli import main
    from llmbench.cli.console import err, out

    out.cache_clear()
    err.cache_clear()
    stdout, stderr = io.StringIO(), io.StringIO()
    escaped = None
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - the point: nothing may escape
            escaped = traceback.format_exc()
            code = -1
    return code, stdout.getvalue(), stderr.getvalue(), escaped


_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_problems(text: str) -> list[str]:
    """Cells of a CSV export that a spreadsheet would read as a formula (a number is not one)."""
    bad = []
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")) \
                    and not _NUMBER.match(cell):
                bad.append(cell)
    return bad


def markdown_problems(text: str) -> list[str]:
    """Lines of a Markdown export with a raw ``<`` or ``>`` (a blockquote's leading ``>`` is ours)."""
    return [line for line in text.splitlines() if re.search(r"[<>]", re.sub(r"^> ", "", line))]


def check_case(case: Case, code: int, stdout: str, stderr: str, escaped: str | None, out: Path) -> str | None:
    """Why the case failed, or None."""
    if escaped is not None:
        return f"exception escaped main:\n{escaped}"
    if code not in (0, 1, 2, 3):
        return f"exit code {code}"
    if "Traceback" in stderr or "Traceback" in stdout:
        return f"traceback on the output:\n{stderr[-3000:]}"
    if code == 2:
        lines = stderr.strip("\n").split("\n")
        if len(lines) != 1 or not lines[0].startswith("error: ") or len(stderr.strip().splitlines()) != 1:
            return f"exit 2 without one error line: {stderr!r:.600}"
    if code != 2:
        if case.command == "csv" and (out / "report.csv").exists():
            bad = csv_problems((out / "report.csv").read_bytes().decode("utf-8"))  # no newline translation
            if bad:
                return f"formula cells in the CSV: {bad[:3]}"
        for name in ("report.md", "gate.md"):
            if (out / name).exists():
                bad = markdown_problems((out / name).read_text(encoding="utf-8"))
                if bad:
                    return f"raw < or > in {name}: {bad[:3]}"
    return None


def run_cases(base_dir: Path, work: Path, seeds: range, commands: list[str] | None = None) -> tuple[int, list[str]]:
    """Run one case per seed (the command cycling through ``commands``); (cases run, failures)."""
    a, b_valid = sorted(p for p in base_dir.iterdir() if p.is_dir())
    record = json.loads((b_valid / "run.json").read_text(encoding="utf-8"))
    samples = [json.loads(x) for x in (b_valid / "samples.jsonl").read_text(encoding="utf-8").splitlines() if x]
    commands = commands or SCHEDULE
    failures = []
    n = 0
    for seed in seeds:
        rng = random.Random(seed)
        command = commands[seed % len(commands)]
        run_text, sample_text, what = mutate(record, samples, rng)
        case_dir = work / f"case{seed}"
        b = case_dir / b_valid.name
        b.mkdir(parents=True)
        (b / "run.json").write_text(run_text, encoding="utf-8")
        (b / "samples.jsonl").write_text(sample_text, encoding="utf-8")
        out = case_dir / "out"
        out.mkdir()
        case = Case(seed, command, what)
        code, stdout, stderr, escaped = run_cli(command_args(command, a, b, out, b_valid))
        problem = check_case(case, code, stdout, stderr, escaped, out)
        n += 1
        if problem:
            failures.append(f"seed {seed} {command} [{what}]: {problem}")
    return n, failures
