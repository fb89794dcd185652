"""`llmbench tasks export-lm-eval`: write one of our tasks as an lm-eval task folder.

The export is made so that lm-eval, run on it, sees exactly what llmbench sees and scores it exactly as
llmbench does, without llmbench installed:

- ``<name>.jsonl``: one document per example: ``index``, ``prompt`` (llmbench's plain-text prompt, few-shot
  blocks included, i.e. ``Example.prompt``) and ``references`` (llmbench's reference list).
- ``<name>.yaml``: ``output_type: generate_until``, ``doc_to_text: prompt``, ``num_fewshot: 0``, greedy
  ``generation_kwargs`` with the task's stop sequences and ``max_gen_toks``, a ``remove_whitespace``
  filter (llmbench strips the generated text too), ``process_results`` and ``metric_list``.
- ``llmbench_<name>.py``: the data loader and the metric functions lm-eval lacks (ROUGE, SQuAD EM/F1,
  JSON fields); BLEU/chrF/TER use lm-eval's own sacrebleu aggregations. See templates/task_utils.py.

Nothing here imports lm_eval: exporting works without it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import llmbench
from llmbench.errors import UserError

# Scale of each llmbench metric as the exported task reports it (the same as llmbench's).
SCALES = {
    "bleu": "0-100", "chrf": "0-100", "ter": "0-100",
    "rouge1": "0-1", "rouge2": "0-1", "rougeL": "0-1",
    "exact_match": "0-100", "f1": "0-100",
    "json_precision": "0-1", "json_recall": "0-1", "json_f1": "0-1", "json_parse_failure_rate": "0-1",
}
_LOWER_IS_BETTER = {"ter", "json_parse_failure_rate"}
# metric -> lm-eval aggregation: a registered name, or a function of the exported module
_AGGREGATIONS = {
    "bleu": "bleu", "chrf": "chrf", "ter": "ter",
    "json_precision": "!function {module}.json_precision",
    "json_recall": "!function {module}.json_recall",
    "json_f1": "!function {module}.json_f1",
}
_TEMPLATE = Path(__file__).parent / "templates" / "task_utils.py"
_SETTINGS = re.compile(r"# --- task settings.*?# --- end of task settings ---\n", re.S)


@dataclass(frozen=True)
class Exported:
    """What one export wrote."""

    task: str  # the lm-eval task name (pass it to --tasks)
    yaml: Path
    data: Path
    module: Path
    n: int


def module_name(task_name: str) -> str:
    """Python module name of a task's metric file: ``llmbench_<name>`` with non-identifier characters as _."""
    return "llmbench_" + re.sub(r"\W", "_", task_name)


def _q(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar (same escapes); ASCII keeps it unambiguous.
    return json.dumps(value, ensure_ascii=True)


def render_yaml(task_name: str, source_task, module: str, data_file: str, n: int) -> str:
    """The lm-eval task YAML for one llmbench task (a TaskSpec or Task)."""
    lines = [
        f"# lm-eval task exported by llmbench {llmbench.__version__} from llmbench task {source_task.name!r}",
        f"# ({source_task.source_description}, {n} examples). Run it with the lm_eval CLI:",
        f"#   lm_eval run --model hf --model_args pretrained=MODEL --include_path THIS_DIR --tasks {task_name}"
        " --batch_size 1",
        "# Prompts are llmbench's plain-text prompts (few-shot blocks included, no chat template): compare",
        "# with `llmbench run --no-chat-template`, and do not pass --apply_chat_template to lm_eval.",
        f"task: {_q(task_name)}",
        f"custom_dataset: !function {module}.load_dataset",
        "test_split: test",
        "output_type: generate_until",
        "doc_to_text: prompt",
        "doc_to_target: references",
        "num_fewshot: 0",
        "generation_kwargs:",
        f"  until: [{', '.join(_q(s) for s in source_task.stop)}]",
        "  do_sample: false",
        f"  max_gen_toks: {int(source_task.max_new_tokens)}",
        "filter_list:",
        "  - name: none",
        "    filter:",
        "      - function: remove_whitespace",
        "      - function: take_first",
        f"process_results: !function {module}.process_results",
        "metric_list:",
    ]
    for metric in source_task.metrics:
        aggregation = _AGGREGATIONS.get(metric, "mean").format(module=module)
        lines += [
            f"  - metric: {metric}",
            f"    aggregation: {aggregation}",
            f"    higher_is_better: {'false' if metric in _LOWER_IS_BETTER else 'true'}",
        ]
    scales = ", ".join(f"{m}: {_q(SCALES[m])}" for m in source_task.metrics)
    lines += [
        "metadata:",
        "  version: 1.0",
        f"  llmbench_task: {_q(source_task.name)}",
        f"  llmbench_version: {_q(llmbench.__version__)}",
        f"  llmbench_scales: {{{scales}}}",
    ]
    return "\n".join(lines) + "\n"


def render_module(task_name: str, data_file: str, metrics: Sequence[str], ref_width: int) -> str:
    """The exported metric module: the template with this task's settings filled in."""
    template = _TEMPLATE.read_text(encoding="utf-8")
    settings = (
        "# --- task settings (written by llmbench tasks export-lm-eval) ---\n"
        f"TASK = {task_name!r}\n"
        f"DATA_FILE = {data_file!r}\n"
        f"METRICS = {tuple(metrics)!r}\n"
        f"REF_WIDTH = {int(ref_width)}\n"
        "# --- end of task settings ---\n"
    )
    out, count = _SETTINGS.subn(lambda _m: settings, template, count=1)
    if count != 1:  # pragma: no cover - the template ships with the package
        raise RuntimeError(f"{_TEMPLATE}: task settings block not found")
    return out


def export_task(task_name: str, out_dir: Path | str, tasks_dirs: Sequence[Path | str] = (),
                limit: int | None = None, lm_eval_name: str | None = None) -> Exported:
    """Write llmbench task ``task_name`` as an lm-eval task under ``out_dir``; returns what was written.

    ``limit`` keeps the first N examples; ``lm_eval_name`` renames the task for lm-eval (default: same
    name). A suite name is a user error (export its tasks one by one).
    """
    from llmbench.tasks import load_catalog

    catalog = load_catalog(list(tasks_dirs))
    if task_name in catalog.suites:
        members = ", ".join(catalog.expand([task_name]))
        raise UserError(f"{task_name!r} is a suite; export its tasks one by one: {members}")
    [task] = catalog.resolve([task_name], limit)
    unknown = [m for m in task.metrics if m not in SCALES]
    if unknown:  # pragma: no cover - KNOWN_METRICS and SCALES are kept in step by a test
        raise UserError(f"task {task_name}: metric {unknown[0]!r} cannot be exported to lm-eval")
    examples = task.examples()
    name = lm_eval_name or task.name
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name):
        raise UserError(f"lm-eval task name {name!r}: use letters, digits, '.', '_' or '-'")
    module = module_name(name)

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: not a directory")
    out.mkdir(parents=True, exist_ok=True)
    data_file = f"{name}.jsonl"
    data_path, yaml_path, module_path = out / data_file, out / f"{name}.yaml", out / f"{module}.py"

    rows = [{"index": ex.index, "prompt": ex.prompt, "references": list(ex.references)} for ex in examples]
    ref_width = max(len(r["references"]) for r in rows)
    _write(data_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    _write(module_path, render_module(name, data_file, task.metrics, ref_width))
    _write(yaml_path, render_yaml(name, task, module, data_file, len(rows)))
    return Exported(task=name, yaml=yaml_path, data=data_path, module=module_path, n=len(rows))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
