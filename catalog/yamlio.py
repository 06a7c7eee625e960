"""Strict, bounded YAML reading: every error names the file (and line) in one sentence.

PyYAML silently keeps the last of two equal mapping keys; in a reviewed declaration that hides a
mistake, so the loader here refuses them.

Workspace files come from departments that do not trust each other, so reading one is bounded
before anything is built from it:

- size: at most `MAX_BYTES` (1 MiB; a resource or subscription is a few hundred bytes, a
  city's departments.yaml a few KiB);
- depth: at most `MAX_DEPTH` (64) nested collections, checked while the document is composed
  (PyYAML composes recursively, so a deeper document would otherwise end in a RecursionError);
- expansion: at most `MAX_NODES` (20 000) values, *counting every alias as the whole subtree
  it stands for* (a resource has about 60; PyYAML composes 20 000 in under half a second).
  Anchors and aliases are standard YAML that a reviewer may reasonably use (one `kwargs` block
  for several expectations), so they are allowed rather than refused; what harms is
  expansion: a 1 KB "billion laughs" document loads as a few shared objects but becomes 10**9
  values once validated, stored as JSON or shown, which is how it drove `govex apply` to 7 GB.
  The count is taken on the composed node graph (one pass, each distinct node once) before any
  Python object is constructed, and a recursive alias (`&a [*a]`, endless when expanded) is
  refused too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from govex.errors import DeclarationError
from govex.files import MAX_DECLARATION_BYTES, read_declaration

MAX_BYTES = MAX_DECLARATION_BYTES
MAX_DEPTH = 64
MAX_NODES = 20_000


class _TooBig(yaml.YAMLError):
    """The document exceeds one of the limits; the message says which."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys and over-deep or over-large documents."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0  # nodes composed so far: stops a long flat document early

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._composed += 1
        try:
            if self._composed > MAX_NODES:
                raise _TooBig(_too_many())
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                msg = (
                    f"nested deeper than {MAX_DEPTH} levels at line {mark.line + 1}; "
                    "a declaration is never that deep"
                )
                raise _TooBig(msg)
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call,no-any-return]
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # SafeLoader builds dates, times and numbers with Python itself: `2026-13-45` or a
        # 5000-digit integer raise a plain ValueError that knows no line. Give it the line.
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[no-untyped-call]
        except (ValueError, TypeError, OverflowError) as error:
            reason = str(error).split(";")[0]  # not Python's advice on sys.set_int_max_str_digits
            raise yaml.constructor.ConstructorError(
                None, None, f"this value cannot be read ({reason})", node.start_mark
            ) from error

    def compose_document(self) -> yaml.Node | None:
        node: yaml.Node | None = super().compose_document()  # type: ignore[no-untyped-call]
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose full expansion exceeds MAX_NODES or never ends.

    Iterative (no recursion on hostile input); each distinct node's expanded size is computed
    once, so the cost is linear in the document however many times aliases repeat it.
    """
    size: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            total = 1 + sum(size[id(child)] for child in _children(node))
            if total > MAX_NODES:
                raise _TooBig(_too_many())
            size[key] = total
            continue
        if key in size:
            continue
        if key in in_progress:
            msg = "an alias refers to a value that contains it, which never ends when expanded"
            raise _TooBig(msg)
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in in_progress:
                msg = (
                    "an alias refers to a value that contains it, which never ends when expanded"
                )
                raise _TooBig(msg)
            if id(child) not in size:
                stack.append((child, False))


def _too_many() -> str:
    return (
        f"holds more than {MAX_NODES} values, counting what each alias repeats; "
        "a declaration is never that large"
    )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        line = key_node.start_mark.line + 1
        try:
            repeated = key in seen
        except TypeError:  # a list or mapping as a key: PyYAML's own message says so
            raise yaml.constructor.ConstructorError(
                None, None, "a list or mapping cannot be a key", key_node.start_mark
            ) from None
        if repeated:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def read_yaml(path: Path, *, display: str | None = None) -> Any:
    """Parse one YAML file strictly; raise DeclarationError naming the file and line."""
    name = display or str(path)
    text = read_declaration(path, name, "a workspace file")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        msg = f"malformed YAML{where}: {problem}"
        raise DeclarationError(msg, file=name) from error
    except _TooBig as error:
        raise DeclarationError(str(error), file=name) from error
    except yaml.YAMLError as error:  # e.g. a control character: PyYAML adds a position line
        msg = f"malformed YAML: {str(error).splitlines()[0]}"
        raise DeclarationError(msg, file=name) from error
    except RecursionError as error:  # pragma: no cover - MAX_DEPTH stops composition first
        msg = f"malformed YAML: nested deeper than {MAX_DEPTH} levels"
        raise DeclarationError(msg, file=name) from error
