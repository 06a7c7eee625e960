"""Strict YAML reading: duplicate keys are errors, and every error names the file and line.

PyYAML silently keeps the last of two equal mapping keys; in a reviewed declaration that hides a
mistake, so the loader here refuses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from govex.errors import DeclarationError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        line = key_node.start_mark.line + 1
        if key in seen:
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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        msg = "is not UTF-8 text"
        raise DeclarationError(msg, file=name) from error
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        msg = f"malformed YAML{where}: {problem}"
        raise DeclarationError(msg, file=name) from error
    except yaml.YAMLError as error:
        msg = f"malformed YAML: {error}"
        raise DeclarationError(msg, file=name) from error
