"""Run records: the versioned JSON every later command (compare, export, plot, gate) reads.

The public shape is documented in docs/results-schema.md; bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"


@dataclass
class ResultRow:
    """One model x task: quality, latency, memory and energy from the same generations."""

    model: dict  # spec, name, parameters, dtype, device, load_time_s
    task: dict  # name, kind, n, source
    quality: dict = field(default_factory=dict)  # metric -> {value, ci_low, ci_high, higher_is_better, ...}
    latency: dict = field(default_factory=dict)  # ttft_s/tpot_s/e2e_s/new_tokens: Summary; tokens_per_s...
    memory: dict = field(default_factory=dict)
    energy: dict = field(default_factory=dict)
    status: str = "ok"  # ok | failed
    error: str | None = None
    session: int | None = None  # which session of the run measured it (records/writer.py); None: not recorded


    @property
    def key(self) -> tuple[str, str]:
        """(model name, task name): how rows of different runs are matched."""
        return (self.model.get("name", ""), self.task.get("name", ""))

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.session is None:  # rows written before sessions existed read and write as they were
            del out["session"]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ResultRow":
        return cls(
            model=dict(d.get("model") or {}),
            task=dict(d.get("task") or {}),
            quality=dict(d.get("quality") or {}),
            latency=dict(d.get("latency") or {}),
            memory=dict(d.get("memory") or {}),
            energy=dict(d.get("energy") or {}),
            status=d.get("status", "ok"),
            error=d.get("error"),
            session=d.get("session"),
        )


@dataclass
class RunRecord:
    """A whole run: environment, settings and one row per model x task."""

    run_id: str
    created_at: str
    command: str
    environment: dict
    settings: dict = field(default_factory=dict)
    rows: list[ResultRow] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    # completeness (records/writer.py): None in records written before these keys existed, read as complete
    complete: bool | None = None  # false from the start of a run, true (with finished_at) once it finished
    finished_at: str | None = None
    missing: list[dict] | None = None  # [{model, task}]: rows planned but not written yet
    sessions: list[dict] | None = None  # one entry per process that wrote the record (--resume adds one)
    path: Path | None = None  # where it was read from; not serialised
    read_notes: list[str] = field(default_factory=list)  # what reading it tolerated (a cut-off samples line)

    def to_dict(self) -> dict:
        out = {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "command": self.command,
        }
        if self.complete is not None:
            out.update(complete=self.complete, finished_at=self.finished_at, missing=list(self.missing or []),
                       sessions=list(self.sessions or []))
        out.update(environment=self.environment, settings=self.settings, rows=[r.to_dict() for r in self.rows])
        return out

    @property
    def incomplete(self) -> bool:
        """Written by a run that has not finished (interrupted, killed, or still running); a record without
        ``complete`` (older llmbench) counts as complete."""
        return self.complete is False

    @classmethod
    def from_dict(cls, d: dict, path: Path | None = None) -> "RunRecord":
        return cls(
            run_id=d["run_id"],
            created_at=d.get("created_at", ""),
            command=d.get("command", ""),
            environment=dict(d.get("environment") or {}),
            settings=dict(d.get("settings") or {}),
            rows=[ResultRow.from_dict(r) for r in d.get("rows", [])],
            schema_version=int(d.get("schema_version", SCHEMA_VERSION)),
            complete=d.get("complete"),
            finished_at=d.get("finished_at"),
            missing=[dict(m) for m in d["missing"]] if d.get("missing") is not None else None,
            sessions=[dict(x) for x in d["sessions"]] if d.get("sessions") is not None else None,
            path=path,
        )


def new_run_id(label: str | None = None) -> str:
    """Sortable, unique id: UTC timestamp plus the label or a short random suffix."""
    import secrets

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    suffix = "".join(c if c.isalnum() or c in "-_." else "-" for c in label) if label else secrets.token_hex(3)
    return f"{stamp}-{suffix}"


def create_run_dir(out_dir: Path | str, label: str | None = None) -> str:
    """A new run id whose directory under `out_dir` this call created, exclusively.

    Two runs started in the same second with the same label would get the same id: the directory is made with
    `os.mkdir` (which fails if it exists), and on a collision the id gets a suffix -2, -3, ... instead.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = new_run_id(label)
    attempt = 1
    while True:
        run_id = base if attempt == 1 else f"{base}-{attempt}"
        try:
            os.mkdir(out / run_id)
        except FileExistsError:
            attempt += 1
            continue
        return run_id


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _version(pkg: str) -> str | None:
    from importlib import metadata  # here, not at import: reading records needs none of it

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    import subprocess

    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_commit() -> tuple[str | None, bool | None]:
    """The llmbench checkout's commit and whether tracked files differ from it (None outside a checkout)."""
    commit = _git("rev-parse", "HEAD") or None
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def capture_environment(device: str | None = None, gpu: dict | None = None) -> dict:
    """Versions and hardware that make two records comparable (or not)."""
    from llmbench import __version__

    commit, dirty = _git_commit()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "accelerate": _version("accelerate"),
        "lm_eval": _version("lm-eval"),
        "sacrebleu": _version("sacrebleu"),  # the metric libraries: their versions can move BLEU or ROUGE
        "rouge_score": _version("rouge-score"),
        "llmbench": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "device": device,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_name": (gpu or {}).get("name"),
        "gpu_driver": (gpu or {}).get("driver"),
        "cuda": (gpu or {}).get("cuda"),
    }
