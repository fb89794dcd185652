"""YAML with line numbers: every key and item of a task or suites file knows its line, so problems read
``file:line: problem``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmbench.errors import UserError
from llmbench.tasks.sources import display_path, one_line


class YamlDoc:
    """A parsed YAML file plus the line of every key and item, for `file:line: problem` errors."""

    def __init__(self, path: Path, data: Any, lines: dict[tuple, int]):
        self.path = path
        self.data = data
        self._lines = lines

    @classmethod
    def load(cls, path: Path) -> YamlDoc:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{display_path(path)}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UserError(f"{display_path(path)}: not UTF-8 text: {exc.reason}") from None
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            lines: dict[tuple, int] = {}
            if node is not None:
                _index_lines(path, node, (), lines, set(), set())
            data = loader.construct_document(node) if node is not None else None
        except RecursionError:  # PyYAML composes nested collections recursively: `[[[[...` thousands deep
            raise UserError(f"{display_path(path)}: malformed YAML: nested too deeply") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{display_path(path)}:{mark.line + 1}" if mark else display_path(path)
            problem = exc.problem or exc.context or "cannot parse"
            raise UserError(f"{where}: malformed YAML: {one_line(problem)}") from None
        except yaml.YAMLError as exc:
            raise UserError(f"{display_path(path)}: malformed YAML: {one_line(exc)}") from None
        finally:
            loader.dispose()
        return cls(path, data, lines)

    def where(self, *key_path: Any) -> str:
        """``file:line`` of the deepest known prefix of `key_path`."""
        for end in range(len(key_path), -1, -1):
            line = self._lines.get(tuple(key_path[:end]))
            if line is not None:
                return f"{display_path(self.path)}:{line}"
        return display_path(self.path)

    def error(self, message: str, *key_path: Any) -> UserError:
        return UserError(f"{self.where(*key_path)}: {message}")


def _index_lines(path: Path, node: yaml.Node, key_path: tuple, out: dict[tuple, int], open_nodes: set[int],
                 done: set[int]) -> None:
    """Record the line of every key and item. An alias reuses its anchor's node: a node inside itself
    (``a: &x [*x]``) is an error, and a node already indexed is not walked again (no blow-up from aliases)."""
    out[key_path] = node.start_mark.line + 1
    if id(node) in open_nodes:
        raise UserError(
            f"{display_path(path)}:{node.start_mark.line + 1}: malformed YAML: an anchor refers to itself "
            "(a self-referencing alias)"
        )
    if id(node) in done:
        return
    open_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise UserError(
                    f"{display_path(path)}:{key_node.start_mark.line + 1}: malformed YAML: duplicate key {key!r}"
                )
            seen.add(key)
            _index_lines(path, value_node, key_path + (key,), out, open_nodes, done)
            out[key_path + (key,)] = key_node.start_mark.line + 1  # errors about a key point at the key
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(path, item, key_path + (i,), out, open_nodes, done)
    open_nodes.discard(id(node))
    done.add(id(node))

