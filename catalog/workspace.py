"""Loading a workspace directory into typed declarations, collecting every error in one pass.

Each declaration remembers the file it came from, so later cross-reference checks can name it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

import contracts
from govex.errors import DeclarationError, DeclarationErrors

from .declarations import (
    Connection,
    ConnectionsFile,
    Department,
    DepartmentsFile,
    Resource,
    Subscription,
)
from .yamlio import read_yaml

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Declared(Generic[T]):
    """A declaration and the workspace-relative file it was read from."""

    item: T
    file: str


@dataclass
class Workspace:
    """Everything a workspace declares, keyed by code/name/id/ref."""

    root: Path
    departments: dict[str, Declared[Department]] = field(default_factory=dict)
    connections: dict[str, Declared[Connection]] = field(default_factory=dict)
    contracts: dict[str, Declared[contracts.Contract]] = field(default_factory=dict)
    resources: dict[str, Declared[Resource]] = field(default_factory=dict)
    subscriptions: dict[str, Declared[Subscription]] = field(default_factory=dict)
    # Kinds ("departments", "contracts", …) of which some declaration did not load.
    incomplete: frozenset[str] = frozenset()


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def pydantic_errors(error: ValidationError, file: str, prefix: str = "") -> list[DeclarationError]:
    """One DeclarationError per pydantic error, naming the file, the field path and the value."""
    out: list[DeclarationError] = []
    for detail in error.errors():
        loc = _loc(tuple(detail["loc"]))
        path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        if detail["type"] == "extra_forbidden":
            message = f"unknown key '{detail['loc'][-1]}' is not allowed here"
        elif detail["type"] == "missing":
            message = "is required but missing"
        else:
            message = f"{detail['msg'].removeprefix('Value error, ')} (got {detail['input']!r})"
        out.append(DeclarationError(message, file=file, field=path or None))
    return out


def _validate(model: type[M], data: Any, file: str, errors: list[DeclarationError]) -> M | None:
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "an empty document"
        errors.append(DeclarationError(f"must be a YAML mapping, not {kind}", file=file))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors.extend(pydantic_errors(error, file))
        return None


def _read(path: Path, root: Path, errors: list[DeclarationError]) -> tuple[str, Any, bool]:
    """(workspace-relative name, parsed document, whether it parsed)."""
    rel = path.relative_to(root).as_posix()
    try:
        return rel, read_yaml(path, display=rel), True
    except DeclarationError as error:
        errors.append(error)
        return rel, None, False


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _put(
    table: dict[str, Declared[T]],
    key: str,
    item: T,
    file: str,
    what: str,
    errors: list[DeclarationError],
) -> None:
    if key in table:
        errors.append(
            DeclarationError(
                f"duplicate {what} '{key}' (already declared in {table[key].file})", file=file
            )
        )
        return
    table[key] = Declared(item, file)


def load_workspace(root: Path) -> Workspace:
    """Read and validate every file of a workspace; raise DeclarationErrors listing all problems."""
    ws, errors = read_workspace(root)
    if errors:
        raise DeclarationErrors(errors)
    return ws


def read_workspace(root: Path) -> tuple[Workspace, list[DeclarationError]]:
    """Every declaration that parsed, and the errors of those that did not.

    Why: `govex apply` reports all problems in one round, so the cross-file rules run on the
    parts that parsed; `Workspace.incomplete` names the kinds that lost a declaration, whose
    "unknown …" references would only echo the parse error.
    """
    root = root.resolve()
    if not root.is_dir():
        msg = "workspace directory does not exist"
        raise DeclarationError(msg, file=str(root))
    expected = ("departments.yaml", "connections.yaml", "contracts", "resources", "subscriptions")
    if not any((root / name).exists() for name in expected):
        msg = (
            "is not a govex workspace: none of departments.yaml, connections.yaml, contracts/, "
            "resources/ or subscriptions/ is there"
        )
        raise DeclarationError(
            msg,
            file=str(root),
        )
    errors: list[DeclarationError] = []
    ws = Workspace(root=root)
    _load_departments(ws, errors)
    _load_connections(ws, errors)
    _load_contracts(ws, errors)
    _load_each(ws.root / "resources", ws, Resource, ws.resources, "resource", errors, _code)
    _load_each(ws.root / "subscriptions", ws, Subscription, ws.subscriptions, "subscription",
               errors, _id)
    ws.incomplete = frozenset(_kind_of(error.file) for error in errors)
    return ws, errors


def _kind_of(file: str | None) -> str:
    """The declaration kind a workspace-relative file holds (the first folder or file name)."""
    first = (file or "").split("/", 1)[0]
    return first.removesuffix(".yaml").removesuffix(".yml")


def _code(item: Resource) -> str:
    return item.code


def _id(item: Subscription) -> str:
    return item.id


def _load_departments(ws: Workspace, errors: list[DeclarationError]) -> None:
    path = ws.root / "departments.yaml"
    if not path.exists():
        return
    rel, data, parsed_ok = _read(path, ws.root, errors)
    if not parsed_ok:
        return
    parsed = _validate(DepartmentsFile, data if data is not None else {}, rel, errors)
    for dept in parsed.departments if parsed else []:
        _put(ws.departments, dept.code, dept, rel, "department", errors)


def _load_connections(ws: Workspace, errors: list[DeclarationError]) -> None:
    path = ws.root / "connections.yaml"
    if not path.exists():
        return
    rel, data, parsed_ok = _read(path, ws.root, errors)
    if not parsed_ok:
        return
    parsed = _validate(ConnectionsFile, data if data is not None else {}, rel, errors)
    for name, conn in parsed.connections.items() if parsed else []:
        ws.connections[name] = Declared(conn, rel)


def _load_contracts(ws: Workspace, errors: list[DeclarationError]) -> None:
    directory = ws.root / "contracts"
    if not directory.is_dir():
        return
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.json")):
            rel = path.relative_to(ws.root).as_posix()
            try:
                contract = contracts.load_contract(path)
            except DeclarationError as error:
                errors.append(DeclarationError(error.message, file=rel, field=error.field))
                continue
            ws.contracts[contract.ref] = Declared(contract, rel)


def _load_each(
    directory: Path,
    ws: Workspace,
    model: type[M],
    table: dict[str, Declared[M]],
    what: str,
    errors: list[DeclarationError],
    key_of: Callable[[M], str],
) -> None:
    for path in _yaml_files(directory):
        rel, data, parsed_ok = _read(path, ws.root, errors)
        if not parsed_ok:
            continue
        item = _validate(model, data, rel, errors)
        if item is not None:
            _put(table, key_of(item), item, rel, what, errors)
