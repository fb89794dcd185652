"""Prompt templates are bounded (llmbench.tasks.template): a template that loops or allocates without end
stops at a bound with one line naming the task, the record and the bound, before any model is loaded.

Every case here trips its bound within a fraction of a second; none runs a long loop. No torch."""

from __future__ import annotations

import pytest
from cli_helpers import run_cli
from jinja2.sandbox import SandboxedEnvironment
from test_tasks import user_error, write_task

from llmbench.tasks import load_catalog
from llmbench.tasks import template as bounds
from llmbench.tasks.template import compile_template, render

RECORDS = [{"source": "ok", "target": "ok"}, {"source": "s" * 100, "target": "t"}]


def render_error(tmp_path, prompt: str, records=None) -> str:
    """The one-line error loading the examples of a task with this prompt gives."""
    write_task(tmp_path, prompt=prompt, records=records or RECORDS)
    (task,) = load_catalog([tmp_path]).resolve(["toy"])
    return user_error(task.examples)


CASES = {
    "range of 10**9": ("{% for i in range(10**9) %}x{% endfor %}", "a range() of more than 100,000 items"),
    "nested loops, no output": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                                "more than 200,000 steps (loop iterations and calls)"),
    "nested loops over a string": ("{% set s = source * 10000 %}{% for a in s %}{% for b in s %}{% endfor %}"
                                   "{% endfor %}", "more than 200,000 steps"),
    "nested loops with output": ("{% for i in range(100000) %}{% for j in range(100000) %}{{ source * 50 }}{% endfor %}"
                                 "{% endfor %}", "a prompt of more than 1,000,000 characters"),
    "string multiplication": ("{{ 'x' * 10**9 }}", "a value of more than 1,000,000 characters or items"),
    "literal string multiplication": ("{{ 'x' * 1000000000 }}", "a value of more than 1,000,000 characters"),
    "list multiplication": ("{{ ([source] * 10**9) | length }}", "a value of more than 1,000,000 characters"),
    "doubling with ~": ("{% set ns = namespace(s=source) %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                        "{% endfor %}{{ ns.s | length }}", "a value of more than 1,000,000 characters"),
    "doubling with +": ("{% set ns = namespace(s=source) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
                        "{% endfor %}{{ ns.s | length }}", "a value of more than 1,000,000 characters"),
    "huge integer": ("{{ 10 ** 1000000 }}", "an integer of more than 100,000 bits"),
    "squaring integers": ("{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}"
                          "{% endfor %}{{ ns.n > 1 }}", "an integer of more than 100,000 bits"),
    "center filter": ("{{ source | center(1000000000) }}", "a width of more than 1,000,000"),
    "indent filter": ("{{ source | indent(1000000000) }}", "a width of more than 1,000,000"),
    "str.ljust": ("{{ source.ljust(1000000000) }}", "a width of more than 1,000,000"),
    "str.format width": ("{{ '{:>1000000000}'.format(source) }}", "a format width of more than 1,000,000"),
    "nested format width": ("{{ '{:>{}}'.format(source, 10**9) }}", "a width of more than 1,000,000"),
    "% width": ("{{ '%1000000000s' % source }}", "a format width of more than 1,000,000"),
    "format filter width": ("{{ '%1000000000s' | format(source) }}", "a format width of more than 1,000,000"),
    "str.join": ("{{ (source * 9999).join(range(100000) | map('string') | list) }}",
                 "a value of more than 1,000,000 characters"),
    "replace filter": ("{{ (source * 99999) | replace('', 'xyzxyzxyz') }}",
                       "a value of more than 1,000,000 characters"),
    "macro recursion without loops": ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
                                      "{{ f(40) }}", "more than 200,000 steps"),
    "macro building a huge value": ("{% macro m() %}{% for i in range(100000) %}{{ source * 20 }}{% endfor %}"
                                    "{% endmacro %}{{ m() | length }}", "a value of more than 1,000,000 characters"),
    "set block": ("{% set x %}{% for i in range(100000) %}{% for j in range(10) %}" + "y" * 1000
                  + "{% endfor %}{% endfor %}{% endset %}{{ x | length }}",
                  "more than 10,000,000 characters written (macros and blocks included)"),
}


@pytest.mark.parametrize("prompt, bound", CASES.values(), ids=CASES.keys())
def test_a_runaway_template_stops_at_its_bound(tmp_path, prompt, bound):
    message = render_error(tmp_path, prompt)
    assert message.startswith("task toy: record 0 (jsonl: data/toy.jsonl): prompt stopped at a bound: "), message
    assert bound in message and "toy.yaml" in message


def test_a_huge_record_field_is_refused_naming_its_record(tmp_path):
    records = [{"source": "short", "target": "t"}, {"source": "x" * 1_000_001, "target": "t"}]
    message = render_error(tmp_path, "{{ source }}", records)
    assert "record 1 (jsonl: data/toy.jsonl)" in message
    assert "a prompt of more than 1,000,000 characters" in message


def test_the_time_bound(tmp_path, monkeypatch):
    write_task(tmp_path, prompt="{% for x in [1, 2] %}{{ x }}{% endfor %}", records=RECORDS)
    (task,) = load_catalog([tmp_path]).resolve(["toy"])
    monkeypatch.setattr(bounds, "MAX_SECONDS", -1.0)  # already past: the first check trips, no waiting
    message = user_error(task.examples)
    assert "prompt stopped at a bound: rendering took more than -1 s" in message


def test_lipsum_is_not_available(tmp_path):
    assert "lipsum" in render_error(tmp_path, "{{ lipsum(10**9) }}")


def test_a_runaway_fewshot_example_fails_when_the_catalog_loads(tmp_path):
    write_task(tmp_path, prompt="{% for i in range(10**6) %}{% endfor %}{{ source }}",
               fewshot=[{"source": "a", "target": "b"}])
    message = user_error(load_catalog, [tmp_path])
    assert "toy.yaml:" in message and "few-shot example 1" in message and "100,000 items" in message


def test_run_stops_before_any_model_is_loaded(tmp_path, capsys):
    from llmbench.cli.console import err, out

    out.cache_clear()
    err.cache_clear()
    write_task(tmp_path / "tasks", prompt="{{ 'x' * 10**9 }}")
    code = run_cli(["run", "-m", "no-such/model-anywhere", "-t", "toy", "--tasks-dir", str(tmp_path / "tasks"),
                    "--out", str(tmp_path / "results")])
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert "task toy: record 0" in stderr and "1,000,000 characters" in stderr
    assert not (tmp_path / "results").exists()


PLAIN = SandboxedEnvironment(autoescape=False)
ORDINARY = [
    "English: {{ source }}\nFrench:",
    "{% for x in items %}{{ loop.index }}/{{ loop.length }}: {{ x ~ '!' }}\n{% else %}none{% endfor %}",
    "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}",
    "{{ items | join(', ') }} {{ '%5s|%-3d' % (source, 7) }} {{ '{:>6}'.format(source) }} {{ 'x' * 3 }}",
    "{{ source | center(9) }}|{{ source | upper | replace('O', '0') }}|{{ (items + [4]) | sum }}|{{ 2 ** 10 }}",
    "{% macro pair(a, b) %}{{ a }}={{ b }}{% endmacro %}{% for k, v in meta | dictsort %}{{ pair(k, v) }} {% endfor %}",
    "{% set t %}{% filter upper %}{{ source }}{% endfilter %}{% endset %}{{ t }} {{ range(3) | list }}",
    "{% for row in items | batch(2) %}{{ row }}{% endfor %} {{ '%s' | format(source) }} {{ source.zfill(5) }}",
]


@pytest.mark.parametrize("prompt", ORDINARY)
def test_ordinary_templates_render_as_jinja_renders_them(prompt):
    variables = {"source": "ok", "items": [1, 2, 3], "meta": {"b": 2, "a": 1}}
    assert render(compile_template(prompt), variables) == PLAIN.from_string(prompt).render(variables)


def test_the_sandbox_still_refuses_python_internals():
    with pytest.raises(Exception, match="unsafe|not safely callable"):
        render(compile_template("{{ ''.__class__.__mro__[1].__subclasses__() }}"), {})
