"""Prompt templates: Jinja2's sandbox, with bounds on what one rendering may cost.

Task files may come from other people's ``--tasks-dir`` folders, and every prompt is rendered when the run
starts, before any model is loaded. Jinja2's sandbox stops access to Python internals and refuses a
``range()`` of more than 100,000 items, but it lets a template run without end (two nested loops of
100,000) or build a huge value (``'x' * 10**9``, ``'x' | center(10**9)``, ``10**10**9``). Here every
rendering is bounded:

- the prompt text: at most ``MAX_PROMPT_CHARS`` characters;
- everything the template writes along the way (text inside macros and ``{% set %}`` / ``{% filter %}``
  blocks counted where it is written): at most ``MAX_WRITTEN_CHARS``;
- a value the template builds (a string, list or dict from an operator, filter, method or macro): at most
  ``MAX_PROMPT_CHARS`` characters or items, refused before it is built where its size can be known in
  advance (``*``, ``+``, ``~``, ``**``, widths and format specs, ``join``, ``replace``), else right after;
  an integer: at most ``MAX_INT_BITS`` bits;
- work: at most ``MAX_STEPS`` steps (loop iterations plus calls of filters, methods and macros) and
  ``MAX_SECONDS`` seconds.

Past a bound the rendering stops with `TemplateBound`, whose message names the bound.
"""

from __future__ import annotations

import functools
import re
import string
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context, EvalContext
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_PROMPT_CHARS = 1_000_000
MAX_WRITTEN_CHARS = 10 * MAX_PROMPT_CHARS
MAX_STEPS = 200_000
MAX_SECONDS = 5.0
MAX_INT_BITS = 100_000  # about 30,000 decimal digits

_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
# str methods and filters whose integer arguments are sizes of what they build
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_WIDTH_FILTERS = frozenset({"center", "indent", "slice", "batch"})
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")


class TemplateBound(Exception):
    """A rendering went past one of the bounds; the message names it."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    written: int = 0


# The rendering in progress (None outside `render`, e.g. while Jinja folds constants at compile time).
_BUDGET: ContextVar[_Budget | None] = ContextVar("llmbench_template_budget", default=None)


def _too_big(what: str = "a value") -> TemplateBound:
    return TemplateBound(f"{what} of more than {MAX_PROMPT_CHARS:,} characters or items")


def _check_clock(budget: _Budget) -> None:
    if time.monotonic() > budget.deadline:
        raise TemplateBound(f"rendering took more than {MAX_SECONDS:g} s")


def _step() -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps += 1
    if budget.steps > MAX_STEPS:
        raise TemplateBound(f"more than {MAX_STEPS:,} steps (loop iterations and calls)")
    _check_clock(budget)


def _check_size(value: Any) -> Any:
    if isinstance(value, _SIZED) and len(value) > MAX_PROMPT_CHARS:
        raise _too_big()
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateBound(f"an integer of more than {MAX_INT_BITS:,} bits")
    return value


def _check_width(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_PROMPT_CHARS:
        raise _too_big("a width")


def _check_percent_format(fmt: str, args: Any) -> None:
    """``'%10s' % x``: widths and precisions, also those taken from the arguments (``%*d``)."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group and group != "*" and int(group) > MAX_PROMPT_CHARS:
                raise _too_big("a format width")
    if "*" in fmt:
        for arg in args if isinstance(args, tuple) else (args,):
            _check_width(arg)


def _check_brace_format(fmt: str, values: list) -> None:
    """``'{:>10}'.format(x)``: widths in the format specs; a nested spec takes its width from one of `values`."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # malformed: str.format raises its own error
    for _, _, spec, _ in fields:
        if not spec:
            continue
        if "{" in spec:
            for value in values:
                _check_width(value)
        for number in _NUMBER.findall(spec):
            if int(number) > MAX_PROMPT_CHARS:
                raise _too_big("a format width")


def _sized_len(value: Any) -> int | None:
    return len(value) if isinstance(value, _SIZED) else None


def _check_join(sep: Any, items: Any) -> None:
    if isinstance(sep, str) and isinstance(items, (list, tuple)):
        total = len(sep) * max(len(items) - 1, 0) + sum(len(x) for x in items if isinstance(x, str))
        if total > MAX_PROMPT_CHARS:
            raise _too_big()


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
        if len(text) + text.count(old) * (len(new) - len(old)) > MAX_PROMPT_CHARS:
            raise _too_big()


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse a result that would be too big, before computing it."""
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (left, right))
    if operator == "*":
        if ints:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateBound(f"an integer of more than {MAX_INT_BITS:,} bits")
            return
        for seq, times in ((left, right), (right, left)):
            n = _sized_len(seq)
            if n is not None and isinstance(times, int) and n * times > MAX_PROMPT_CHARS:
                raise _too_big()
    elif operator == "**" and ints and right > 0 and abs(left) > 1:
        if abs(left).bit_length() * right > MAX_INT_BITS:
            raise TemplateBound(f"an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "+":
        a, b = _sized_len(left), _sized_len(right)
        if a is not None and b is not None and a + b > MAX_PROMPT_CHARS:
            raise _too_big()
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(left, right)


def _plain_args(args: tuple) -> tuple:
    """Filter arguments without the context Jinja passes first to some filters."""
    while args and isinstance(args[0], (Context, EvalContext)):
        args = args[1:]
    return args


def _check_filter(name: str, args: tuple, kwargs: dict) -> None:
    args = _plain_args(args)
    if name in _WIDTH_FILTERS:
        for arg in (*args[1:], *kwargs.values()):
            _check_width(arg)
        if name == "indent" and args and isinstance(args[0], str):
            width = args[1] if len(args) > 1 else kwargs.get("width")
            if isinstance(width, str) and len(args[0]) + args[0].count("\n") * len(width) > MAX_PROMPT_CHARS:
                raise _too_big()
    elif name == "format" and args and isinstance(args[0], str):
        _check_percent_format(args[0], tuple(args[1:]) or tuple(kwargs.values()))
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], (list, tuple)) else None
        _check_join(args[1] if len(args) > 1 else kwargs.get("d", ""), items)
    elif name == "replace" and len(args) >= 3:
        _check_replace(args[0], args[1], args[2])


def _check_call(obj: Any, args: tuple, kwargs: dict) -> None:
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _WIDTH_METHODS:
        for arg in (*args, *kwargs.values()):
            _check_width(arg)
    elif name == "join" and args:
        _check_join(owner, args[0] if isinstance(args[0], (list, tuple)) else None)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])


def _guard_filter(name: str, func: Any) -> Any:
    @functools.wraps(func)  # keeps Jinja's pass_context / pass_eval_context marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _step()
        _check_filter(name, args, kwargs)
        return _check_size(func(*args, **kwargs))

    return guarded


def bounded_range(*args: int) -> range:
    """``range()`` in templates: Jinja's sandbox limit (100,000 items), with a message naming it."""
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise TemplateBound(f"a range() of more than {MAX_RANGE:,} items")
    return result


# Helpers the compiled templates call (see _Guard); the sandbox calls them without counting steps.
def loop_items(iterable: Any) -> Any:
    """The items of a ``{% for %}`` loop, one step each."""
    for item in iterable:
        _step()
        yield item


def concat(*parts: Any) -> str:
    """``a ~ b``, refused before it is built when too long."""
    texts = [str(p) for p in parts]
    if sum(map(len, texts)) > MAX_PROMPT_CHARS:
        raise _too_big()
    return "".join(texts)


def written(*pieces: Any) -> str:
    """The pieces of one output node, joined and counted against MAX_WRITTEN_CHARS wherever they go."""
    text = "".join([str(p) for p in pieces])
    budget = _BUDGET.get()
    if budget is not None:
        budget.written += len(text)
        if budget.written > MAX_WRITTEN_CHARS:
            raise TemplateBound(f"more than {MAX_WRITTEN_CHARS:,} characters written (macros and blocks included)")
    return text


def _helper(func: Any, *args: nodes.Expr, lineno: int) -> nodes.Call:
    target = nodes.ImportedName(f"{__name__}.{func.__name__}", lineno=lineno)
    return nodes.Call(target, list(args), [], None, None, lineno=lineno)


class _Guard(NodeTransformer):
    """Routes loops, ``~`` and every piece of output through the helpers above."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = _helper(loop_items, node.iter, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return _helper(concat, *node.nodes, lineno=node.lineno)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        node = self.generic_visit(node)
        pieces = [nodes.Const(c.data) if isinstance(c, nodes.TemplateData) else c for c in node.nodes]
        node.nodes = [_helper(written, *pieces, lineno=node.lineno)] if pieces else []
        return node


class BoundedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox plus the bounds of this module (operators, calls, filters, loops, output)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})  # also keeps Jinja from folding them at compile time

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        self.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs with no step to count
        self.globals["range"] = bounded_range

    def wrap_str_format(self, value: Any) -> Any:
        """``str.format`` / ``str.format_map``, which the sandbox wraps where they are looked up: their
        format specs are checked before formatting."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"

        @functools.wraps(wrapper)
        def checked(*args: Any, **kwargs: Any) -> Any:
            mapping = args[0] if is_map and args and isinstance(args[0], dict) else {}
            _check_brace_format(fmt, [*args, *kwargs.values(), *mapping.values()])
            return wrapper(*args, **kwargs)

        return checked

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if __obj is written or __obj is loop_items or __obj is concat:  # `is`: an undefined value fails on ==
            kwargs.pop("_loop_vars", None)  # what Jinja passes for Context.call
            kwargs.pop("_block_vars", None)
            return __obj(*args, **kwargs)
        _step()
        _check_call(__obj, args, kwargs)
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def compile_bounded(self, source: str) -> jinja2.Template:
        """A template whose renderings `render` can bound. Raises jinja2.TemplateSyntaxError."""
        return self.from_string(_Guard().visit(self.parse(source)))


# autoescape off: prompts are plain text. Not optimized: nothing is evaluated before the bounds apply.
JINJA = BoundedSandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                       optimized=False)


def compile_template(source: str) -> jinja2.Template:
    """A bounded prompt template. Raises jinja2.TemplateSyntaxError."""
    return JINJA.compile_bounded(source)


def render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """Render within the bounds; raises TemplateBound past one (and whatever the template raises)."""
    budget = _Budget(deadline=time.monotonic() + MAX_SECONDS)
    token = _BUDGET.set(budget)
    chunks = template.generate(variables)
    try:
        parts, size = [], 0
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_PROMPT_CHARS:
                raise TemplateBound(f"a prompt of more than {MAX_PROMPT_CHARS:,} characters")
            _check_clock(budget)
            parts.append(chunk)
        return "".join(parts)
    finally:
        chunks.close()
        _BUDGET.reset(token)
