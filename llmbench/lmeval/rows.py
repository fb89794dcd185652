"""Run lm-eval tasks on the model llmbench already loaded, under llmbench's meters.

`run_lm_eval` (called by the runner after our own tasks, once per loaded model) wraps the loaded
transformers model and tokenizer in lm-eval's own HF model class (``HFLM(pretrained=<model instance>,
tokenizer=<tokenizer>)``: no second load) and calls ``lm_eval.simple_evaluate`` once per requested task
name. The wrapper is a subclass of HFLM that only adds measurement around lm-eval's own request methods:

- ``generate_until`` at batch size 1: requests are run one at a time through HFLM's own code; each
  request's TTFT comes from llmbench's timestamping streamer passed to ``model.generate`` and its
  end-to-end time from perf_counter (device synchronised), as for llmbench's own tasks.
  Method: ``perf_counter+streamer per lm-eval request (device synchronised)``.
- larger batches, and ``loglikelihood`` / ``loglikelihood_rolling`` requests (multiple-choice and
  perplexity tasks): one time per task, labelled ``perf_counter per task (...)``, with the mean per request.
- memory and energy: a MemoryMeter / EnergyMeter window around each task's requests (the model work
  only: building prompts and scoring are outside), merged when a task issues several request types.
- warm-up: ``--warmup`` runs of the task's first request before its window, not counted.

Rows are named ``lm-eval:<task>`` so that they never collide with llmbench tasks of the same name; their
quality entries carry lm-eval's values and ``stderr`` (no bootstrap CI: lm-eval computes none).
"""

from __future__ import annotations

from typing import Iterator

from llmbench.errors import UserError, error_text
from llmbench.lmeval import require_lm_eval
from llmbench.lmeval.metered import ROW_PREFIX, Metering, metered_lm_class
from llmbench.lmeval.results import rows_from_results
from llmbench.lmeval.silence import quiet_lm_eval
from llmbench.lmeval.tasks import task_manager
from llmbench.records import ResultRow


class LmEvalRows:
    """The ``--lm-eval`` tasks of a run as a row producer (llmbench.runner.RowProducer)."""

    def __init__(self, config) -> None:
        self.config = config

    def preflight(self) -> None:
        """lm-eval installed, every ``--lm-eval`` task known and every model one it can run on, before any
        model is loaded."""
        for spec in self.config.models:
            if spec.backend != "hf":
                raise UserError(
                    f"--lm-eval runs lm-eval tasks on models loaded in process (backend hf), not on {spec.name} "
                    f"(backend {spec.backend}); for a served model run lm-eval's own API model (docs/lm-eval.md)")
        task_manager(self.config.lm_eval_tasks, self.config.lm_eval_include)

    def failed_rows(self, model_info: dict, error: str) -> list[ResultRow]:
        return [_failed(model_info, name, error, "lm-eval") for name in self.config.lm_eval_tasks]

    def rows(self, ctx) -> Iterator[tuple[ResultRow, list[dict]]]:
        yield from run_lm_eval(ctx)


def _failed(model_info: dict, name: str, error: str, source: str) -> ResultRow:
    return ResultRow(model=dict(model_info), task={"name": ROW_PREFIX + name, "kind": "lm-eval", "n": 0,
                                                  "source": source}, status="failed", error=error)


def run_lm_eval(ctx) -> Iterator[tuple[ResultRow, list[dict]]]:
    """Rows (and samples.jsonl lines) for every ``--lm-eval`` task on one loaded model, one task at a time.

    A generator: the runner writes each row as soon as it is finished. A task that fails is recorded as a
    failed row and the others go on; unknown task names and a missing lm-eval are user errors.
    """
    loaded, config, progress, model_info = ctx.loaded, ctx.config, ctx.progress, ctx.model_info
    lm_eval_version = require_lm_eval()
    manager = task_manager(config.lm_eval_tasks, config.lm_eval_include)
    import lm_eval

    hf_model, tokenizer = loaded.handle
    gen = config.generation
    metering = Metering(ctx.device, ctx.sync, config.warmup, gen.max_new_tokens, progress, loaded.name)
    with quiet_lm_eval():
        lm = metered_lm_class()(metering, pretrained=hf_model, tokenizer=tokenizer, backend="causal",
                                 batch_size=gen.batch_size)
    chat = bool(model_info.get("chat_template"))
    reported: set[str] = set()
    wanted = getattr(ctx, "wanted", lambda key: True)  # False: kept from an earlier session (--resume)
    for name in config.lm_eval_tasks:
        if not wanted((model_info["name"], ROW_PREFIX + name)):
            continue
        metering.stats.clear()  # each call measures its own tasks (a task may be asked for twice)
        try:
            with quiet_lm_eval():
                results = lm_eval.simple_evaluate(
                    model=lm, tasks=[name], task_manager=manager, limit=config.limit,
                    batch_size=gen.batch_size, log_samples=True, apply_chat_template=chat,
                    fewshot_as_multiturn=chat,
                )
        except KeyboardInterrupt:
            raise
        except UserError:
            raise
        except BaseException as exc:  # a broken task, an OOM...: record it and go on
            error = error_text(exc)
            progress.note(f"{loaded.name} / lm-eval {name}: failed: {error}")
            yield _failed(model_info, name, error, f"lm-eval {lm_eval_version}"), []
            continue
        for row, lines in rows_from_results(results, metering, loaded, config, model_info, ctx.load_memory,
                                            lm_eval_version):
            if row.task["name"] in reported:  # asked for directly and through a group: keep the first
                progress.note(f"{loaded.name}: {row.task['name']} was already reported; not repeated")
                continue
            reported.add(row.task["name"])
            yield row, lines
