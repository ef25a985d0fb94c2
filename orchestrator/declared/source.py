"""Read a YAML stack file into plain data while remembering the line of every field.

Users fix errors by line number, and pydantic only knows field paths, so the loader keeps
PyYAML's node tree, whose composer records marks on every node, and finds a path
(`("deployments", 1, "gpu")`) in it when a problem is reported. We construct the data ourselves
from the node tree, to reject duplicate keys, which PyYAML would silently merge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from orchestrator.errors import Problem, SpecError

FieldPath = tuple[str | int, ...]
# A stack of 10,000 deployments is a few MB; anything far larger is a mistake or an attack.
MAX_FILE_BYTES = 64 * 1024 * 1024
# Aliases let a small file expand into a huge value (the "billion laughs"): a file may expand to at
# most this many times its own nodes (and 100,000 nodes however small it is), enough for anchors
# and merge keys shared by thousands of deployments.
EXPANSION_FACTOR = 10
MIN_EXPANSION = 100_000


@dataclass(frozen=True)
class SourceMap:
    """Where each field path of a loaded file was written: PyYAML's node tree, kept, and walked
    only when a problem needs its line (a map of every path would cost a stack of thousands of
    deployments a second it almost never needs)."""

    file: str
    root: yaml.Node | None = None

    def line_of(self, path: FieldPath) -> int | None:
        """The line of `path` (a field's key, an item's first line), or of its nearest written parent
        (a missing field has none)."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            if isinstance(node, yaml.MappingNode):
                pair = next((pair for pair in reversed(node.value) if _key_names(pair[0], part)), None)  # a merged key's own value last
                if pair is None:
                    break
                line, node = pair[0].start_mark.line + 1, pair[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def problem(self, path: FieldPath, message: str, shown_path: FieldPath | None = None) -> Problem:
        """A problem located at `path`; `shown_path` is how the field is named to the user."""
        return Problem(self.file, self.line_of(path), format_path(path if shown_path is None else shown_path), message)


def _key_names(key: yaml.Node, part: str | int) -> bool:
    return isinstance(key, yaml.ScalarNode) and key.value == str(part)


def format_path(path: FieldPath) -> str:
    """`("deployments", 1, "gpu")` -> `deployments[1].gpu`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml(path: Path) -> tuple[Any, SourceMap]:
    """Parse `path` into plain data and its source map; file and syntax problems raise SpecError."""
    name = str(path)
    if not path.exists():
        raise SpecError([Problem(name, None, "", "no such file; pass the path of a stack file such as stacks/llama-3.1-8b.yaml")])
    if path.is_dir():
        raise SpecError([Problem(name, None, "", "is a directory; pass the path of a stack file inside it")])
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError([Problem(name, None, "", f"is {size / 2**20:.0f} MiB; a stack file may be at most {MAX_FILE_BYTES // 2**20} MiB")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(name, None, "", f"cannot be read: {exc}")]) from exc

    loader = _Loader(text)
    loader.merges = "<<" in text
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem(name, None, "", "the file is empty; see stacks/ for examples of a deployment")])
        source = SourceMap(name, node)
        # Only an anchor (`&`) lets an alias expand the file; without one every node is built once.
        budget = _Budget(max(MIN_EXPANSION, EXPANSION_FACTOR * _distinct_nodes(node)) if "&" in text else None, name)
        data = _construct(loader, node, (), source, budget)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        raise SpecError([Problem(name, line, "", f"invalid YAML: {reason}")]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([Problem(name, None, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return data, source


_STR = "tag:yaml.org,2002:str"


class _Loader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's parser where PyYAML has it, with the tag of each plain scalar resolved once.

    Resolving a scalar's implicit tag (int? bool? null?) runs a few regexes in Python, and a
    stack of thousands of deployments repeats the same keys and values over and over.
    """

    _tags: ClassVar[dict[tuple[str, tuple[bool, bool]], str]] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag


class _Budget:
    """How many more nodes the file may expand into through its aliases."""

    def __init__(self, nodes: int | None, file: str) -> None:
        self.left, self.limit, self.file = nodes, nodes, file

    def spend(self) -> None:
        if self.left is None:  # no anchors: the file cannot expand
            return
        self.left -= 1
        if self.left < 0:
            raise SpecError(
                [
                    Problem(
                        self.file,
                        None,
                        "",
                        f"its aliases expand to more than {self.limit:,} values (an alias bomb?); write the values out, or use fewer nested aliases",
                    )
                ]
            )


def _distinct_nodes(root: yaml.Node) -> int:
    """The nodes of the document as written, each counted once however many aliases name it."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return len(seen)


_INT = "tag:yaml.org,2002:int"
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")  # YAML 1.1's other forms (0x, 0o, 1_000, 1:30) go the long way


def _construct(loader: Any, node: yaml.Node, path: FieldPath, source: SourceMap, budget: _Budget) -> Any:
    budget.spend()
    if isinstance(node, yaml.MappingNode):
        if loader.merges:  # only a file with `<<` has merge keys to fold in
            loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if key_node.tag == _STR else loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                line = key_node.start_mark.line + 1
                raise SpecError([Problem(source.file, line, format_path(path), "a key must be a plain name, not a list or mapping")])
            if key in result:
                line = key_node.start_mark.line + 1
                raise SpecError([Problem(source.file, line, format_path(path + (key,)), "duplicate key; each key may appear once")])
            result[key] = _construct(loader, value_node, path + (key,), source, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, path + (index,), source, budget) for index, item in enumerate(node.value)]
    if node.tag == _STR:  # most values: skip the constructor's generic dispatch
        return node.value
    if node.tag == _INT and _PLAIN_INT.fullmatch(node.value):  # the next most: a plain decimal
        return int(node.value)
    return loader.construct_object(node, deep=True)
